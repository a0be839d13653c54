//! Users and tokens: who the caller is (`/v1/me`), users (admins only) and tokens (a member's
//! own; an admin's, anyone's). A token's secret is in the answer that makes it, and nowhere
//! else, ever.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use runway_api::ErrorResponse;
use runway_api::users::{
    CreateTokenRequest, CreateTokenResponse, CreateUserRequest, CreateUserResponse,
    TokenListResponse, UserListResponse, UserResponse,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{self, Caller};
use crate::error::{ApiError, path_param};
use crate::json::JsonBody;
use crate::{ServerState, convert, params};

/// A token's life as `expires_in` spells it (`^([1-9][0-9]{0,3}(m|h|d|w)|[1-9][0-9]{0,2}y)$`):
/// a whole number of minutes, hours, days, weeks or years (of 365 days), so that its end is
/// a date RFC 3339 can write (before the year 10000).
fn token_life(text: &str) -> Option<chrono::Duration> {
    let unit = text.chars().last()?;
    let number = &text[..text.len() - unit.len_utf8()];
    let most_digits = if unit == 'y' { 3 } else { 4 };
    let well_formed = (1..=most_digits).contains(&number.len())
        && !number.starts_with('0')
        && number.bytes().all(|byte| byte.is_ascii_digit());
    if !well_formed {
        return None;
    }
    let count: i64 = number.parse().ok()?;
    match unit {
        'm' => Some(chrono::Duration::minutes(count)),
        'h' => Some(chrono::Duration::hours(count)),
        'd' => Some(chrono::Duration::days(count)),
        'w' => Some(chrono::Duration::weeks(count)),
        'y' => Some(chrono::Duration::days(365 * count)),
        _ => None,
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
            convert::core_role(request.role),
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
            token_life(text).map(|life| now + life).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`expires_in` is `{text}`; give 1 to 9999 m, h, d or w, or 1 to 999 y, e.g. 30d or 12h"
                ))
            })
        })
        .transpose()?;
    let name = auth::token_name(request.name, "")?;
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

#[cfg(test)]
mod tests {
    use super::token_life;

    #[test]
    fn a_tokens_life_is_a_whole_number_of_one_unit() {
        assert_eq!(token_life("30d"), Some(chrono::Duration::days(30)));
        assert_eq!(token_life("1m"), Some(chrono::Duration::minutes(1)));
        assert_eq!(token_life("999y"), Some(chrono::Duration::days(365 * 999)));
        assert_eq!(token_life("9999w"), Some(chrono::Duration::weeks(9999)));
        for bad in [
            "", "d", "0d", "05d", "10000d", "1000y", "1.5h", "1 d", "1s", "30days", "-1d", "1é",
        ] {
            assert_eq!(token_life(bad), None, "{bad}");
        }
    }
}
