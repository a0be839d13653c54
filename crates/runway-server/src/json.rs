//! Request bodies: read under the size limit, parsed as JSON with a depth limit, then mapped
//! onto the request type with the path of any field that does not fit. Each failure gets its
//! own error code and a message that points at the spot.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use runway_api::codes;
use runway_core::submission::{MAX_INPUT_DEPTH, json_depth};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ServerState;
use crate::error::ApiError;

/// Deepest nesting accepted in any request body: a job input may be nested
/// `MAX_INPUT_DEPTH` levels inside the few levels of the request itself, and children nested
/// as deep as the default `server.max_tree_depth` (8) allows, two levels each (`children`,
/// the child).
pub const MAX_BODY_DEPTH: usize = MAX_INPUT_DEPTH + 4 + 2 * 8;

/// A JSON request body of type `T`, or an [`ApiError`] saying what is wrong with it.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ServerState> for JsonBody<T> {
    type Rejection = ApiError;

    /// The whole body must arrive within `server.idle_timeout`, however slowly it trickles:
    /// a client that sends a byte now and then must not hold a connection for ever.
    async fn from_request(request: Request, state: &ServerState) -> Result<Self, Self::Rejection> {
        let bytes = read_json_body(request, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// A body declared as JSON (or not declared), read whole under the size limit and within
/// `server.idle_timeout`, not yet parsed.
pub async fn read_json_body(request: Request, state: &ServerState) -> Result<Bytes, ApiError> {
    if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                format!("the body is `{content_type}`; send application/json"),
            ));
        }
    }
    let deadline = state.app.config().server.idle_timeout;
    let read = tokio::time::timeout(deadline, Bytes::from_request(request, state))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} (server.idle_timeout); send it faster",
                    humantime::format_duration(deadline)
                ),
            )
        })?;
    let bytes = read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::BODY_TOO_LARGE,
                "the request body is larger than the server accepts (server.body_limit); send less, or split a batch",
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {rejection}"))
        }
    })?;
    Ok(bytes)
}

/// Parses a body; public so tests can check the mapping without a server.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_JSON,
            "the request body is empty; send a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|error| {
        if error.to_string().contains("recursion limit") {
            too_deep()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::MALFORMED_JSON,
                format!("the body is not valid JSON: {error}"),
            )
        }
    })?;
    if json_depth(&value) > MAX_BODY_DEPTH {
        return Err(too_deep());
    }
    // serde would read a struct from an array of its fields in order: every body is an object.
    if !value.is_object() {
        let kind = match value {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(ApiError::bad_request(format!(
            "the body is {kind}; send a JSON object"
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::bad_request(format!("invalid request: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid request at `{path}`: {inner}"))
        }
    })
}

fn too_deep() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::TOO_DEEP,
        format!(
            "the JSON body is nested too deeply; job input may nest at most {MAX_INPUT_DEPTH} levels"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_api::SubmitJobRequest;

    #[test]
    fn a_body_must_be_an_object_not_an_array_of_its_fields() {
        let (code_, message) = code(r#"["shell", null]"#);
        assert_eq!(code_, codes::INVALID_REQUEST);
        assert!(message.contains("the body is an array"), "{message}");
        let (_, message) = code("null");
        assert!(message.contains("the body is null"), "{message}");
    }

    fn code(body: &str) -> (&'static str, String) {
        let error = parse::<SubmitJobRequest>(body.as_bytes()).unwrap_err();
        (error.code, error.message)
    }

    #[test]
    fn each_kind_of_bad_body_has_its_code() {
        assert_eq!(code("").0, codes::MALFORMED_JSON);
        assert_eq!(code("{\"type\": ").0, codes::MALFORMED_JSON);
        let (unknown, message) = code(r#"{"type": "shell", "colour": 1}"#);
        assert_eq!(unknown, codes::INVALID_REQUEST);
        assert!(message.contains("colour"), "{message}");
        let (wrong, message) = code(r#"{"type": "shell", "priority": "high"}"#);
        assert_eq!(wrong, codes::INVALID_REQUEST);
        assert!(message.contains("priority"), "{message}");
        assert_eq!(code(r#"{"input": 1}"#).0, codes::INVALID_REQUEST);
        let deep = format!(
            "{{\"type\":\"x\",\"input\":{}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(code(&deep).0, codes::TOO_DEEP);
        let deeper = format!(
            "{{\"type\":\"x\",\"input\":{}1{}}}",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(code(&deeper).0, codes::TOO_DEEP);
    }

    #[test]
    fn a_good_body_parses() {
        let request: SubmitJobRequest =
            parse(br#"{"type": "shell", "input": {"command": "true"}, "priority": 3}"#).unwrap();
        assert_eq!(request.job_type, "shell");
        assert_eq!(request.priority, Some(3));
    }
}
