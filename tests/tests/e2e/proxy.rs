//! The data proxy in the real window: the page calls the project through
//! `supabaseUrl()` and never holds a token.

use serde_json::{Value, json};
use tessera_e2e::*;

/// `fetch(base + path, init)` in the page; returns `{status, body, proxied}`.
async fn page_fetch(app: &fantoccini::Client, path: &str, init: Value) -> Value {
    app.execute_async(
        r#"const [path, init, done] = arguments;
           (async () => {
             const base = await window.__TAURI__.tessera.supabaseUrl();
             const r = await fetch(base + path, init);
             const body = await r.text();
             done({ status: r.status, body, proxied: r.headers.get('x-tessera-proxy') });
           })().catch((e) => done({ status: -1, body: String(e) }));"#,
        vec![json!(path), init],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_page_calls_the_project_through_the_proxy_with_no_token() {
    let h = Harness::start().await;
    h.create_user("data@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "data@example.com").await;
    let mine = text(&app, "session-id").await;

    // The devices RPC, with a forged Authorization the proxy replaces.
    let r = page_fetch(
        &app,
        "/rest/v1/rpc/tessera_list_sessions",
        json!({"method": "POST", "headers": {"content-type": "application/json",
               "authorization": "Bearer forged", "apikey": "forged"}, "body": "{}"}),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    assert!(r["body"].as_str().unwrap().contains(&mine), "{r}");

    // Session management is not reachable through the base.
    for path in [
        "/auth/v1/user",
        "/rest/v1/../../auth/v1/user",
        "/auth/v1/token?grant_type=refresh_token",
    ] {
        let r = page_fetch(&app, path, json!({"method": "GET"})).await;
        assert_eq!(r["status"], 403, "{path}: {r}");
        assert_eq!(r["proxied"], "1", "{path}: {r}");
    }
    app.close().await.unwrap();
}
