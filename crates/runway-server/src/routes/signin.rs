//! Browser sign-in: a token is exchanged for an HttpOnly, SameSite=Strict session cookie, so
//! the dashboard never keeps the token where scripts can read it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runway_api::{ErrorResponse, SignInRequest, SignInResponse};

use crate::ServerState;
use crate::auth;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::live::check_origin;

fn cookie(value: &str, max_age_secs: i64) -> HeaderValue {
    let cookie = cookie::Cookie::build((auth::SESSION_COOKIE, value))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a cookie of hex digits is a valid header")
}

/// Signs in: answers with the session cookie when the token is valid.
#[utoipa::path(post, path = "/v1/auth/session", tag = "auth",
    request_body = SignInRequest,
    responses(
        (status = 201, description = "signed in; the cookie is set", body = SignInResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, description = "the token is not valid", body = ErrorResponse),
        (status = 403, description = "foreign Origin", body = ErrorResponse),
    ))]
pub async fn sign_in(
    State(state): State<ServerState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SignInRequest>,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    let holder = match auth::verify(&state.app, request.token.trim()).await {
        Ok(Ok(holder)) => holder,
        Ok(Err(refusal)) => return Err(refusal.error()),
        Err(error) => return Err(ApiError::from(error)),
    };
    let now = state.app.now();
    let ttl = state.app.config().server.web_session_ttl;
    let mut expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7));
    // A session ends with its token.
    if let Some(token_end) = holder.token.expires_at {
        expires_at = expires_at.min(token_end);
    }
    let (secret, stored) = auth::new_session_secret();
    state
        .app
        .web_session_insert(stored, holder.token.id, expires_at)
        .await
        .map_err(ApiError::from)?;
    let max_age = (expires_at - now).num_seconds().max(1);
    let body = SignInResponse {
        expires_at,
        user: crate::convert::user(&holder.user),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&secret, max_age));
    Ok(response)
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/v1/auth/session", tag = "auth",
    responses(
        (status = 204, description = "signed out; the cookie is cleared"),
        (status = 403, description = "foreign Origin", body = ErrorResponse),
    ))]
pub async fn sign_out(
    State(state): State<ServerState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    if let Some(secret) = auth::session_cookie(&headers) {
        state
            .app
            .web_session_delete(auth::session_hash(&secret))
            .await
            .map_err(ApiError::from)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0));
    Ok(response)
}
