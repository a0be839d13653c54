//! Exit codes scripts can rely on, and the error type that carries one.

use runway_client::ClientError;

pub const OK: u8 = 0;
/// A job failed (`wait`, `follow`), or a local operation failed.
pub const FAILED: u8 = 1;
/// Bad usage, or the server refused the request as invalid (400, 413, 415, 422).
pub const USAGE: u8 = 2;
/// A job was cancelled (`wait`).
pub const CANCELLED: u8 = 3;
pub const NOT_FOUND: u8 = 4;
/// Missing or wrong token.
pub const AUTH: u8 = 5;
/// The request conflicts with the job's state (cancel a finished job, retry a running one).
pub const CONFLICT: u8 = 6;
/// `wait --timeout` ran out before the jobs ended.
pub const TIMED_OUT: u8 = 7;
/// The server cannot be reached (sysexits EX_UNAVAILABLE).
pub const UNREACHABLE: u8 = 69;
/// The server failed or answered something unreadable (EX_SOFTWARE).
pub const SERVER_ERROR: u8 = 70;
/// The server cannot take the request now and nothing changed: its disk is full, or it holds
/// its limit of connections (HTTP 503, 507). Retry later (EX_TEMPFAIL).
pub const TRY_LATER: u8 = 75;
/// `runway serve` was given a bad configuration (EX_CONFIG).
pub const CONFIG: u8 = 78;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> CliError {
        let code = match &error {
            ClientError::Unreachable { .. } => UNREACHABLE,
            ClientError::Decode(_) => SERVER_ERROR,
            ClientError::Api { status, .. } => match status {
                401 | 403 => AUTH,
                404 => NOT_FOUND,
                409 => CONFLICT,
                400..=499 => USAGE,
                503 | 507 => TRY_LATER,
                _ => SERVER_ERROR,
            },
        };
        CliError::new(code, error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    /// A closed stdout (`runway ls | head`) is not a failure: it exits 0 quietly.
    fn from(error: std::io::Error) -> CliError {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::new(OK, String::new())
        } else {
            CliError::new(FAILED, error.to_string())
        }
    }
}
