//! The dashboard: the files of `web/`, embedded in the binary at compile time (debug builds
//! read them from disk, so the page can be edited without rebuilding), served under `/static/`
//! with a strict Content-Security-Policy. The page's own paths (`/`, `/jobs/42`, `/queues`)
//! get `index.html`, which routes itself; any other path is a 404 (with the page, for a
//! browser, so it can say so).
//!
//! The page needs no authentication to load: it holds no data. It signs in and reads
//! everything through the authenticated `/v1` API.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// No inline script or style, nothing from elsewhere: job data shown as HTML by mistake still
/// could not run or load anything.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; font-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
    require-trusted-types-for 'script'; trusted-types 'none'";

/// `GET /static/{*path}`: one file of the page.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // The folder's README is for developers, not part of the page.
    let file = (path != "README.md").then(|| Assets::get(&path)).flatten();
    match file {
        Some(file) => file_response(file, &headers),
        None => ApiError::not_found(format!("no file `/static/{path}` in this dashboard"))
            .into_response(),
    }
}

/// Everything no route took: the page at its own paths; for any other path a 404, with the
/// page when a browser asks for HTML (it shows "not found"), else the API's JSON error.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let reads = method == Method::GET || method == Method::HEAD;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let page = Assets::get("index.html");
    match page {
        Some(file) if reads && is_page_path(uri.path()) => file_response(file, &headers),
        Some(file) if reads && wants_html && !uri.path().starts_with("/v1/") => {
            // Never a 304: a revalidated 404 would show an empty page.
            let mut response = file_response(file, &HeaderMap::new());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
        _ => ApiError::not_found("no such route; the API is described at /v1/openapi.json")
            .into_response(),
    }
}

/// The paths the page routes: `/`, `/jobs`, `/jobs/{id}`, `/submit`, `/queues`, `/triggers`.
fn is_page_path(path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|rest| !rest.is_empty())
        .unwrap_or(path);
    match path {
        "/" | "/jobs" | "/submit" | "/queues" | "/triggers" => true,
        _ => path
            .strip_prefix("/jobs/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
    }
}

fn file_response(file: rust_embed::EmbeddedFile, headers: &HeaderMap) -> Response {
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    );
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mime = mime_type(file.metadata.mimetype());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let response_headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&mime) {
        response_headers.insert(header::CONTENT_TYPE, mime);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, etag);
    }
    for (name, value) in [
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        response_headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Text types say their charset, so no browser guesses one.
fn mime_type(mime: &str) -> String {
    if mime.starts_with("text/") || mime.ends_with("/javascript") || mime.ends_with("/json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}
