//! Artifacts: the list of a job's files, and each file's bytes. A file is served with its
//! recorded type, its SHA-256 as ETag, Range requests, `nosniff` and a `sandbox` CSP, so an
//! artifact never runs script in the dashboard's origin: only audio, video, raster images and
//! plain text are shown inline; HTML, SVG and everything else are downloads.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runway_api::{ArtifactBody, ArtifactListResponse, ErrorResponse};
use runway_core::store::Artifact;
use tower::ServiceExt;

use crate::auth::Caller;
use crate::error::{ApiError, path_param};
use crate::{ServerState, params};

fn body(artifact: Artifact) -> ArtifactBody {
    ArtifactBody {
        name: artifact.name,
        size: artifact.size,
        sha256: artifact.sha256,
        content_type: artifact.content_type,
        attempt: artifact.attempt,
        created_at: artifact.created_at,
    }
}

/// The files a job produced, by name.
#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts", tag = "artifacts", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$")),
    responses(
        (status = 200, body = ArtifactListResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn list_artifacts(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ArtifactListResponse>, ApiError> {
    let artifacts = state
        .app
        .artifacts(caller.access(), params::job_id(&path_param(id)?)?)
        .await?;
    Ok(Json(ArtifactListResponse {
        artifacts: artifacts.into_iter().map(body).collect(),
    }))
}

/// Whether a browser may show this type in place: media and plain text, which run no script.
/// SVG is an image that can hold script, so it is a download like HTML and anything unknown.
pub fn shown_inline(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence == "text/plain"
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || (essence.starts_with("image/") && essence != "image/svg+xml")
}

/// One artifact's bytes (a part with `Range`; 304 with a matching `If-None-Match`).
#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{*name}", tag = "artifacts", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$"),
        ("name" = String, Path, description = "the artifact's name; may hold `/`"),
    ),
    responses(
        (status = 200, description = "the bytes", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"),
        (status = 304, description = "the copy the client has is current"),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 416, description = "the range is outside the file"),
    ))]
pub async fn get_artifact(
    State(state): State<ServerState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let (id, name) = path_param(path)?;
    let (artifact, file) = state
        .app
        .artifact(caller.access(), params::job_id(&id)?, &name)
        .await?;
    let etag = format!("\"{}\"", artifact.sha256);
    let current = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // Only what a range read needs reaches the file service.
        let mut forwarded = Request::builder().method(request.method()).uri("/");
        for name in [header::RANGE, header::IF_RANGE] {
            if let Some(value) = request.headers().get(&name) {
                forwarded = forwarded.header(name, value);
            }
        }
        let forwarded = forwarded.body(Body::empty()).map_err(ApiError::internal)?;
        match tower_http::services::ServeFile::new(&file)
            .oneshot(forwarded)
            .await
        {
            // Replaced by a later attempt or deleted since the row was read.
            Ok(served) if served.status() == StatusCode::NOT_FOUND => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    runway_api::codes::NOT_FOUND,
                    format!(
                        "the artifact `{name}` of job {id} is gone: it was replaced or deleted; list the job's artifacts again"
                    ),
                ));
            }
            Ok(served) => served.map(Body::new),
            Err(error) => return Err(ApiError::internal(error)),
        }
    };
    let modified = response.status() != StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&artifact.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let inline = shown_inline(&artifact.content_type);
    if modified {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; media-src 'self'; img-src 'self'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        disposition(inline, &artifact.name),
    );
    Ok(response)
}

/// `inline` or `attachment`, with the file's last name component (RFC 6266, UTF-8 encoded).
fn disposition(inline: bool, name: &str) -> HeaderValue {
    let file = name.rsplit('/').next().unwrap_or(name);
    let encoded = percent_encoding::utf8_percent_encode(file, percent_encoding::NON_ALPHANUMERIC);
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!("{kind}; filename*=UTF-8''{encoded}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_media_and_plain_text_are_shown_in_place() {
        for shown in [
            "audio/wav",
            "video/mp4",
            "image/png",
            "text/plain",
            "text/plain; charset=utf-8",
        ] {
            assert!(shown_inline(shown), "{shown}");
        }
        for download in [
            "text/html",
            "image/svg+xml",
            "application/octet-stream",
            "application/xhtml+xml",
            "text/javascript",
            "application/pdf",
        ] {
            assert!(!shown_inline(download), "{download}");
        }
    }

    #[test]
    fn the_file_name_is_encoded_in_the_disposition() {
        assert_eq!(
            disposition(false, "pages/a b\"\r\n.html"),
            "attachment; filename*=UTF-8''a%20b%22%0D%0A%2Ehtml"
        );
        assert_eq!(
            disposition(true, "episode.wav"),
            "inline; filename*=UTF-8''episode%2Ewav"
        );
    }
}
