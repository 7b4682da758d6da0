//! Transport security on every answer: the `Host` allow-list (DNS rebinding), the CORS
//! allow-list, and `X-Content-Type-Options`, `X-Frame-Options` and a Content-Security-Policy.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plumb_core::ErrorCode;

use crate::{ApiError, AppState};

/// `--allowed-hosts`, `--cors-allowed-origins` and `--x-frame-options`, resolved.
#[derive(Debug, Clone)]
pub struct Security {
    /// `Host` patterns answered: `name`, `name:port`, `*.domain`, `name:*`; `*` alone = any.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose cross-origin requests are answered; `*` = any.
    pub cors_allowed_origins: Vec<String>,
    /// `SAMEORIGIN` (default), `DENY`, or `NONE` to send no such header.
    pub x_frame_options: String,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["*".into()],
            cors_allowed_origins: Vec::new(),
            x_frame_options: "SAMEORIGIN".into(),
        }
    }
}

/// The default `--allowed-hosts`: localhost names and the address the server is bound to
/// (any port).
pub fn default_allowed_hosts(bound_host: &str) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .map(|h| (*h).to_string())
        .collect();
    let bound = bound_host.trim();
    let bound = if bound.contains(':') && !bound.starts_with('[') {
        format!("[{bound}]")
    } else {
        bound.to_string()
    };
    if !bound.is_empty() && !hosts.contains(&bound) {
        hosts.push(bound);
    }
    hosts
}

/// True when `pattern` admits the `Host` value `host` (`name[:port]`, lowercase).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    let name = plumb_core::registry::split_port(host);
    let port = host.get(name.len() + 1..).unwrap_or("");
    let (p_name, p_port) = match plumb_core::registry::split_port(&pattern) {
        n if n.len() < pattern.len() => (n.to_string(), Some(pattern[n.len() + 1..].to_string())),
        _ => match pattern.strip_suffix(":*") {
            Some(n) => (n.to_string(), None),
            None => (pattern.clone(), None),
        },
    };
    let name_ok = match p_name.strip_prefix("*.") {
        Some(suffix) => name.ends_with(&format!(".{suffix}")),
        None => p_name == name,
    };
    name_ok && p_port.is_none_or(|p| p == port)
}

impl Security {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|p| host_matches(p, &host))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.cors_allowed_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }

    /// The names (no wildcard for "any") an `http(s)` model-version source may use for this
    /// server.
    pub fn server_hosts(&self) -> Vec<String> {
        self.allowed_hosts
            .iter()
            .filter(|h| h.as_str() != "*" && !h.ends_with(":*"))
            .cloned()
            .chain(
                self.allowed_hosts
                    .iter()
                    .filter_map(|h| h.strip_suffix(":*").map(str::to_string)),
            )
            .collect()
    }
}

fn forbidden(message: String) -> Response {
    ApiError::new(ErrorCode::PermissionDenied, message).into_response()
}

/// Is `origin` (`scheme://host[:port]`) the server itself, as the request's `Host` names it?
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host))
}

/// The middleware: refuses foreign `Host`s (403; `/health` and `/version` exempt), answers CORS
/// preflights, refuses cross-origin requests from origins not allowed, and adds the security
/// headers to every answer.
pub async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let sec = &st.config.security;
    let path = req.uri().path();
    let exempt = path == "/health" || path == "/version";
    if !exempt {
        if let Some(host) = req.headers().get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !sec.host_allowed(host) {
                return finish(
                    sec,
                    forbidden(format!(
                        "Invalid Host header '{}': this server answers only the hosts named by \
                         --allowed-hosts (a guard against DNS rebinding).",
                        host.escape_debug()
                    )),
                );
            }
        }
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let cross = origin.as_deref().filter(|o| !same_origin(o, req.headers()));
    let allowed_origin = cross.filter(|o| sec.origin_allowed(o)).map(str::to_string);
    if let Some(o) = cross {
        let reads = req.method() == Method::GET || req.method() == Method::HEAD;
        if allowed_origin.is_none() && !reads {
            return finish(
                sec,
                forbidden(format!(
                    "Cross-origin request from '{}' refused: the origin is not in \
                     --cors-allowed-origins.",
                    o.escape_debug()
                )),
            );
        }
    }
    if req.method() == Method::OPTIONS && allowed_origin.is_some() {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Authorization"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return finish(sec, with_origin(resp, allowed_origin.as_deref()));
    }
    let resp = next.run(req).await;
    finish(sec, with_origin(resp, allowed_origin.as_deref()))
}

fn with_origin(mut resp: Response, origin: Option<&str>) -> Response {
    if let Some(v) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

fn finish(sec: &Security, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !sec.x_frame_options.eq_ignore_ascii_case("none") {
        if let Ok(v) = HeaderValue::from_str(&sec.x_frame_options.to_ascii_uppercase()) {
            h.insert(header::X_FRAME_OPTIONS, v);
        }
    }
    // Answers are JSON or artifact bytes: nothing they hold may run as a page. The UI, when it
    // is served, sets its own policy on its own answers.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'self'; sandbox"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let sec = Security {
            allowed_hosts: vec![
                "localhost".into(),
                "mlflow.corp:8080".into(),
                "*.internal".into(),
                "10.0.0.5:*".into(),
                "[::1]".into(),
            ],
            ..Security::default()
        };
        for ok in [
            "localhost",
            "LOCALHOST:5000",
            "mlflow.corp:8080",
            "a.internal",
            "b.a.internal:1",
            "10.0.0.5:5000",
            "[::1]:5000",
        ] {
            assert!(sec.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "mlflow.corp:8081",
            "mlflow.corp",
            "internal",
            "xinternal",
            "localhost.evil.example",
            "10.0.0.50:5000",
            "",
        ] {
            assert!(!sec.host_allowed(bad), "{bad}");
        }
        assert!(Security::default().host_allowed("anything:1"));
    }

    #[test]
    fn defaults_name_localhost_and_the_bound_address() {
        let hosts = default_allowed_hosts("0.0.0.0");
        assert!(hosts.contains(&"0.0.0.0".to_string()));
        assert!(hosts.contains(&"localhost".to_string()));
        assert_eq!(default_allowed_hosts("::1").len(), 3);
        let sec = Security {
            allowed_hosts: default_allowed_hosts("127.0.0.1"),
            ..Security::default()
        };
        assert!(sec.host_allowed("127.0.0.1:5000"));
        assert!(!sec.host_allowed("attacker.example:5000"));
        assert_eq!(sec.server_hosts(), sec.allowed_hosts);
    }
}
