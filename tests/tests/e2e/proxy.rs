//! The data proxy in the real window: the page calls the project through
//! `supabaseUrl()` and never holds a token.

use serde_json::{Value, json};
use tessera_e2e::*;

/// `fetch(base + path, init)` in the page; returns `{status, body, proxied}`.
async fn page_fetch(app: &fantoccini::Client, path: &str, init: Value) -> Value {
    app.execute_async(
        r#"const [path, init, done] = arguments;
           (async () => {
             const { supabaseUrl, supabaseFetch } = window.__TAURI__.tessera;
             const r = await supabaseFetch((await supabaseUrl()) + path, init);
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

    // The Edge Function stand-in sees the user, whatever the page claimed.
    let r = page_fetch(
        &app,
        "/functions/v1/whoami",
        json!({"method": "POST", "headers": {"authorization": "Bearer forged"}, "body": "{}"}),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    let claims: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(claims["claims"]["email"], "data@example.com", "{claims}");

    // A Storage round trip with a binary body and a range.
    let r = app
        .execute_async(
            r#"const done = arguments[0];
               (async () => {
                 const { supabaseUrl, supabaseFetch } = window.__TAURI__.tessera;
                 const base = await supabaseUrl();
                 const bytes = new Uint8Array(1024).map((_, i) => i % 256);
                 const up = await supabaseFetch(base + '/storage/v1/object/docs/page/bytes.bin', {
                   method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
                 const all = await supabaseFetch(base + '/storage/v1/object/authenticated/docs/page/bytes.bin');
                 const got = new Uint8Array(await all.arrayBuffer());
                 const part = await supabaseFetch(base + '/storage/v1/object/docs/page/bytes.bin',
                   { headers: { range: 'bytes=255-258' } });
                 done({ up: up.status, all: all.status, same: got.length === 1024 && got.every((b, i) => b === i % 256),
                        part: part.status, range: part.headers.get('content-range'),
                        partBytes: Array.from(new Uint8Array(await part.arrayBuffer())) });
               })().catch((e) => done({ error: String(e) }));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(r["up"], 200, "{r}");
    assert_eq!(
        (r["all"].clone(), r["same"].clone()),
        (json!(200), json!(true)),
        "{r}"
    );
    assert_eq!(r["part"], 206, "{r}");
    assert_eq!(r["range"], "bytes 255-258/1024", "{r}");
    assert_eq!(r["partBytes"], json!([255, 0, 1, 2]), "{r}");

    // No token the server issued is anywhere the page can see.
    let issued: Vec<String> =
        serde_json::from_value(h.get("/_emulator/issued-tokens").await).unwrap();
    assert!(!issued.is_empty());
    let seen = webview_contents(&app).await + &r.to_string() + &claims.to_string();
    for token in &issued {
        assert!(!seen.contains(token.as_str()), "a token reached the page");
    }
    app.close().await.unwrap();
}
