//! The embedded mode (`Config::embedded`): the user's own server inside an app, closed to
//! everyone but the app. Each test is one attack of SECURITY.md's "embedded server" part
//! (docs/security-embedded.md), tried over real HTTP against an in-process server.
#![allow(clippy::unwrap_used)]

mod support;

use gotrue_emulator::{Config, new_jwt_secret};
use reqwest::Method;
use serde_json::json;
use support::*;

/// A raw request: `headers` only (no API key unless given), `body` as given.
async fn raw(env: &Env, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = env.http.request(method, env.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.body(body.to_owned());
    }
    Reply::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn no_test_route_exists() {
    let (env, _dir) = embedded_server().await;
    for (method, path) in [
        (Method::GET, "/_emulator/mail"),
        (Method::DELETE, "/_emulator/mail"),
        (Method::GET, "/_emulator/issued-tokens"),
        (Method::GET, "/_emulator/sessions"),
        (Method::GET, "/_emulator/stats"),
        (Method::POST, "/_emulator/faults"),
        (Method::POST, "/_emulator/time"),
        (Method::GET, "/_emulator/oauth/github/authorize"),
        (Method::GET, "/auth/v1/_emulator/issued-tokens"),
        // The Edge Function and Storage stand-ins.
        (Method::GET, "/functions/v1/whoami"),
        (Method::POST, "/functions/v1/whoami"),
        (Method::POST, "/storage/v1/object/files/a.txt"),
        (Method::PUT, "/storage/v1/object/files/a.txt"),
        (Method::GET, "/storage/v1/object/files/a.txt"),
        (Method::GET, "/storage/v1/object/authenticated/files/a.txt"),
        (Method::DELETE, "/storage/v1/object/files"),
    ] {
        let reply = env
            .send(method.clone(), path, None, Some(json!({})), &[])
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
    }
}

#[tokio::test]
async fn the_public_demo_keys_are_refused() {
    let (env, _dir) = embedded_server().await;
    confirmed_user(&env, "demo@example.com").await;
    let sign_in = json!({"email": "demo@example.com", "password": PASSWORD}).to_string();
    let json_type = ("content-type", "application/json");
    // The API gateway's rule: no key, or a key not signed with this install's secret, 401.
    for key in [
        None,
        Some(DEMO_ANON_KEY),
        Some(DEMO_SERVICE_ROLE_KEY),
        Some(gotrue_emulator::DEMO_PUBLISHABLE_KEY),
        Some(gotrue_emulator::DEMO_SECRET_KEY),
    ] {
        let mut headers = vec![json_type];
        if let Some(key) = key {
            headers.push(("apikey", key));
        }
        let reply = raw(
            &env,
            Method::POST,
            "/token?grant_type=password",
            &headers,
            &sign_in,
        )
        .await;
        assert_eq!(reply.status, 401, "{key:?}: {}", reply.text);
        assert!(reply.json["message"].is_string(), "{}", reply.text);
    }
    // With the app's key, a demo service_role bearer is a bad JWT (GoTrue's 403).
    let bearer = format!("Bearer {DEMO_SERVICE_ROLE_KEY}");
    let reply = raw(
        &env,
        Method::GET,
        "/user",
        &[("apikey", env.emu.anon_key()), ("authorization", &bearer)],
        "",
    )
    .await;
    reply.assert_error(403, "bad_jwt");
    // The app's own key works.
    env.sign_in("demo@example.com").await;
}

#[tokio::test]
async fn the_install_publishable_key_opens_the_gateway_as_anon() {
    let dir = tempfile::tempdir().unwrap();
    let secret = new_jwt_secret();
    let config = Config {
        bcrypt_cost: 4,
        ..Config::embedded(secret.clone(), dir.path().join("emulator.sqlite"), 0)
    };
    let env = Env::with(config).await;
    // Derived from the install's secret: the app keeps nothing more.
    let key = env.emu.publishable_key().unwrap().to_owned();
    assert!(key.starts_with("sb_publishable_"), "{key}");
    assert_eq!(key, gotrue_emulator::publishable_key_for(&secret));
    assert_ne!(key, gotrue_emulator::publishable_key_for(&new_jwt_secret()));
    assert!(!key.contains(&secret));
    assert_eq!(env.emu.secret_key(), None);

    confirmed_user(&env, "pk@example.com").await;
    let json_type = ("content-type", "application/json");
    let anon_bearer = format!("Bearer {key}");
    let anonymous = [
        json_type,
        ("apikey", key.as_str()),
        ("authorization", anon_bearer.as_str()),
    ];
    let sign_in = json!({"email": "pk@example.com", "password": PASSWORD}).to_string();
    let session = raw(
        &env,
        Method::POST,
        "/token?grant_type=password",
        &anonymous,
        &sign_in,
    )
    .await;
    let session = session.assert_ok().clone();
    let refresh = json!({"refresh_token": refresh_token(&session)}).to_string();
    raw(
        &env,
        Method::POST,
        "/token?grant_type=refresh_token",
        &anonymous,
        &refresh,
    )
    .await
    .assert_ok();
    let user_bearer = format!("Bearer {}", access(&session));
    let me = raw(
        &env,
        Method::GET,
        "/user",
        &[
            ("apikey", key.as_str()),
            ("authorization", user_bearer.as_str()),
        ],
        "",
    )
    .await;
    assert_eq!(me.assert_ok()["email"], "pk@example.com");
    // As a bearer it is the anonymous caller, not a user.
    raw(&env, Method::GET, "/user", &anonymous, "")
        .await
        .assert_error(403, "bad_jwt");
}

#[tokio::test]
async fn the_admin_api_is_not_served_even_to_a_service_role_of_this_install() {
    let (env, _dir) = embedded_server().await;
    for (method, path) in [
        (Method::GET, "/admin/users"),
        (Method::POST, "/admin/users"),
        (Method::POST, "/admin/generate_link"),
        (Method::GET, "/auth/v1/admin/users"),
    ] {
        let reply = env
            .admin(
                method.clone(),
                path,
                Some(json!({"email": "x@example.com"})),
            )
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_foreign_host_is_misdirected() {
    let (env, _dir) = embedded_server().await;
    let port = env.emu.addr().port();
    let other = format!("127.0.0.1:{}", port.wrapping_add(1));
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        other,
        "localhost".to_owned(),
    ] {
        let reply = raw(
            &env,
            Method::GET,
            "/health",
            &[("host", &host), ("apikey", env.emu.anon_key())],
            "",
        )
        .await;
        reply.assert_error(421, "request_not_allowed");
    }
    for host in [format!("127.0.0.1:{port}"), format!("LocalHost:{port}")] {
        let reply = raw(
            &env,
            Method::GET,
            "/health",
            &[("host", &host), ("apikey", env.emu.anon_key())],
            "",
        )
        .await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text);
    }
}

#[tokio::test]
async fn json_routes_refuse_bodies_that_are_not_json() {
    let (env, _dir) = embedded_server().await;
    confirmed_user(&env, "typed@example.com").await;
    let body = json!({"email": "typed@example.com", "password": PASSWORD}).to_string();
    let key = ("apikey", env.emu.anon_key());
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        let mut headers = vec![key];
        if let Some(t) = content_type {
            headers.push(("content-type", t));
        }
        let reply = raw(
            &env,
            Method::POST,
            "/token?grant_type=password",
            &headers,
            &body,
        )
        .await;
        reply.assert_error(415, "bad_json");
        let reply = raw(&env, Method::POST, "/signup", &headers, &body).await;
        reply.assert_error(415, "bad_json");
    }
    let reply = raw(
        &env,
        Method::POST,
        "/token?grant_type=password",
        &[key, ("content-type", "application/json; charset=utf-8")],
        &body,
    )
    .await;
    reply.assert_ok();
}

#[tokio::test]
async fn cors_stays_closed() {
    let (env, _dir) = embedded_server().await;
    let origin = ("origin", "https://evil.example");
    let preflight = raw(
        &env,
        Method::OPTIONS,
        "/token?grant_type=password",
        &[
            origin,
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "apikey, content-type"),
        ],
        "",
    )
    .await;
    assert!(!preflight.status.is_success(), "{}", preflight.status);
    let get = raw(
        &env,
        Method::GET,
        "/settings",
        &[origin, ("apikey", env.emu.anon_key())],
        "",
    )
    .await;
    assert_eq!(get.status, 200);
    for reply in [&preflight, &get] {
        let cors: Vec<_> = reply
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "CORS headers: {cors:?}");
    }
}

#[tokio::test]
async fn no_oauth_provider_is_offered() {
    let (env, _dir) = embedded_server().await;
    let settings = env.get("/settings", None).await;
    assert_eq!(settings.assert_ok()["external"]["github"], false);
    let reply = env.get("/authorize?provider=github", None).await;
    reply.assert_error(400, "provider_disabled");
}

/// Sends raw bytes (what a client library would refuse to send) and returns the status.
async fn raw_status(env: &Env, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(env.emu.addr())
        .await
        .unwrap();
    conn.write_all(request).await.unwrap();
    let mut head = vec![0u8; 12];
    conn.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test]
async fn every_name_a_request_gives_must_be_ours() {
    let (env, _dir) = embedded_server().await;
    let port = env.emu.addr().port();
    let key = env.emu.anon_key();
    // An absolute-form target naming another host, with our Host header.
    let absolute = format!(
        "GET http://evil.example/health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\napikey: {key}\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(&env, absolute.as_bytes()).await, 421);
    // A Host header that is not text is refused, not skipped.
    let mut binary = format!("GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}").into_bytes();
    binary.extend_from_slice(b"\xff\r\napikey: ");
    binary.extend_from_slice(key.as_bytes());
    binary.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    assert_eq!(raw_status(&env, &binary).await, 421);
    // The app's own request passes.
    let ours = format!(
        "GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\napikey: {key}\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(&env, ours.as_bytes()).await, 200);
}
