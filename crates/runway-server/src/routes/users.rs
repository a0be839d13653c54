//! Users and tokens: who the caller is (`/v1/me`), users (admins only) and tokens (a member's
//! own; an admin's, anyone's). A token's secret is in the answer that makes it, and nowhere
//! else, ever.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use runway_api::ErrorResponse;
use runway_api::users::{
    CreateTokenRequest, CreateTokenResponse, CreateUserRequest, CreateUserResponse, Role,
    TokenListResponse, UserListResponse, UserResponse,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{self, Caller};
use crate::error::{ApiError, path_param};
use crate::json::JsonBody;
use crate::{ServerState, convert, params};

/// Shortest and longest life of a token made with `expires_in`.
const MIN_TOKEN_LIFE: Duration = Duration::from_secs(60);
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(10 * 366 * 24 * 3600);
/// Longest description of a token.
const MAX_TOKEN_NAME: usize = 200;

fn core_role(role: Role) -> runway_core::users::Role {
    match role {
        Role::Admin => runway_core::users::Role::Admin,
        Role::Member => runway_core::users::Role::Member,
    }
}

/// Who the request speaks for.
#[utoipa::path(get, path = "/v1/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a job token", body = ErrorResponse),
    ))]
pub async fn me(caller: Caller) -> Result<Json<UserResponse>, ApiError> {
    Ok(Json(convert::user(caller.user()?)))
}

/// Every user, by name.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = UserListResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
    ))]
pub async fn list_users(
    State(state): State<ServerState>,
    caller: Caller,
) -> Result<Json<UserListResponse>, ApiError> {
    let users = state.app.users(caller.user()?).await?;
    Ok(Json(UserListResponse {
        users: users.iter().map(convert::user).collect(),
    }))
}

/// Adds a user with its first token, shown only in this answer.
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, body = CreateUserResponse),
        (status = 400, description = "not a user name", body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
        (status = 409, description = "a user of that name exists", body = ErrorResponse),
    ))]
pub async fn add_user(
    State(state): State<ServerState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreateUserResponse>), ApiError> {
    let secret = auth::generate_token();
    let record = auth::token_record(
        &secret,
        &format!("first token of {}", request.name),
        state.app.now(),
        None,
    );
    let (user, token) = state
        .app
        .user_add(
            caller.user()?,
            &request.name,
            core_role(request.role),
            record,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateUserResponse {
            token: convert::token(&token, &user.name),
            user: convert::user(&user),
            secret,
        }),
    ))
}

/// Removes a user, its tokens and their browser sessions. Its jobs stay and still name it.
#[utoipa::path(delete, path = "/v1/users/{name}", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the last admin", body = ErrorResponse),
    ))]
pub async fn remove_user(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .user_remove(caller.user()?, &path_param(name)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Only this user's tokens (an admin may name anyone; a member only itself).
    user: Option<String>,
}

/// Tokens: the caller's, or for an admin everyone's (or one user's with `user`).
#[utoipa::path(get, path = "/v1/tokens", tag = "users", security(("bearer" = [])),
    params(TokenQuery),
    responses(
        (status = 200, body = TokenListResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member naming another user", body = ErrorResponse),
        (status = 404, description = "no such user", body = ErrorResponse),
    ))]
pub async fn list_tokens(
    State(state): State<ServerState>,
    caller: Caller,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Json<TokenListResponse>, ApiError> {
    let query = params::query(query)?;
    let tokens = state
        .app
        .tokens(caller.user()?, query.user.as_deref())
        .await?;
    Ok(Json(TokenListResponse {
        tokens: tokens
            .iter()
            .map(|(token, user)| convert::token(token, user))
            .collect(),
    }))
}

/// Makes a token, shown only in this answer.
#[utoipa::path(post, path = "/v1/tokens", tag = "users", security(("bearer" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreateTokenResponse),
        (status = 400, description = "a bad `expires_in` or `name`", body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member naming another user", body = ErrorResponse),
        (status = 404, description = "no such user", body = ErrorResponse),
    ))]
pub async fn create_token(
    State(state): State<ServerState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreateTokenResponse>), ApiError> {
    let now = state.app.now();
    let expires_at = request
        .expires_in
        .as_deref()
        .map(|text| {
            humantime::parse_duration(text)
                .ok()
                .filter(|life| (MIN_TOKEN_LIFE..=MAX_TOKEN_LIFE).contains(life))
                .and_then(|life| chrono::Duration::from_std(life).ok())
                .map(|life| now + life)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`expires_in` is `{text}`; give a duration from 1m to 10y, e.g. 30d or 12h"
                    ))
                })
        })
        .transpose()?;
    let name = request.name.unwrap_or_default();
    if name.chars().count() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "`name` must be at most {MAX_TOKEN_NAME} characters, none of them control characters"
        )));
    }
    let secret = auth::generate_token();
    let record = auth::token_record(&secret, &name, now, expires_at);
    let (user, token) = state
        .app
        .token_create(caller.user()?, request.user.as_deref(), record)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateTokenResponse {
            token: convert::token(&token, &user.name),
            secret,
        }),
    ))
}

/// Revokes a token and ends its browser sessions.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "token id", pattern = r"^[1-9][0-9]{0,17}$")),
    responses(
        (status = 204, description = "revoked"),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, description = "no such token (a member: none of its own)", body = ErrorResponse),
        (status = 409, description = "the last admin's last token", body = ErrorResponse),
    ))]
pub async fn revoke_token(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let text = path_param(id)?;
    let id = text
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{text}` is not a token id; `runway token ls` lists them"
            ))
        })?;
    state.app.token_revoke(caller.user()?, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
