//! The web UI, embedded: `index.html` at `/` and its two assets under `/static/`, built from
//! `ui/` (Preact, uPlot, esbuild) into `crates/plumb-server/ui/` and committed, so building
//! the binary needs no Node. The page talks only to the REST API; it gets its own
//! Content-Security-Policy (scripts, styles and connections from this origin only).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &[u8] = include_bytes!("../ui/index.html");
const APP_JS: &[u8] = include_bytes!("../ui/app.js");
const APP_CSS: &[u8] = include_bytes!("../ui/app.css");

/// What the page may load: only from this origin (images also as data/blob URLs).
pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'self'";

fn etag(bytes: &[u8]) -> String {
    // FNV-1a: a stable tag of the embedded bytes (no secrecy needed).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn asset(
    headers: &HeaderMap,
    bytes: &'static [u8],
    kind: &'static str,
    cache: &'static str,
) -> Response {
    let tag = etag(bytes);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind)], bytes).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// `GET /`: the page (revalidated each time, so a new binary's assets are picked up).
pub async fn index(headers: HeaderMap) -> Response {
    asset(&headers, INDEX, "text/html; charset=utf-8", "no-cache")
}

/// `GET /static/{file}`: the bundle; its URL carries a content hash, so it is cached for good.
pub async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    const FOREVER: &str = "public, max-age=31536000, immutable";
    match file.as_str() {
        "app.js" => asset(&headers, APP_JS, "text/javascript; charset=utf-8", FOREVER),
        "app.css" => asset(&headers, APP_CSS, "text/css; charset=utf-8", FOREVER),
        _ => crate::error::ApiError::new(
            plumb_core::ErrorCode::ResourceDoesNotExist,
            format!("No UI file '{file}'"),
        )
        .into_response(),
    }
}
