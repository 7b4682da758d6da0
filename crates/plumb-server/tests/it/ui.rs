//! The embedded web UI over HTTP: the page and its hashed assets with their types, caching and
//! Content-Security-Policy; a revalidation answers 304; any other name under `/static/` is an
//! MLflow-shaped 404, however it is spelled.

use crate::support::TestServer;

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let s = TestServer::spawn().await;
    let page = s.client.get(s.url("/")).send().await.expect("send");
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    assert_eq!(h["cache-control"], "no-cache");
    let csp = h["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text().await.expect("html");
    let js = html
        .split('"')
        .find(|p| p.starts_with("/static/app.js?v="))
        .expect("the page names its script")
        .to_string();
    assert!(html.contains("/static/app.css?v="));
    let asset = s.client.get(s.url(&js)).send().await.expect("send");
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/javascript"));
    assert!(asset.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .contains("immutable"));
    let tag = asset.headers()["etag"].clone();
    let again = s
        .client
        .get(s.url("/static/app.js"))
        .header("if-none-match", tag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 304);
    for path in [
        "/static/nope.js",
        "/static/..%2fCargo.toml",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/app.js%00",
        "/static/",
    ] {
        let (st, b) = s.raw("GET", path, b"").await;
        assert!((400..500).contains(&st), "{path}: {st} {b}");
    }
}
