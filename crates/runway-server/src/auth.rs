//! Bearer tokens: at least 128 random bits, shown once, stored as a SHA-256 hash found by a
//! public prefix, compared in constant time, never logged.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use runway_core::job_token::{JOB_TOKEN_PREFIX, JobTokenClaim};
use runway_core::users::{Access, Holder, TokenRecord, User, UserId};
use runway_core::{App, JobId, StoreError, Timestamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ServerState;
use crate::error::ApiError;

const TOKEN_PREFIX: &str = "rwy_";
const LOOKUP_LEN: usize = 12;

/// A new random token: `rwy_` and 64 hex digits (256 bits).
pub fn generate_token() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

fn lookup_prefix(token: &str) -> Option<&str> {
    let body = token.strip_prefix(TOKEN_PREFIX)?;
    if body.len() != 64 || !body.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    Some(&body[..LOOKUP_LEN])
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` has the form of an API token (`rwy_` and 64 hex digits), as an operator's
/// own first admin token must.
pub fn is_api_token(token: &str) -> bool {
    lookup_prefix(token).is_some()
}

/// The record of a new token (`secret`, made by [`generate_token`] or checked with
/// [`is_api_token`]): its public prefix and hash, never the secret.
pub fn token_record(
    secret: &str,
    name: &str,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
) -> TokenRecord {
    TokenRecord {
        id: 0,
        prefix: lookup_prefix(secret)
            .expect("a token made or checked here has a prefix")
            .to_string(),
        hash: hash(secret),
        user: UserId(0),
        name: name.to_string(),
        created_at,
        expires_at,
    }
}

/// Longest description of a token, as the API's schemas say.
const MAX_TOKEN_NAME: usize = 200;

/// What a new token is for, as its maker described it (`default` when it did not); refused
/// past [`MAX_TOKEN_NAME`] characters.
pub fn token_name(name: Option<String>, default: &str) -> Result<String, ApiError> {
    let name = name.unwrap_or_else(|| default.to_string());
    let length = name.chars().count();
    if length > MAX_TOKEN_NAME {
        return Err(ApiError::bad_request(format!(
            "`name` is {length} characters; describe the token in at most {MAX_TOKEN_NAME}"
        )));
    }
    Ok(name)
}

/// The public part of a token as shown to people: `rwy_` and its lookup prefix.
pub fn shown_prefix(token: &TokenRecord) -> String {
    format!("{TOKEN_PREFIX}{}", token.prefix)
}

/// Makes the first admin (user `admin`) when the server has no user: with `given` (an
/// operator's, checked with [`is_api_token`]) or a new token; returns the token so it can be
/// shown once, or `None` when the server already had users.
pub async fn ensure_admin_token(
    app: &App,
    given: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let token = given.map_or_else(generate_token, str::to_string);
    let record = token_record(&token, "first admin token", app.now(), None);
    Ok(app.ensure_first_admin(record).await?.then_some(token))
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, revoked, its user removed, or not a token at all.
    Invalid,
    Expired(Timestamp),
}

/// The token's holder when it is valid.
pub async fn verify(app: &App, token: &str) -> Result<Result<Holder, Refusal>, StoreError> {
    let Some(prefix) = lookup_prefix(token) else {
        return Ok(Err(Refusal::Invalid));
    };
    let Some(holder) = app.token_find(prefix).await? else {
        return Ok(Err(Refusal::Invalid));
    };
    let matches: bool = holder.token.hash.ct_eq(&hash(token)).into();
    if !matches {
        return Ok(Err(Refusal::Invalid));
    }
    if holder.token.expired(app.now()) {
        let at = holder
            .token
            .expires_at
            .expect("an expired token has an end");
        return Ok(Err(Refusal::Expired(at)));
    }
    Ok(Ok(holder))
}

impl Refusal {
    pub fn error(&self) -> ApiError {
        match self {
            Refusal::Invalid => ApiError::unauthorized(
                "the token is not valid: unknown, revoked, or its user was removed",
            ),
            Refusal::Expired(at) => ApiError::unauthorized(format!(
                "the token expired at {}; make a new one with `runway token create`",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        }
    }
}

/// The token of an `Authorization: Bearer` header; `None` without the header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| Some(token.trim()))
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))
}

const CODE_PREFIX: &str = "rwc_";

/// A new sign-in code (128 random bits) and the hash stored for it.
pub fn new_signin_code() -> (String, Vec<u8>) {
    let mut secret = [0u8; 16];
    rand::rng().fill_bytes(&mut secret);
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    let code = format!("{CODE_PREFIX}{hex}");
    let stored = hash(&code);
    (code, stored)
}

/// What is stored for a sign-in code: its SHA-256; `None` for what is not a code at all.
pub fn signin_code_hash(code: &str) -> Option<Vec<u8>> {
    let body = code.strip_prefix(CODE_PREFIX)?;
    (body.len() == 32 && body.bytes().all(|byte| byte.is_ascii_hexdigit())).then(|| hash(code))
}

/// Makes a sign-in code for `user`: the code and when it expires.
pub async fn signin_code(app: &App, user: &User) -> Result<(String, Timestamp), StoreError> {
    let (code, stored) = new_signin_code();
    let expires_at = app.signin_code_insert(stored, user).await?;
    Ok((code, expires_at))
}

/// The refusal of a code that is not (or no longer) valid.
pub fn code_refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        runway_api::codes::NOT_FOUND,
        "the sign-in code was used, has expired, or is not this server's; get a new link with \
         `runway dashboard`",
    )
}

/// How often a long-lived connection (a feed, a session) checks again that what opened it
/// still holds: a revoked token, a removed user, an expired token or an ended browser session
/// closes it within this.
pub const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What a long-lived connection was opened with, to check again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A bearer token: its lookup prefix and id.
    Token { prefix: String, id: i64 },
    /// A browser session: its cookie's hash.
    Session { hash: Vec<u8> },
    /// A job token: valid while its attempt runs; the routes it reaches check it per request.
    Job,
}

impl Proof {
    /// The proof of a request that authenticated as `credential` with `headers`.
    pub fn of(credential: &Credential, headers: &HeaderMap) -> Proof {
        match credential {
            Credential::Bearer(holder) => Proof::Token {
                prefix: holder.token.prefix.clone(),
                id: holder.token.id,
            },
            Credential::Cookie(_) => Proof::Session {
                hash: session_cookie(headers)
                    .map(|secret| hash(&secret))
                    .unwrap_or_default(),
            },
            Credential::Job(_) => Proof::Job,
        }
    }

    pub fn of_token(holder: &Holder) -> Proof {
        Proof::Token {
            prefix: holder.token.prefix.clone(),
            id: holder.token.id,
        }
    }

    /// Whether it still holds; a store that cannot answer now is given the benefit of the
    /// doubt until the next check.
    pub async fn holds(&self, app: &App) -> bool {
        let now = app.now();
        let holder = match self {
            Proof::Job => return true,
            Proof::Token { prefix, id } => match app.token_find(prefix).await {
                Ok(holder) => holder.filter(|holder| holder.token.id == *id),
                Err(_) => return true,
            },
            Proof::Session { hash } => match app.web_session_find(hash.clone()).await {
                Ok(holder) => holder,
                Err(_) => return true,
            },
        };
        holder.is_some_and(|holder| !holder.token.expired(now))
    }
}

/// The reason a connection is closed when its proof no longer holds.
pub const PROOF_ENDED: &str =
    "the token or session ended (revoked, expired, or its user removed); sign in again";

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "runway_session";

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An `Authorization: Bearer` token and its user: programs and the CLI.
    Bearer(Holder),
    /// The HttpOnly session cookie of a token, and its user: the dashboard.
    Cookie(Holder),
    /// A running attempt's `RUNWAY_TOKEN`: it may read its job and the job's subtree and spawn
    /// the job's children, nothing else.
    Job(JobId),
}

impl Credential {
    /// The user the request speaks for; none for a job token.
    pub fn user(&self) -> Option<&User> {
        match self {
            Credential::Bearer(holder) | Credential::Cookie(holder) => Some(&holder.user),
            Credential::Job(_) => None,
        }
    }

    /// Which jobs the request may see. A job token's requests were held to its subtree
    /// before they reach a route.
    pub fn access(&self) -> Access {
        self.user().map_or(Access::All, Access::of)
    }
}

/// The credential of the request, as [`require_token`] checked it: the extractor routes take
/// to know who asks.
#[derive(Debug, Clone)]
pub struct Caller(pub Credential);

impl Caller {
    pub fn access(&self) -> Access {
        self.0.access()
    }

    /// The user behind the request; a job token is refused (403) where only users may act.
    pub fn user(&self) -> Result<&User, ApiError> {
        self.0.user().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                runway_api::codes::FORBIDDEN,
                "a job token may only read its job's subtree and spawn its children",
            )
        })
    }
}

impl Caller {
    /// The admin behind the request; anyone else is refused (403) with what only an admin
    /// may do.
    pub fn admin(&self, what: &str) -> Result<&User, ApiError> {
        let user = self.user()?;
        if user.role == runway_core::users::Role::Admin {
            Ok(user)
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                runway_api::codes::FORBIDDEN,
                format!("only an admin may {what}"),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Credential>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("missing token"))
    }
}

/// A new browser session cookie value (256 random bits) and the hash stored for it.
pub fn new_session_secret() -> (String, Vec<u8>) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let value: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    let stored = hash(&value);
    (value, stored)
}

/// What is stored for a session cookie: its SHA-256.
pub fn session_hash(secret: &str) -> Vec<u8> {
    hash(secret)
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(|cookie| cookie.value().to_string())
}

/// Checks the bearer token or, without one, the session cookie. `None`: neither was sent.
pub async fn authenticate(
    state: &ServerState,
    headers: &HeaderMap,
) -> Result<Option<Credential>, ApiError> {
    if let Some(token) = bearer(headers)? {
        if token.starts_with(JOB_TOKEN_PREFIX) {
            return verify_job_token(state, token).await.map(Some);
        }
        return match verify(&state.app, token).await {
            Ok(Ok(holder)) => Ok(Some(Credential::Bearer(holder))),
            Ok(Err(refusal)) => Err(refusal.error()),
            Err(error) => Err(ApiError::from(error)),
        };
    }
    let Some(secret) = session_cookie(headers) else {
        return Ok(None);
    };
    match state.app.web_session_find(hash(&secret)).await {
        Ok(Some(holder)) if holder.token.expired(state.app.now()) => Err(ApiError::unauthorized(
            "the session's token has expired; sign in again with a valid token",
        )),
        Ok(Some(holder)) => Ok(Some(Credential::Cookie(holder))),
        Ok(None) => Err(ApiError::unauthorized(
            "the session has expired or ended; sign in again",
        )),
        Err(error) => Err(ApiError::from(error)),
    }
}

/// The job a job token is for, if it is valid: issued by this server for the attempt its job
/// runs now.
async fn verify_job_token(state: &ServerState, token: &str) -> Result<Credential, ApiError> {
    let invalid = || {
        ApiError::unauthorized(
            "the job token is not valid: it works only while the attempt it was given to runs",
        )
    };
    let claim = JobTokenClaim::parse(token).ok_or_else(invalid)?;
    let tokens = state.app.job_tokens().ok_or_else(invalid)?;
    let job = match state.app.job(Access::All, claim.job).await {
        Ok(job) => job,
        Err(runway_core::Error::NotFound { .. }) => return Err(invalid()),
        Err(error) => return Err(error.into()),
    };
    if !tokens.verify(&claim, &job) {
        return Err(invalid());
    }
    Ok(Credential::Job(job.id))
}

/// Whether a job token for `own` may make this request: read (GET) its job or a job of its
/// subtree, or spawn its own children.
async fn job_scope(
    state: &ServerState,
    own: JobId,
    method: &axum::http::Method,
    path: &str,
) -> Result<(), ApiError> {
    let forbidden = || {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            runway_api::codes::FORBIDDEN,
            format!(
                "a job token may only read job {own} and its subtree and spawn its children \
                 (POST /v1/jobs/{own}/children)"
            ),
        )
    };
    let mut parts = path
        .strip_prefix("/v1/jobs/")
        .ok_or_else(forbidden)?
        .split('/');
    let target: JobId = parts
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(forbidden)?;
    let rest: Vec<&str> = parts.collect();
    if *method == axum::http::Method::POST {
        return if rest == ["children"] && target == own {
            Ok(())
        } else {
            Err(forbidden())
        };
    }
    if *method != axum::http::Method::GET {
        return Err(forbidden());
    }
    // The target or one of its ancestors must be the token's job.
    let mut next = Some(target);
    while let Some(id) = next {
        if id == own {
            return Ok(());
        }
        next = match state.app.job(Access::All, id).await {
            Ok(job) => job.parent,
            Err(runway_core::Error::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
    }
    Err(forbidden())
}

/// Middleware on every `/v1` route: a valid bearer token or session cookie, or 401. A request
/// that changes something on the strength of the cookie must also come from an allowed
/// Origin: SameSite=Strict and an Origin check, against cross-site requests.
pub async fn require_token(
    State(state): State<ServerState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let credential = authenticate(&state, request.headers()).await?.ok_or_else(|| {
        ApiError::unauthorized("missing token; send `Authorization: Bearer <token>` (runway serve printed it at first start)")
    })?;
    let mut request = request;
    request.extensions_mut().insert(credential.clone());
    if let Credential::Job(own) = credential {
        job_scope(&state, own, request.method(), request.uri().path()).await?;
        // Routes that show more than one job (a tree's ancestors) trim what lies outside it.
        return Ok(next.run(request).await);
    }
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !reads {
        state.write_limits.check(&credential)?;
    }
    if matches!(credential, Credential::Cookie(_)) && !reads {
        if request.headers().get(axum::http::header::ORIGIN).is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                runway_api::codes::FORBIDDEN_ORIGIN,
                "a change made with the session cookie must carry an Origin header",
            ));
        }
        crate::live::check_origin(
            request.headers(),
            &state.app.config().server.allowed_origins,
        )?;
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_distinct_and_well_formed() {
        let first = generate_token();
        let second = generate_token();
        assert_ne!(first, second);
        assert_eq!(first.len(), 4 + 64);
        assert_eq!(lookup_prefix(&first), Some(&first[4..16]));
        assert_eq!(lookup_prefix("rwy_short"), None);
        assert_eq!(lookup_prefix(&first.replace("rwy_", "xyz_")), None);
    }
}
