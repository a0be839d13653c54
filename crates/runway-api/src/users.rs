//! Users and their tokens: `/v1/users`, `/v1/tokens`, `/v1/me`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do: an admin everything; a member submits, sees and acts on its own jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/users`: every user, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserListResponse {
    pub users: Vec<UserResponse>,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1 to 64 lowercase letters, digits, `.`, `_` or `-`, starting with a letter or a digit.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    pub role: Role,
}

/// The new user and its first token, shown only this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserResponse {
    pub user: UserResponse,
    pub token: TokenResponse,
    /// The token itself: `Authorization: Bearer <secret>`. Only its hash is kept.
    pub secret: String,
}

/// A token as the server keeps it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub id: String,
    /// The start of the secret (`rwy_` and 12 hex digits), to tell tokens apart.
    pub prefix: String,
    pub user: String,
    /// What the token is for.
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Absent: valid until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// `GET /v1/tokens`: the caller's tokens (an admin: everyone's, or one user's).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenListResponse {
    pub tokens: Vec<TokenResponse>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Whose token; the caller's when absent. Only an admin names another user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// What the token is for, up to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// How long the token is valid: 1 to 9999 minutes, hours, days or weeks, or 1 to 999
    /// years, e.g. `30d`, `12h`, `1y`; absent: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([1-9][0-9]{0,3}(m|h|d|w)|[1-9][0-9]{0,2}y)$")]
    pub expires_in: Option<String>,
}

/// The new token, shown only this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenResponse {
    pub token: TokenResponse,
    /// The token itself: `Authorization: Bearer <secret>`. Only its hash is kept.
    pub secret: String,
}

/// `POST /v1/auth/codes`: a sign-in code for the caller, single use, valid for minutes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInCodeResponse {
    /// `rwc_` and 32 hex digits; a dashboard link carries it as `/#code=…`.
    pub code: String,
    pub user: UserResponse,
    pub expires_at: DateTime<Utc>,
}

/// A sign-in code, to check (`POST /v1/auth/codes/check`) or to exchange for an API token
/// (`POST /v1/auth/token`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
    /// What the token is for (`POST /v1/auth/token` only), up to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

/// Whose session an unused sign-in code would start; checking it does not spend it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CodeCheckResponse {
    pub user: UserResponse,
    pub expires_at: DateTime<Utc>,
}
