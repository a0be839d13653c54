//! Which `Host` names this server answers to. A browser sends the name it resolved, so a page of
//! a foreign site whose name was made to resolve to this server (DNS rebinding) arrives with
//! that foreign name: refused. IP literals and `localhost` need no configuration; any other
//! name must be the host of an origin in `server.allowed_origins`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use runway_api::codes;

use crate::ServerState;
use crate::error::ApiError;

/// Refuses a request whose `Host` is not one of this server's names. A request without `Host`
/// (HTTP/1.0 programs) is let through: no browser sends one.
pub async fn require_known_host(
    State(state): State<ServerState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let allowed = &state.app.config().server.allowed_origins;
    if let Some(host) = request_host(request.headers())
        && !is_known_host(host, allowed)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::UNKNOWN_HOST,
            format!(
                "the Host header `{host}` names no address of this server; use its IP address or \
                 localhost, or add the name's origin (e.g. \"http://{host}\") to server.allowed_origins"
            ),
        ));
    }
    Ok(next.run(request).await)
}

/// The request's `Host` header as text; an unreadable one counts as `""` (refused).
pub fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::HOST)
        .map(|host| host.to_str().unwrap_or_default())
}

/// Whether `host` (`name[:port]`) is an IP literal, `localhost`, or the host of an allowed origin.
pub fn is_known_host(host: &str, allowed_origins: &[String]) -> bool {
    let name = strip_port(host);
    if name.eq_ignore_ascii_case("localhost") || is_ip_literal(name) {
        return true;
    }
    allowed_origins.iter().any(|origin| {
        origin
            .split_once("://")
            .is_some_and(|(_, origin_host)| strip_port(origin_host).eq_ignore_ascii_case(name))
    })
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split_once(']').map_or(host, |(address, _)| address);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_ip_literal(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_are_known_with_any_port() {
        for host in [
            "127.0.0.1:7869",
            "127.0.0.1",
            "10.1.2.3:80",
            "[::1]:7869",
            "localhost:7869",
            "LOCALHOST",
        ] {
            assert!(is_known_host(host, &[]), "{host}");
        }
    }

    #[test]
    fn other_names_are_known_only_from_allowed_origins() {
        let allowed = vec!["https://jobs.example.com".to_string()];
        assert!(is_known_host("jobs.example.com", &allowed));
        assert!(is_known_host("jobs.example.com:443", &allowed));
        for host in [
            "evil.example",
            "evil.example:7869",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "",
        ] {
            assert!(!is_known_host(host, &allowed), "{host}");
        }
    }
}
