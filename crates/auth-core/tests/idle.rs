//! Idle sign-out: one timer in the engine, fed by activity from anywhere in the app.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use auth_core::{AuthEvent, SignOutReason};
use support::*;

#[tokio::test]
async fn activity_from_any_window_keeps_the_session_and_silence_signs_out() {
    let env = Env::start().await;
    let user = env.create_user("idle@example.com").await;
    let mut d = env.device().await;
    d.sign_in("idle@example.com").await;
    d.client.set_idle_timeout(Some(Duration::from_secs(300)));
    assert_eq!(d.client.idle_timeout(), Some(Duration::from_secs(300)));

    // Windows report activity now and then: the session stays.
    for _ in 0..3 {
        d.advance(240);
        settle().await;
        d.client.activity();
    }
    d.advance(240);
    settle().await;
    assert!(d.client.session().is_some(), "signed out despite activity");

    // Then nothing for the whole time-out: a local sign-out, reason `idle`.
    d.advance(61);
    let out = d.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(out.reason, Some(SignOutReason::Idle));
    assert!(d.client.session().is_none());
    // The server was told, like any local sign-out.
    wait_server_sessions(&env, &user, 0, "the session lives on at the server").await;
}

#[tokio::test]
async fn no_time_out_never_signs_out_and_a_new_sign_in_counts_as_activity() {
    let env = Env::start().await;
    env.create_user("awake@example.com").await;
    let mut d = env.device().await;
    d.client.set_idle_timeout(Some(Duration::from_secs(60)));
    // Long before any sign-in: the time-out counts from the sign-in, not from this.
    d.advance(3000);
    settle().await;
    d.sign_in("awake@example.com").await;
    d.advance(30);
    settle().await;
    assert!(
        d.client.session().is_some(),
        "a fresh sign-in was taken for idle"
    );
    // Off: hours of silence change nothing (the token is refreshed meanwhile).
    d.client.set_idle_timeout(None);
    d.client.set_idle_timeout(Some(Duration::ZERO));
    assert_eq!(d.client.idle_timeout(), None);
    for _ in 0..4 {
        d.advance(1800);
        settle().await;
    }
    assert!(d.client.session().is_some());
    assert!(
        !d.events.drained_any(AuthEvent::SignedOut),
        "signed out with no time-out"
    );
}
