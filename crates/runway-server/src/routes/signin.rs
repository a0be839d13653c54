//! Browser sign-in: a token, or a single-use sign-in code from a link, is exchanged for an
//! HttpOnly, SameSite=Strict session cookie, so the dashboard never keeps a token where scripts
//! can read it. A code can also become an API token, for a CLI on another machine.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runway_api::users::{CodeCheckResponse, CodeRequest, CreateTokenResponse, SignInCodeResponse};
use runway_api::{ErrorResponse, SignInRequest, SignInResponse};
use runway_core::users::User;

use crate::ServerState;
use crate::auth::{self, Caller};
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

/// Signs in with a token or a sign-in code (spent here): answers with the session cookie. A
/// session the browser already had ends.
#[utoipa::path(post, path = "/v1/auth/session", tag = "auth",
    request_body = SignInRequest,
    responses(
        (status = 201, description = "signed in; the cookie is set", body = SignInResponse),
        (status = 400, description = "neither or both of `token` and `code`", body = ErrorResponse),
        (status = 401, description = "the token is not valid", body = ErrorResponse),
        (status = 403, description = "foreign Origin", body = ErrorResponse),
        (status = 404, description = "the code was used, has expired, or is unknown", body = ErrorResponse),
    ))]
pub async fn sign_in(
    State(state): State<ServerState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SignInRequest>,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    let (token_id, token_end, user) = match (request.token, request.code) {
        (Some(token), None) => match auth::verify(&state.app, token.trim()).await? {
            Ok(holder) => (holder.token.id, holder.token.expires_at, holder.user),
            Err(refusal) => return Err(refusal.error()),
        },
        (None, Some(code)) => {
            let user = spend(&state, &code).await?;
            // A browser session hangs on a token: one of its own, whose secret nobody ever
            // sees, ending with the session (`runway token ls` shows it; revoking it ends it).
            let now = state.app.now();
            let end = now + session_ttl(&state);
            let secret = auth::generate_token();
            let record = auth::token_record(&secret, "browser session", now, Some(end));
            let (_, token) = state.app.token_create(&user, None, record).await?;
            (token.id, Some(end), user)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `token` (an API token) or `code` (from a sign-in link)",
            ));
        }
    };
    let now = state.app.now();
    let mut expires_at = now + session_ttl(&state);
    // A session ends with its token.
    if let Some(token_end) = token_end {
        expires_at = expires_at.min(token_end);
    }
    if let Some(previous) = auth::session_cookie(&headers) {
        state
            .app
            .web_session_delete(auth::session_hash(&previous))
            .await?;
    }
    let (secret, stored) = auth::new_session_secret();
    state
        .app
        .web_session_insert(stored, token_id, expires_at)
        .await?;
    let max_age = (expires_at - now).num_seconds().max(1);
    let body = SignInResponse {
        expires_at,
        user: crate::convert::user(&user),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&secret, max_age));
    Ok(response)
}

fn session_ttl(state: &ServerState) -> chrono::Duration {
    chrono::Duration::from_std(state.app.config().server.web_session_ttl)
        .unwrap_or(chrono::Duration::days(7))
}

/// The user of a valid code, which is spent.
async fn spend(state: &ServerState, code: &str) -> Result<User, ApiError> {
    let hash = auth::signin_code_hash(code.trim()).ok_or_else(auth::code_refused)?;
    state
        .app
        .signin_code_use(hash)
        .await?
        .ok_or_else(auth::code_refused)
}

/// A sign-in code for the caller, to open the dashboard elsewhere (`runway dashboard`) or to
/// sign in a CLI on another machine (`runway login URL`): single use, valid for
/// `server.signin_code_ttl`.
#[utoipa::path(post, path = "/v1/auth/codes", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 201, body = SignInCodeResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a job token", body = ErrorResponse),
    ))]
pub async fn create_code(
    State(state): State<ServerState>,
    caller: Caller,
) -> Result<(StatusCode, Json<SignInCodeResponse>), ApiError> {
    let user = caller.user()?;
    let (code, expires_at) = auth::signin_code(&state.app, user).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignInCodeResponse {
            code,
            user: crate::convert::user(user),
            expires_at,
        }),
    ))
}

/// Whose session a sign-in code would start, so the page can ask before it signs in; the code
/// stays unspent.
#[utoipa::path(post, path = "/v1/auth/codes/check", tag = "auth",
    request_body = CodeRequest,
    responses(
        (status = 200, body = CodeCheckResponse),
        (status = 400, body = ErrorResponse),
        (status = 403, description = "foreign Origin", body = ErrorResponse),
        (status = 404, description = "the code was used, has expired, or is unknown", body = ErrorResponse),
    ))]
pub async fn check_code(
    State(state): State<ServerState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CodeRequest>,
) -> Result<Json<CodeCheckResponse>, ApiError> {
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    let hash = auth::signin_code_hash(request.code.trim()).ok_or_else(auth::code_refused)?;
    let (user, expires_at) = state
        .app
        .signin_code_find(hash)
        .await?
        .ok_or_else(auth::code_refused)?;
    Ok(Json(CodeCheckResponse {
        user: crate::convert::user(&user),
        expires_at,
    }))
}

/// Spends a sign-in code for a new API token of its user (`runway login URL` with a code): the
/// token is in this answer only.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth",
    request_body = CodeRequest,
    responses(
        (status = 201, body = CreateTokenResponse),
        (status = 400, body = ErrorResponse),
        (status = 403, description = "foreign Origin", body = ErrorResponse),
        (status = 404, description = "the code was used, has expired, or is unknown", body = ErrorResponse),
    ))]
pub async fn token_from_code(
    State(state): State<ServerState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CodeRequest>,
) -> Result<(StatusCode, Json<CreateTokenResponse>), ApiError> {
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    let name = auth::token_name(request.name, "runway login")?;
    let user = spend(&state, &request.code).await?;
    let secret = auth::generate_token();
    let record = auth::token_record(&secret, &name, state.app.now(), None);
    let (user, token) = state.app.token_create(&user, None, record).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateTokenResponse {
            token: crate::convert::token(&token, &user.name),
            secret,
        }),
    ))
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
