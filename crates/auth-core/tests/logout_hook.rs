//! The app backend's logout hook (issue 6): every sign-out calls the backend's
//! `POST /api/auth/logout` with the access token before the auth server's revocation, with
//! the outbox's guarantees. Against the example backend in `tests/logout-backend`, which
//! checks tokens with the emulator.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use auth_core::{AuthEvent, MemoryStore, SignOutScope};
use example_logout_backend::{Config, Handle};
use serde_json::{Value, json};
use support::*;

async fn backend(env: &Env, port: u16) -> Handle {
    example_logout_backend::start(
        Config {
            auth_url: env.emu.url().to_owned(),
            anon_key: env.emu.anon_key().to_owned(),
        },
        ([127, 0, 0, 1], port).into(),
    )
    .await
    .unwrap()
}

async fn device_with_hook(env: &Env, hook: &str) -> Device {
    let mut cfg = env.config();
    cfg.logout_hook_url = Some(hook.to_owned());
    env.device_with(Arc::new(MemoryStore::new()), cfg).await
}

async fn register(env: &Env, b: &Handle, d: &Device) {
    let token = d.client.access_token().await.unwrap();
    let r = env
        .http
        .post(format!("{}/api/devices", b.url()))
        .bearer_auth(token.expose_secret())
        .json(&json!({"push_token": "push-1"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn get(env: &Env, url: String) -> Value {
    env.http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn fail_next(env: &Env, b: &Handle, code: &str) {
    env.http
        .post(format!("{}/_test/fail-next", b.url()))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_sign_out_tells_the_backend_first() {
    let env = Env::start().await;
    env.create_user("hook@example.com").await;
    let b = backend(&env, 0).await;
    for scope in [SignOutScope::Local, SignOutScope::Global] {
        let mut d = device_with_hook(&env, &b.logout_url()).await;
        let session = d.sign_in("hook@example.com").await.session_id;
        register(&env, &b, &d).await;
        assert_eq!(
            get(&env, format!("{}/api/devices", b.url())).await,
            json!([session])
        );
        let outcome = d.client.sign_out(scope).await.unwrap();
        // The backend verified the token with the auth server, so it ran before the
        // revocation; and it dropped the session's state.
        assert!(
            outcome.server_confirmed && outcome.hook_error.is_none(),
            "{outcome:?}"
        );
        assert_eq!(
            get(&env, format!("{}/api/devices", b.url())).await,
            json!([])
        );
        let calls = get(&env, format!("{}/_test/calls", b.url())).await;
        assert_eq!(calls.as_array().unwrap().last().unwrap()["outcome"], "ok");
        assert_eq!(
            calls.as_array().unwrap().last().unwrap()["session_id"],
            session
        );
        assert!(d.client.pending_revocations().await.unwrap().is_empty());
        d.events.expect(AuthEvent::SignedOut).await;
    }
    // `others` keeps this session: no call.
    let mut d = device_with_hook(&env, &b.logout_url()).await;
    d.sign_in("hook@example.com").await;
    let before = get(&env, format!("{}/_test/calls", b.url())).await;
    d.client.sign_out(SignOutScope::Others).await.unwrap();
    assert_eq!(get(&env, format!("{}/_test/calls", b.url())).await, before);
}

#[tokio::test]
async fn backend_errors_surface_typed_and_are_retried_before_the_revocation() {
    let env = Env::start().await;
    env.create_user("hook-errors@example.com").await;
    let b = backend(&env, 0).await;
    for (code, expected) in [
        ("LOGOUT_ERROR", "logout_hook_logout_error"),
        ("SUPABASE_ERROR", "logout_hook_supabase_error"),
    ] {
        let mut d = device_with_hook(&env, &b.logout_url()).await;
        let view = d.sign_in("hook-errors@example.com").await;
        fail_next(&env, &b, code).await;
        let outcome = d.client.sign_out(SignOutScope::Local).await.unwrap();
        assert!(outcome.local_done && d.client.session().is_none());
        assert!(outcome.queued && !outcome.server_confirmed);
        assert_eq!(outcome.hook_error.as_ref().unwrap().code, expected);
        // Hook first: the auth server's session is still alive.
        let alive = env
            .server_sessions(&view.user.id)
            .await
            .iter()
            .any(|s| s["id"] == view.session_id.as_str());
        assert!(alive, "{code}: not revoked before the backend confirmed");
        let pending = d.client.pending_revocations().await.unwrap();
        assert_eq!(pending[0].last_error.as_deref(), Some(expected));
        // The backend recovers: one flush delivers both, in order.
        assert_eq!(d.client.flush_outbox().await.unwrap(), 0);
        let alive = env
            .server_sessions(&view.user.id)
            .await
            .iter()
            .any(|s| s["id"] == view.session_id.as_str());
        assert!(!alive, "{code}: revoked after the backend confirmed");
        let calls = get(&env, format!("{}/_test/calls", b.url())).await;
        let outcomes: Vec<&str> = calls
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(&outcomes[outcomes.len() - 2..], [code, "ok"]);
    }
}

#[tokio::test]
async fn an_unauthorized_answer_ends_the_retries() {
    let env = Env::start().await;
    env.create_user("hook-401@example.com").await;
    let b = backend(&env, 0).await;
    let mut here = device_with_hook(&env, &b.logout_url()).await;
    let mut elsewhere = env.device().await;
    here.sign_in("hook-401@example.com").await;
    elsewhere.sign_in("hook-401@example.com").await;
    // Signed out everywhere from another device: this token is no longer valid.
    elsewhere
        .client
        .sign_out(SignOutScope::Global)
        .await
        .unwrap();
    let outcome = here.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(
        outcome.local_done && outcome.server_confirmed,
        "{outcome:?}"
    );
    assert!(outcome.hook_error.is_none());
    assert!(here.client.pending_revocations().await.unwrap().is_empty());
    let calls = get(&env, format!("{}/_test/calls", b.url())).await;
    assert_eq!(
        calls.as_array().unwrap().len(),
        1,
        "asked once, not retried"
    );
}

#[tokio::test]
async fn offline_backend_then_recovered() {
    let env = Env::start().await;
    env.create_user("hook-offline@example.com").await;
    // A port nothing listens on yet; the backend comes up there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/api/auth/logout");
    let mut d = device_with_hook(&env, &url).await;
    let view = d.sign_in("hook-offline@example.com").await;
    let outcome = d.client.sign_out(SignOutScope::Global).await.unwrap();
    assert!(outcome.local_done && outcome.queued);
    assert_eq!(outcome.hook_error.unwrap().code, "logout_hook_unreachable");
    d.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(
        env.server_sessions(&view.user.id).await.len(),
        1,
        "not yet revoked"
    );
    // A restart keeps the debt.
    let restarted = env
        .device_with(d.store.clone(), {
            let mut cfg = env.config();
            cfg.logout_hook_url = Some(url.clone());
            cfg
        })
        .await;
    assert_eq!(
        restarted.client.pending_revocations().await.unwrap().len(),
        1
    );
    assert_eq!(
        restarted.client.flush_outbox().await.unwrap(),
        1,
        "still down"
    );
    let b = backend(&env, port).await;
    assert_eq!(restarted.client.flush_outbox().await.unwrap(), 0);
    assert!(env.server_sessions(&view.user.id).await.is_empty());
    let calls = get(&env, format!("{}/_test/calls", b.url())).await;
    assert_eq!(calls[0]["outcome"], "ok");
}
