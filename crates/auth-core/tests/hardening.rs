//! Security issue 12, sections 3, 5 and 6 (engine part): a rotated refresh token is never
//! thrown away, only the server ends a session (and only definitively), and every
//! non-loopback URL must be `https`. Against the GoTrue emulator over HTTP, with injected
//! stores (failing, stalling, locked) and a manual clock.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use auth_core::{
    AuthClient, AuthConfig, AuthEvent, BackendKind, Clock, MemoryStore, Password, SecretStore,
    SignOutReason, SignOutScope,
};
use serde_json::{Value, json};
use support::failing::*;
use support::*;

// ------------------------------------------------------------------ section 3

#[tokio::test]
async fn a_refresh_whose_commit_lock_is_busy_keeps_the_rotated_token() {
    let env = Env::with(strict()).await;
    env.create_user("busy@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_owned());
    cfg.store_timeout = Duration::from_millis(300);
    let store = Arc::new(TestStore::default());
    let e = signed_in(cfg.clone(), &store, "busy@example.com").await;

    // Another process (or this one's own stalled write) holds the commit lock while the
    // server rotates the token.
    let held = std::fs::File::create(dir.path().join("default.commit.lock")).unwrap();
    held.lock().unwrap();
    e.clock.advance(Duration::from_secs(3500));
    let refreshed = e.client.refresh().await;
    assert!(
        refreshed.is_ok(),
        "the rotated session is kept: {refreshed:?}"
    );
    held.unlock().unwrap();
    // The next refresh sends the new token, never the one the server already rotated.
    e.clock.advance(Duration::from_secs(3500));
    e.client.refresh().await.unwrap();
    assert_eq!(reuses(&env).await, 0, "a superseded refresh token was sent");
    assert!(e.client.session().is_some());
}

#[tokio::test]
async fn a_refresh_that_cannot_be_saved_is_kept_and_the_old_token_is_never_sent_again() {
    let env = Env::with(strict()).await;
    env.create_user("unsaved@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "unsaved@example.com").await;

    store.fail_saves.store(true, Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(3500));
    let refreshed = e.client.refresh().await;
    assert!(
        refreshed.is_ok(),
        "the new session is kept (unsaved): {refreshed:?}"
    );
    // The next refresh, still unable to save, is not sent: it would put this process two
    // generations ahead of the stored token another process may send (see heart.rs).
    let requests = e.client.metrics().refresh_requests.load(Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(3500));
    assert!(e.client.refresh().await.is_err());
    assert_eq!(
        e.client.metrics().refresh_requests.load(Ordering::SeqCst),
        requests
    );
    assert_eq!(reuses(&env).await, 0, "a superseded refresh token was sent");
    assert!(e.client.session().is_some());

    // The save is retried on its own once the store works again.
    let saves = store.mem.saves();
    store.fail_saves.store(false, Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(10));
    wait_until("the unsaved session is saved", async || {
        store.mem.saves() > saves
    })
    .await;
    // What is stored is the live session: a restart refreshes it without a reuse.
    e.client.shutdown();
    let restarted = engine(env.config(), store.clone());
    restarted.client.start().await.unwrap();
    restarted.client.refresh().await.unwrap();
    assert_eq!(
        reuses(&env).await,
        0,
        "the stored token was a superseded one"
    );
    drop(e.events);
}

#[tokio::test]
async fn a_timed_out_save_never_lands_over_a_later_sign_out() {
    let env = Env::start().await;
    env.create_user("stall@example.com").await;
    let store = Arc::new(TestStore::default());
    let mut cfg = env.config();
    cfg.store_timeout = Duration::from_millis(300);
    let e = signed_in(cfg.clone(), &store, "stall@example.com").await;

    // The refresh's save stalls past the time-out (the keyring asks the user), then the
    // user signs out; the stalled write must not bring the session back.
    store
        .stall_next_session_save_ms
        .store(1200, Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(3500));
    let _ = e.client.refresh().await;
    e.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(e.client.session().is_none());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store
            .mem
            .load(&format!("default@{}.session", env.config().issuer()))
            .unwrap(),
        None,
        "the timed-out write landed after the sign-out"
    );
    let restarted = engine(cfg, store.clone());
    assert!(restarted.client.start().await.unwrap().is_none());
}

#[tokio::test]
async fn a_locked_keyring_at_start_is_retried_and_the_session_announced() {
    let env = Env::start().await;
    env.create_user("locked@example.com").await;
    let store = Arc::new(TestStore::default());
    let first = engine(env.config(), store.clone());
    first.client.start().await.unwrap();
    let view = first
        .client
        .sign_in_with_password("locked@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
    first.client.shutdown();

    // On focus (nudge).
    store.locked.store(true, Ordering::SeqCst);
    let mut e = engine(env.config(), store.clone());
    let started = e.client.start().await;
    assert_eq!(started.unwrap_err().code(), "keyring_locked");
    assert!(
        e.events
            .expect(AuthEvent::InitialSession)
            .await
            .session
            .is_none()
    );
    e.client.nudge();
    settle().await;
    assert!(e.client.session().is_none(), "still locked");
    store.locked.store(false, Ordering::SeqCst);
    e.client.nudge();
    let restored = e.events.expect(AuthEvent::SignedIn).await;
    assert_eq!(restored.session.unwrap().session_id, view.session_id);
    e.client.shutdown();

    // On the backing-off timer, without any nudge.
    store.locked.store(true, Ordering::SeqCst);
    let mut e = engine(env.config(), store.clone());
    assert!(e.client.start().await.is_err());
    store.locked.store(false, Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(10));
    let restored = e.events.expect(AuthEvent::SignedIn).await;
    assert_eq!(restored.session.unwrap().session_id, view.session_id);
}

#[tokio::test]
async fn a_corrupt_outbox_keeps_the_entries_it_can_read() {
    let env = Env::start().await;
    let user = env.create_user("outbox@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "outbox@example.com").await;
    env.fault(json!({"path": "/logout", "drop": true, "times": 5}))
        .await;
    e.client.sign_out(SignOutScope::Local).await.unwrap();
    e.client.shutdown();
    env.clear_faults().await;

    // One entry becomes unreadable (another version wrote it, a bit flipped).
    let key = format!("default@{}.outbox", env.config().issuer());
    let raw = store.mem.load(&key).unwrap().unwrap();
    let mut blob: Value = serde_json::from_slice(&raw).unwrap();
    blob["data"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": 7, "scope": "nonsense"}));
    store
        .mem
        .save(&key, &serde_json::to_vec(&blob).unwrap())
        .unwrap();

    let mut cfg = env.config();
    cfg.background = false;
    let restarted = engine(cfg, store.clone());
    restarted.client.start().await.unwrap();
    assert_eq!(
        restarted.client.pending_revocations().await.unwrap().len(),
        1
    );
    assert_eq!(restarted.client.flush_outbox().await.unwrap(), 0);
    assert!(env.server_sessions(&user).await.is_empty(), "revoked");
}

// ------------------------------------------------------------------ section 5

#[tokio::test]
async fn validate_refreshes_once_on_bad_jwt_before_deciding() {
    let env = Env::start().await;
    env.create_user("badjwt@example.com").await;
    let mut d = env.device().await;
    d.sign_in("badjwt@example.com").await;
    // The project's JWT secret was rotated: the old access token is refused.
    env.fault(json!({"path": "/user", "status": 403, "error_code": "bad_jwt", "times": 1}))
        .await;
    assert!(
        d.client.validate().await.unwrap().is_some(),
        "the session is alive"
    );
    assert!(d.client.session().is_some());
    assert_eq!(
        d.client.metrics().refresh_requests.load(Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn the_outbox_refreshes_and_revokes_on_bad_jwt() {
    let env = Env::start().await;
    let user = env.create_user("badjwt-out@example.com").await;
    let mut d = env.device().await;
    d.sign_in("badjwt-out@example.com").await;
    env.fault(json!({"path": "/logout", "status": 403, "error_code": "bad_jwt", "times": 1}))
        .await;
    d.client.sign_out(SignOutScope::Local).await.unwrap();
    d.client.flush_outbox().await.unwrap();
    assert!(
        env.server_sessions(&user).await.is_empty(),
        "bad_jwt is not 'already revoked'"
    );
}

#[tokio::test]
async fn legacy_invalid_grant_answers_end_the_session() {
    let env = Env::start().await;
    env.create_user("legacy@example.com").await;
    for (description, reason) in [
        (
            "Invalid Refresh Token: Refresh Token Not Found",
            SignOutReason::Revoked,
        ),
        (
            "Invalid Refresh Token: Already Used",
            SignOutReason::RefreshFailed,
        ),
    ] {
        let mut d = env.device().await;
        d.sign_in("legacy@example.com").await;
        // GoTrue before v2.164 answered refresh errors in the OAuth shape.
        env.fault(json!({"path": "/token", "status": 400, "times": 1,
            "body": {"error": "invalid_grant", "error_description": description}}))
            .await;
        let err = d.client.refresh().await.unwrap_err();
        assert!(err.ends_session(), "{description}: {err:?}");
        let out = d.events.expect(AuthEvent::SignedOut).await;
        assert_eq!(out.reason, Some(reason));
        assert!(d.client.session().is_none());
    }
    // Other invalid_grant answers (a wrong password) end nothing.
    let mut d = env.device().await;
    d.sign_in("legacy@example.com").await;
    env.fault(json!({"path": "/token", "status": 400, "times": 1,
        "body": {"error": "invalid_grant", "error_description": "Invalid login credentials"}}))
        .await;
    assert!(!d.client.refresh().await.unwrap_err().ends_session());
    assert!(d.client.session().is_some());
}

#[tokio::test]
async fn out_of_range_expiry_from_the_server_is_clamped_and_never_panics() {
    let env = Env::start().await;
    env.create_user("expiry@example.com").await;
    let real: Value = env
        .http
        .post(env.url("/token?grant_type=password"))
        .header("apikey", env.emu.anon_key())
        .json(&json!({"email": "expiry@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let week = 7 * 24 * 3600;
    for (expires_in, expires_at) in [
        (json!(i64::MAX), json!(i64::MAX)),
        (json!(i64::MAX), json!(i64::MIN)),
        (json!(u64::MAX / 2), Value::Null),
        (json!(3600), json!(i64::MIN)),
    ] {
        let mut body = real.clone();
        body["expires_in"] = expires_in.clone();
        body["expires_at"] = expires_at.clone();
        env.fault(json!({"path": "/token", "times": 1, "body": body}))
            .await;
        let d = env.device().await;
        let view = d
            .client
            .sign_in_with_password("expiry@example.com", &Password::new(PASSWORD))
            .await
            .unwrap();
        let now = d
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            view.expires_at <= now + week,
            "{expires_in} / {expires_at}: expires at {}",
            view.expires_at
        );
        let _ = d.client.access_token().await.unwrap();
    }
}

async fn closed_port_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/api/auth/logout")
}

#[tokio::test]
async fn a_failing_logout_hook_does_not_keep_a_session_alive() {
    let env = Env::start().await;
    let user = env.create_user("hookfail@example.com").await;

    // 404: the endpoint does not exist; revoke at once.
    let mut cfg = env.config();
    cfg.logout_hook_url = Some(env.url("/no-such-logout-hook"));
    let mut d = env.device_with(Arc::new(MemoryStore::new()), cfg).await;
    d.sign_in("hookfail@example.com").await;
    let outcome = d.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(outcome.server_confirmed, "{outcome:?}");
    assert!(env.server_sessions(&user).await.is_empty());
    assert_eq!(
        d.client
            .metrics()
            .logout_hooks_skipped
            .load(Ordering::SeqCst),
        1
    );

    // Unreachable: a bounded number of attempts, then revoke anyway.
    let mut cfg = env.config();
    cfg.logout_hook_url = Some(closed_port_url().await);
    cfg.background = false;
    let mut d = env.device_with(Arc::new(MemoryStore::new()), cfg).await;
    d.sign_in("hookfail@example.com").await;
    let outcome = d.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(outcome.queued);
    // A short outage: many attempts, but the hook is not given up on yet.
    for _ in 0..8 {
        d.client.flush_outbox().await.unwrap();
    }
    assert_eq!(d.client.pending_revocations().await.unwrap().len(), 1);
    assert_eq!(
        d.client
            .metrics()
            .logout_hooks_skipped
            .load(Ordering::SeqCst),
        0,
        "a few seconds without an answer must not skip the hook"
    );
    // Still unreachable an hour later: revoke anyway.
    d.advance(3600);
    let mut flushes = 0;
    while !d.client.pending_revocations().await.unwrap().is_empty() {
        flushes += 1;
        assert!(flushes <= 10, "the hook keeps the revocation pending");
        d.client.flush_outbox().await.unwrap();
    }
    assert!(env.server_sessions(&user).await.is_empty());
    assert_eq!(
        d.client
            .metrics()
            .logout_hooks_skipped
            .load(Ordering::SeqCst),
        1
    );
}

// ------------------------------------------------------------------ section 6

#[tokio::test]
async fn every_non_loopback_url_must_be_https() {
    let build = |cfg: AuthConfig| AuthClient::new(cfg, Arc::new(MemoryStore::new()));
    for url in [
        "http://127.0.0.1:9999",
        "http://[::1]:9999",
        "http://localhost:9999",
        "https://project.supabase.co/auth/v1",
    ] {
        assert!(build(AuthConfig::new(url, "k")).is_ok(), "{url}");
    }
    for url in [
        "http://project.supabase.co/auth/v1",
        "http://localhost.attacker.example:9999",
        "http://10.0.0.2:9999",
    ] {
        let err = build(AuthConfig::new(url, "k")).unwrap_err();
        assert_eq!(err.code(), "config_error", "{url}");
        assert!(err.to_string().contains("https"), "{err}");
    }
    let base = || AuthConfig::new("https://project.supabase.co/auth/v1", "k");
    let mut cfg = base();
    cfg.logout_hook_url = Some("http://api.example.com/api/auth/logout".into());
    assert_eq!(build(cfg).unwrap_err().code(), "config_error");
    let mut cfg = base();
    cfg.rest_url = Some("http://project.supabase.co/rest/v1".into());
    assert_eq!(build(cfg).unwrap_err().code(), "config_error");
    let mut cfg = AuthConfig::new("http://api.example.com", "k");
    cfg.backend = BackendKind::SuperTokens;
    assert_eq!(build(cfg).unwrap_err().code(), "config_error");
    let mut cfg = base();
    cfg.logout_hook_url = Some("http://127.0.0.1:8080/api/auth/logout".into());
    assert!(build(cfg).is_ok());
}

#[tokio::test]
async fn a_gateway_refusal_is_not_taken_for_a_revoked_session() {
    let env = Env::start().await;
    let user = env.create_user("gateway@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "gateway@example.com").await;
    // Supabase's gateway, not GoTrue, answers: the session is alive at the server.
    env.fault(json!({"path": "/logout", "status": 401, "body": {"message": "Invalid API key"}}))
        .await;
    let out = e.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(out.local_done && !out.server_confirmed, "{out:?}");
    assert_eq!(
        e.client.pending_revocations().await.unwrap().len(),
        1,
        "still owed"
    );
    assert_eq!(env.server_sessions(&user).await.len(), 1);
    assert_eq!(e.client.flush_outbox().await.unwrap(), 0);
    assert!(env.server_sessions(&user).await.is_empty());
}
