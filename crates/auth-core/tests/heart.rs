//! The engine's heart (issue 25): every failed refresh backs off, no rotated token is
//! dropped, a sign-out the user asked for is never undone, only the server's own codes
//! count as "already revoked", and "try now" tries at once. Against the GoTrue emulator
//! over HTTP, with a store that fails on demand and a manual clock.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use auth_core::{SecretStore, SignOutScope};
use serde_json::json;
use support::failing::*;
use support::*;

/// The background task's wake-ups while `e`'s refresh is overdue (its access token has
/// just expired) and the clock stands still for half a second of real time: a back-off is
/// a sleep of the manual clock, so a task that backs off wakes a handful of times; one
/// that does not goes round at once, by the thousand.
async fn wakeups_while_overdue(e: &Engine) -> u64 {
    let before = e.client.metrics().wakeups.load(Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let woke = e.client.metrics().wakeups.load(Ordering::SeqCst) - before;
    assert!(
        woke >= 1,
        "the background task never woke for the overdue refresh"
    );
    woke
}

const SPIN: u64 = 20;

#[tokio::test]
async fn a_lock_folder_that_cannot_be_used_backs_off_instead_of_spinning() {
    let env = Env::start().await;
    env.create_user("nolock@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let mut cfg = env.config();
    cfg.lock_dir = Some(locks.clone());
    let store = Arc::new(TestStore::default());
    let e = signed_in(cfg, &store, "nolock@example.com").await;

    // The folder becomes a file (on Android, a folder the app may not create): every
    // attempt at the refresh lock fails at once.
    std::fs::remove_dir_all(&locks).unwrap();
    std::fs::write(&locks, b"not a folder").unwrap();
    let woke = wakeups_while_overdue(&e).await;
    assert!(woke < SPIN, "the background task spun: {woke} wake-ups");
    assert!(e.client.session().is_some(), "a lock failure ends nothing");

    // The folder is back; "try now" refreshes at once, back-off or not.
    std::fs::remove_file(&locks).unwrap();
    let before = e.client.metrics().refresh_requests.load(Ordering::SeqCst);
    e.client.nudge();
    wait_until("the nudge refreshed", async || {
        e.client.metrics().refresh_requests.load(Ordering::SeqCst) > before
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_session_from_another_process_backs_off_instead_of_spinning() {
    let env = Env::start().await;
    env.create_user("garbled@example.com").await;
    let store = Arc::new(TestStore::default());
    let cfg = env.config();
    let key = format!("default@{}.session", cfg.issuer());
    let e = signed_in(cfg, &store, "garbled@example.com").await;

    // Another process (another version of the app) stored a session this one cannot turn
    // into a session: well-formed, but with no lifetime.
    let theirs = json!({"v": 1, "data": {
        "access_token": "header.payload.signature",
        "refresh_token": "theirs",
        "expires_in": 0,
        "server_expires_at": null,
        "received_at": 0,
        "user": {},
    }});
    store.mem.save(&key, theirs.to_string().as_bytes()).unwrap();
    let woke = wakeups_while_overdue(&e).await;
    assert!(woke < SPIN, "the background task spun: {woke} wake-ups");
    assert!(e.client.session().is_some());
}

#[tokio::test]
async fn a_partly_readable_refresh_answer_keeps_the_rotated_token_and_backs_off() {
    let env = Env::with(strict()).await;
    env.create_user("partly@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "partly@example.com").await;

    // The server rotates the token, but the answer lacks its access token.
    env.fault(json!({"path": "/token", "strip": ["access_token"], "times": 1000}))
        .await;
    let woke = wakeups_while_overdue(&e).await;
    assert!(woke < SPIN, "the background task spun: {woke} wake-ups");
    env.clear_faults().await;

    // The next refresh, once the back-off has run out, sends the token the server rotated
    // to, never the retired one (which would make GoTrue revoke the whole session).
    e.clock.advance(Duration::from_secs(60));
    e.client.access_token().await.unwrap();
    assert_eq!(reuses(&env).await, 0, "a superseded refresh token was sent");
    assert!(e.client.session().is_some());
}

#[tokio::test]
async fn a_sign_out_with_a_keyring_refusing_writes_and_no_network_survives_a_restart() {
    let env = Env::start().await;
    let user = env.create_user("stuck@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_owned());
    let store = Arc::new(TestStore::default());
    let e = signed_in(cfg.clone(), &store, "stuck@example.com").await;

    store.refuse_writes();
    env.fault(json!({"path": "/logout", "drop": true, "times": 1000}))
        .await;
    let out = e.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(out.local_done && !out.server_confirmed, "{out:?}");
    assert!(e.client.session().is_none());
    assert_eq!(
        e.client.pending_revocations().await.unwrap().len(),
        1,
        "the UI is told the revocation is pending"
    );
    e.client.shutdown();
    drop(e);

    // The app restarts; the keyring still refuses writes, the network is still down.
    let restarted = engine(cfg.clone(), store.clone());
    let restored = restarted.client.start().await;
    assert!(
        matches!(restored, Ok(None) | Err(_)),
        "the signed-out session came back: {restored:?}"
    );
    assert!(restarted.client.session().is_none());
    assert_eq!(
        restarted.client.pending_revocations().await.unwrap().len(),
        1
    );
    restarted.client.shutdown();
    drop(restarted);

    // Later the keyring and the network work again: the revocation reaches the server and
    // the session is gone from the store too.
    store.fail_saves.store(false, Ordering::SeqCst);
    store.fail_deletes.store(false, Ordering::SeqCst);
    env.clear_faults().await;
    let later = engine(cfg, store.clone());
    assert!(later.client.start().await.unwrap().is_none());
    wait_until(
        "the owed revocation was delivered and settled",
        async || {
            env.server_sessions(&user).await.is_empty()
                && later.client.pending_revocations().await.unwrap().is_empty()
        },
    )
    .await;
}

#[tokio::test]
async fn a_proxy_refusal_does_not_drop_an_owed_revocation() {
    let env = Env::start().await;
    let user = env.create_user("proxied@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "proxied@example.com").await;

    // A gateway in front of GoTrue refuses in its own words: not the server's code.
    env.fault(json!({"path": "/logout", "status": 403, "body": {"error": "Forbidden"}}))
        .await;
    e.client.sign_out(SignOutScope::Local).await.unwrap();
    assert_eq!(
        e.client.pending_revocations().await.unwrap().len(),
        1,
        "the revocation is still owed"
    );
    assert_eq!(e.client.flush_outbox().await.unwrap(), 0);
    assert!(env.server_sessions(&user).await.is_empty());
}

#[tokio::test]
async fn a_refresh_asked_for_during_back_off_tries_at_once() {
    let env = Env::start().await;
    env.create_user("again@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "again@example.com").await;

    env.fault(json!({"path": "/token", "status": 503, "times": 1}))
        .await;
    e.clock.advance(Duration::from_secs(3600));
    assert!(e.client.refresh().await.is_err());
    // The network is back; the user presses Refresh (or the app regains focus) before the
    // back-off has run out.
    assert!(e.client.refresh().await.is_ok(), "the Refresh button");
    env.fault(json!({"path": "/token", "status": 503, "times": 1}))
        .await;
    e.clock.advance(Duration::from_secs(3600));
    assert!(e.client.refresh().await.is_err());
    let before = e.client.metrics().refresh_requests.load(Ordering::SeqCst);
    e.client.nudge();
    wait_until("focus refreshed at once", async || {
        e.client.metrics().refresh_requests.load(Ordering::SeqCst) > before
    })
    .await;
    assert!(e.client.access_token().await.is_ok());
}

#[tokio::test]
async fn a_revocation_the_store_would_not_queue_survives_a_crash_and_ends_the_other_process() {
    let env = Env::start().await;
    let user = env.create_user("crash@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_owned());
    let store = Arc::new(TestStore::default());
    let app = signed_in(cfg.clone(), &store, "crash@example.com").await;
    // authctl, on the same device, has the same session.
    let cli = engine(cfg.clone(), store.clone());
    assert!(cli.client.start().await.unwrap().is_some());

    // The keyring takes no new item (the outbox) but would delete; the network is down.
    store.fail_saves.store(true, Ordering::SeqCst);
    env.fault(json!({"path": "/logout", "drop": true, "times": 1000}))
        .await;
    app.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(app.client.session().is_none());
    // The other process follows the sign-out at its next refresh.
    cli.clock.advance(Duration::from_secs(3600));
    assert!(cli.client.refresh().await.is_err());
    assert!(
        cli.client.session().is_none(),
        "the other process kept the session"
    );

    // The app crashes before the network comes back: what it owed in memory is gone.
    drop(app);
    cli.client.shutdown();
    drop(cli);
    store.fail_saves.store(false, Ordering::SeqCst);
    env.clear_faults().await;
    let restarted = engine(cfg, store.clone());
    assert!(restarted.client.start().await.unwrap().is_none());
    wait_until(
        "the revocation was queued from the kept copy and delivered",
        async || {
            env.server_sessions(&user).await.is_empty()
                && restarted
                    .client
                    .pending_revocations()
                    .await
                    .unwrap()
                    .is_empty()
        },
    )
    .await;
}

#[tokio::test]
async fn a_process_that_cannot_save_never_gets_two_generations_ahead_of_the_store() {
    // Found by the model checker (tests/model): the app, unable to save, refreshed twice;
    // authctl then sent the stored token, two generations old, and GoTrue took it for
    // reuse and deleted the session.
    let env = Env::with(strict()).await;
    let user = env.create_user("ahead@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_owned());
    let store = Arc::new(TestStore::default());
    let app = signed_in(cfg.clone(), &store, "ahead@example.com").await;
    let cli = engine(cfg, store.clone());
    assert!(cli.client.start().await.unwrap().is_some());

    store.fail_saves.store(true, Ordering::SeqCst);
    app.clock.advance(Duration::from_secs(3600));
    app.client.refresh().await.unwrap();
    app.clock.advance(Duration::from_secs(3600));
    let _ = app.client.refresh().await;
    // authctl refreshes the token the store holds: the live token's predecessor, which
    // GoTrue forgives (and answers with the live token).
    cli.clock.advance(Duration::from_secs(3600));
    let refreshed = cli.client.refresh().await;
    assert!(refreshed.is_ok(), "{refreshed:?}");
    assert_eq!(
        env.server_sessions(&user).await.len(),
        1,
        "the session was deleted"
    );
}
