//! The data proxy (`auth_core::proxy`) against the emulator's PostgREST RPCs, Edge Function
//! and Storage stand-ins, over real HTTP: header replacement, refusals, one refresh and
//! retry on an expired JWT, pass-through, limits and time-outs.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use auth_core::proxy::{DataProxy, ProxyConfig, ProxyRequest, ProxyResponse};
use serde_json::Value;
use support::*;

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> ProxyRequest {
    ProxyRequest {
        method: method.into(),
        path_and_query: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    }
}

fn json(r: &ProxyResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

const FORGED: &[(&str, &str)] = &[
    ("authorization", "Bearer forged.by.page"),
    ("apikey", "forged"),
    ("cookie", "a=b"),
];

#[tokio::test]
async fn the_users_token_replaces_whatever_the_page_sent() {
    let env = Env::start().await;
    let user = env.create_user("proxy@example.com").await;
    let mut d = env.device().await;
    let proxy = DataProxy::new(d.client.clone(), ProxyConfig::default()).unwrap();

    // Signed out: the key itself is the bearer (role anon), as supabase-js sends it.
    let r = proxy
        .handle(request("GET", "/functions/v1/whoami", FORGED, b""))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["claims"]["role"], "anon");

    d.sign_in("proxy@example.com").await;
    let r = proxy
        .handle(request("POST", "/functions/v1/whoami?x=1", FORGED, b"{}"))
        .await;
    assert_eq!(r.status, 200);
    let claims = &json(&r)["claims"];
    assert_eq!(
        (claims["sub"].as_str(), claims["role"].as_str()),
        (Some(user.as_str()), Some("authenticated"))
    );
    assert_eq!(json(&r)["method"], "POST");

    // An RPC and its answer, passed through as they are.
    let r = proxy
        .handle(request(
            "POST",
            "/rest/v1/rpc/tessera_list_sessions",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer x"),
            ],
            b"{}",
        ))
        .await;
    assert_eq!(r.status, 200);
    let mine = d.client.session().unwrap().session_id;
    assert!(String::from_utf8_lossy(&r.body).contains(&mine));
    // An error of the project's passes through unchanged (PostgREST's 404 shape).
    let r = proxy
        .handle(request("POST", "/rest/v1/rpc/no_such_function", &[], b"{}"))
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.header("x-tessera-proxy").is_none(),
        "the project's own answer"
    );
    assert_eq!(json(&r)["code"], "PGRST202");
}

#[tokio::test]
async fn session_management_and_tricks_never_leave_the_app() {
    let env = Env::start().await;
    env.create_user("refuse@example.com").await;
    let mut d = env.device().await;
    d.sign_in("refuse@example.com").await;
    let proxy = DataProxy::new(d.client.clone(), ProxyConfig::default()).unwrap();
    let before = env.stats().await;
    for path in [
        "/auth/v1/user",
        "/auth/v1/logout?scope=global",
        "/rest/v1/../../auth/v1/user",
        "/rest/v1/%2e%2e/%2e%2e/auth/v1/user",
        "/storage/v1/..%2f..%2fauth/v1/user",
        "/_emulator/issued-tokens",
        "/admin/users",
    ] {
        let r = proxy.handle(request("GET", path, &[], b"")).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(json(&r)["code"], "proxy_forbidden", "{path}");
        assert_eq!(r.header("x-tessera-proxy"), Some(&b"1"[..]));
    }
    let after = env.stats().await;
    assert_eq!(
        before["user_requests"], after["user_requests"],
        "a refused call reached the server"
    );
    assert!(d.client.session().is_some());
}

#[tokio::test]
async fn an_expired_jwt_is_refreshed_once_and_the_call_retried() {
    let env = Env::start().await;
    let user = env.create_user("late@example.com").await;
    let mut d = env.device().await;
    d.sign_in("late@example.com").await;
    let proxy = DataProxy::new(d.client.clone(), ProxyConfig::default()).unwrap();
    let before = env.stats().await["refresh_token_grants"].as_u64().unwrap();
    // The server's clock runs two hours ahead: to it, our unexpired token is expired.
    env.advance_server(7200);
    let r = proxy
        .handle(request("GET", "/functions/v1/whoami", &[], b""))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["claims"]["sub"], user);
    let after = env.stats().await["refresh_token_grants"].as_u64().unwrap();
    assert_eq!(after - before, 1, "exactly one refresh");

    // A 401 that is not about expiry is passed through, with no refresh.
    let r = proxy
        .handle(request("GET", "/storage/v1/object/b/missing", &[], b""))
        .await;
    assert_ne!(r.status, 200);
    assert_eq!(
        env.stats().await["refresh_token_grants"].as_u64().unwrap(),
        after
    );
}

#[tokio::test]
async fn storage_round_trip_with_binary_bodies_and_ranges() {
    let env = Env::start().await;
    env.create_user("files@example.com").await;
    let mut d = env.device().await;
    d.sign_in("files@example.com").await;
    let proxy = DataProxy::new(d.client.clone(), ProxyConfig::default()).unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let r = proxy
        .handle(request(
            "POST",
            "/storage/v1/object/docs/a/all-bytes.bin",
            &[("content-type", "application/octet-stream")],
            &bytes,
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = proxy
        .handle(request(
            "GET",
            "/storage/v1/object/authenticated/docs/a/all-bytes.bin",
            &[],
            b"",
        ))
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, bytes.as_slice()));
    let r = proxy
        .handle(request(
            "GET",
            "/storage/v1/object/docs/a/all-bytes.bin",
            &[("range", "bytes=250-259")],
            b"",
        ))
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[250..260]);
    assert_eq!(r.header("content-range"), Some(&b"bytes 250-259/4096"[..]));
}

#[tokio::test]
async fn bodies_are_bounded_and_a_slow_project_is_a_clear_time_out() {
    let env = Env::start().await;
    env.create_user("limits@example.com").await;
    let mut d = env.device().await;
    d.sign_in("limits@example.com").await;
    let small = ProxyConfig {
        max_body: 1024,
        timeout: Duration::from_secs(1),
    };
    let proxy = DataProxy::new(d.client.clone(), small).unwrap();
    let before = env.stats().await;
    let r = proxy
        .handle(request(
            "POST",
            "/storage/v1/object/b/big",
            &[],
            &[7u8; 2048],
        ))
        .await;
    assert_eq!(
        (r.status, json(&r)["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(
        before["storage_requests"],
        env.stats().await["storage_requests"],
        "sent anyway"
    );

    // An answer over the limit is not read further.
    let roomy = DataProxy::new(d.client.clone(), ProxyConfig::default()).unwrap();
    let r = roomy
        .handle(request(
            "POST",
            "/storage/v1/object/b/big",
            &[],
            &[7u8; 4096],
        ))
        .await;
    assert_eq!(r.status, 200);
    let r = proxy
        .handle(request("GET", "/storage/v1/object/b/big", &[], b""))
        .await;
    assert_eq!(
        (r.status, json(&r)["code"].as_str()),
        (502, Some("response_too_large"))
    );

    // A project that does not answer in time.
    env.fault(serde_json::json!({"path": "/functions/v1/whoami", "delay_ms": 3000, "times": 1}))
        .await;
    let r = proxy
        .handle(request("GET", "/functions/v1/whoami", &[], b""))
        .await;
    assert_eq!(
        (r.status, json(&r)["code"].as_str()),
        (504, Some("proxy_timeout"))
    );
}
