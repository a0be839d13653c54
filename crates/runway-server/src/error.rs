//! The one error type of the HTTP layer: every failure becomes `{"error":{"code","message"}}`
//! with the right status. A 5xx is a bug: its cause is logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runway_api::{ErrorBody, ErrorDetail, ErrorResponse, codes};
use runway_core::{Error, StoreError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Vec<ErrorDetail>>,
    /// Seconds to send in `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }

    /// The store's disk is full: 507, which says nothing changed and a retry later may work.
    /// The cause (which disk) is logged; the client learns what to do.
    pub fn storage_full(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "a write failed: the disk is full");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            codes::STORAGE_FULL,
            "the server's disk is full: nothing was stored; retry later, once an operator has freed space",
        )
    }

    /// The database is away for a moment (restarting, a lost connection): 503, try again.
    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(%cause, "the database cannot be reached");
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UNAVAILABLE,
                "the server cannot reach its database now; retry in a moment (a submit with an \
                 Idempotency-Key is safe to repeat)",
            )
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error answering a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error; the server log has the cause",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::from(Error::Store(error))
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let (status, code) = match error.innermost() {
            Error::UnknownType { .. } => (StatusCode::UNPROCESSABLE_ENTITY, codes::UNKNOWN_TYPE),
            Error::UnknownQueue { .. } => (StatusCode::UNPROCESSABLE_ENTITY, codes::UNKNOWN_QUEUE),
            Error::InvalidInput { .. } => (StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_INPUT),
            Error::InvalidField { field, message }
                if field == "input" && message.contains("nested") =>
            {
                (StatusCode::BAD_REQUEST, codes::TOO_DEEP)
            }
            Error::InvalidField { .. } => (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST),
            Error::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            Error::Forbidden { .. } => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            Error::NotFound { .. }
            | Error::UnknownUser { .. }
            | Error::UnknownToken { .. }
            | Error::NoArtifact { .. }
            | Error::UnknownTrigger { .. }
            | Error::NoWebhook { .. } => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            Error::Conflict { .. } => (StatusCode::CONFLICT, codes::CONFLICT),
            Error::Store(StoreError::Full(_)) => {
                return ApiError::storage_full(error.innermost());
            }
            Error::Store(StoreError::Unavailable(_)) => {
                return ApiError::unavailable(error.innermost());
            }
            Error::Store(_) | Error::InBatch { .. } | Error::InChild { .. } => {
                return ApiError::internal(error);
            }
        };
        let details = match error.innermost() {
            Error::InvalidInput { violations, .. } => Some(
                violations
                    .iter()
                    .map(|violation| ErrorDetail {
                        path: violation.path.clone(),
                        message: violation.message.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        ApiError {
            details,
            ..ApiError::new(status, code, error.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorResponse {
                error: ErrorBody {
                    code: self.code.to_string(),
                    message: self.message,
                    details: self.details,
                },
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"runway\""),
            );
        }
        response
    }
}

/// A path segment, or a JSON 400 when it is not valid (e.g. not UTF-8 once decoded).
pub fn path_param<T>(
    segment: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, ApiError> {
    segment
        .map(|axum::extract::Path(value)| value)
        .map_err(|rejection| {
            ApiError::bad_request(format!("invalid path: {}", rejection.body_text()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_is_away_answers_503_with_a_retry_after() {
        let response =
            ApiError::from(StoreError::Unavailable("connection refused".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[axum::http::header::RETRY_AFTER],
            axum::http::HeaderValue::from(1)
        );
    }
}
