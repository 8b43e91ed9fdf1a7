//! How a session ends: revoked elsewhere, signed out in each scope (offline too, queued
//! durably), the time-box, the validation interval, and "Your devices".

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::support::*;
use auth_core::{
    AuthError, AuthEvent, MemoryStore, Password, SignOutReason, SignOutScope, UserUpdate,
};
use serde_json::json;

#[tokio::test]
async fn revoked_elsewhere_ends_here_with_reason_revoked() {
    let env = Env::start().await;
    env.create_user("elsewhere@example.com").await;
    let mut a = env.device().await;
    let mut b = env.device().await;
    a.sign_in("elsewhere@example.com").await;
    b.sign_in("elsewhere@example.com").await;

    // B signs out everywhere; A finds out on validate() (focus).
    b.client.sign_out(SignOutScope::Global).await.unwrap();
    assert_eq!(a.client.validate().await.unwrap(), None);
    let out = a.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(out.reason, Some(SignOutReason::Revoked));
    assert!(
        a.store.dump().iter().all(|(k, _)| !k.ends_with(".session")),
        "removed from the store"
    );

    // A password change elsewhere ends this session at its next refresh.
    a.sign_in("elsewhere@example.com").await;
    b.sign_in("elsewhere@example.com").await;
    b.client
        .update_user(UserUpdate {
            password: Some(Password::new("a-new-password")),
            ..Default::default()
        })
        .await
        .unwrap();
    a.advance(3500);
    let err = a.client.refresh().await.unwrap_err();
    assert_eq!(err.code(), "refresh_token_not_found");
    assert_eq!(
        a.events.expect(AuthEvent::SignedOut).await.reason,
        Some(SignOutReason::Revoked)
    );
    assert!(
        b.client.session().is_some(),
        "the device that changed the password stays signed in"
    );
}

#[tokio::test]
async fn exactly_one_signed_out_per_session_end() {
    let env = Env::start().await;
    env.create_user("once@example.com").await;
    let mut a = env.device().await;
    let mut b = env.device().await;
    a.sign_in("once@example.com").await;
    b.sign_in("once@example.com").await;
    b.client.sign_out(SignOutScope::Global).await.unwrap();
    a.events.drain();
    a.advance(3500);
    let c = a.client.clone();
    let (_, _, _) = tokio::join!(a.client.validate(), c.refresh(), a.client.access_token());
    settle().await;
    let outs: Vec<_> = a
        .events
        .drain()
        .into_iter()
        .filter(|e| e.event == AuthEvent::SignedOut)
        .collect();
    assert_eq!(outs.len(), 1, "{outs:?}");
}

#[tokio::test]
async fn local_sign_out_is_immediate_offline_and_delivered_later_even_after_restart() {
    let env = Env::start().await;
    env.create_user("leave@example.com").await;
    let mut a = env.device().await;
    let view = a.sign_in("leave@example.com").await;
    let user_id = view.user.id.clone();
    env.fault(json!({"path": "/logout", "drop": true, "times": 1000}))
        .await;
    env.fault(json!({"path": "/token", "drop": true, "times": 1000}))
        .await;

    let started = std::time::Instant::now();
    let outcome = a.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(outcome.local_done && outcome.queued && !outcome.server_confirmed);
    assert_eq!(
        a.events.expect(AuthEvent::SignedOut).await.reason,
        Some(SignOutReason::User)
    );
    assert_eq!(a.client.session(), None);
    assert_eq!(
        env.server_sessions(&user_id).await.len(),
        1,
        "the server still has it"
    );
    let pending = a.client.pending_revocations().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].email, "leave@example.com");

    // Back online: the queued revocation reaches the server.
    env.clear_faults().await;
    assert_eq!(a.client.flush_outbox().await.unwrap(), 0);
    assert!(env.server_sessions(&user_id).await.is_empty());
    assert!(a.client.pending_revocations().await.unwrap().is_empty());
}

#[tokio::test]
async fn queued_revocations_survive_a_restart() {
    let env = Env::start().await;
    env.create_user("restart@example.com").await;
    let store = Arc::new(MemoryStore::new());
    let mut a = env.device_with(store.clone(), env.config()).await;
    let view = a.sign_in("restart@example.com").await;
    env.fault(json!({"path": "/logout", "status": 503, "times": 1000}))
        .await;
    let outcome = a.client.sign_out(SignOutScope::Global).await.unwrap();
    assert!(outcome.queued);
    a.client.shutdown();
    drop(a);
    assert_eq!(env.server_sessions(&view.user.id).await.len(), 1);

    env.clear_faults().await;
    let b = env.device_with(store.clone(), env.config()).await;
    // Started: the background task drains the outbox at once.
    for _ in 0..50 {
        if env.server_sessions(&view.user.id).await.is_empty() {
            break;
        }
        settle().await;
    }
    assert!(
        env.server_sessions(&view.user.id).await.is_empty(),
        "delivered after restart"
    );
    assert!(b.client.pending_revocations().await.unwrap().is_empty());
    assert_eq!(b.client.session(), None);
}

#[tokio::test]
async fn revocation_refreshes_first_when_the_access_token_expired() {
    let env = Env::start().await;
    env.create_user("late@example.com").await;
    let mut a = env.device().await;
    let view = a.sign_in("late@example.com").await;
    env.fault(json!({"path": "/logout", "drop": true, "times": 5}))
        .await;
    a.client.sign_out(SignOutScope::Local).await.unwrap();
    env.clear_faults().await;
    // Hours later the queued access token has expired on the server too.
    env.advance_server(7200);
    a.advance(7200);
    assert_eq!(a.client.flush_outbox().await.unwrap(), 0);
    assert!(env.server_sessions(&view.user.id).await.is_empty());
}

#[tokio::test]
async fn others_keeps_this_session_and_needs_the_server() {
    let env = Env::start().await;
    env.create_user("others@example.com").await;
    let mut a = env.device().await;
    let mut b = env.device().await;
    let va = a.sign_in("others@example.com").await;
    b.sign_in("others@example.com").await;

    env.fault(json!({"path": "/logout", "status": 503, "times": 1}))
        .await;
    let err = a.client.sign_out(SignOutScope::Others).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(a.client.session().is_some());
    assert_eq!(
        a.client.pending_revocations().await.unwrap().len(),
        1,
        "queued"
    );
    assert_eq!(a.client.flush_outbox().await.unwrap(), 0);
    let left = env.server_sessions(&va.user.id).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], va.session_id);

    let outcome = a.client.sign_out(SignOutScope::Others).await.unwrap();
    assert!(outcome.server_confirmed && !outcome.local_done);
    assert!(a.client.session().is_some());
    assert!(b.client.validate().await.unwrap().is_none());
}

#[tokio::test]
async fn session_timebox_ends_with_reason_expired() {
    let env = Env::with(gotrue_emulator::Config {
        sessions_timebox: Some(Duration::from_secs(600)),
        ..tessera_test_support::config_with_codes()
    })
    .await;
    env.create_user("box@example.com").await;
    let mut d = env.device().await;
    d.sign_in("box@example.com").await;
    env.advance_server(601);
    d.advance(3500);
    let err = d.client.refresh().await.unwrap_err();
    assert_eq!(err.code(), "session_expired");
    assert_eq!(
        d.events.expect(AuthEvent::SignedOut).await.reason,
        Some(SignOutReason::Expired)
    );
}

#[tokio::test]
async fn the_optional_validation_interval_notices_a_revocation() {
    let env = Env::start().await;
    env.create_user("interval@example.com").await;
    let mut cfg = env.config();
    cfg.validate_interval = Some(Duration::from_secs(60));
    let mut a = env.device_with(Arc::new(MemoryStore::new()), cfg).await;
    let mut b = env.device().await;
    a.sign_in("interval@example.com").await;
    b.sign_in("interval@example.com").await;
    b.client.sign_out(SignOutScope::Global).await.unwrap();
    settle().await;
    assert!(
        a.client.session().is_some(),
        "not known before the next validation"
    );
    a.advance(61);
    let out = a.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(out.reason, Some(SignOutReason::Revoked));
}

#[tokio::test]
async fn your_devices_lists_sessions_and_signs_one_out() {
    let env = Env::start().await;
    env.create_user("devices@example.com").await;
    let device = |name: &str| {
        let mut cfg = env.config();
        cfg.user_agent = format!("{name}/1.0 (test)");
        cfg
    };
    let mut laptop = env
        .device_with(Arc::new(MemoryStore::new()), device("laptop"))
        .await;
    let mut phone = env
        .device_with(Arc::new(MemoryStore::new()), device("phone"))
        .await;
    let mut tablet = env
        .device_with(Arc::new(MemoryStore::new()), device("tablet"))
        .await;
    let here = laptop.sign_in("devices@example.com").await.session_id;
    let phone_id = phone.sign_in("devices@example.com").await.session_id;
    let tablet_id = tablet.sign_in("devices@example.com").await.session_id;

    let list = laptop.client.list_sessions().await.unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let current: Vec<_> = list.iter().filter(|d| d.is_current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, here);
    assert_eq!(current[0].user_agent.as_deref(), Some("laptop/1.0 (test)"));
    assert!(list.iter().all(|d| !d.last_active_at.is_empty()));

    // Sign the phone out from the laptop: the others stay.
    let outcome = laptop.client.revoke_session(&phone_id).await.unwrap();
    assert_eq!(outcome, auth_core::RevokeOutcome::OtherDevice);
    let ids: HashSet<String> = laptop
        .client
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, HashSet::from([here.clone(), tablet_id.clone()]));
    // The phone learns at its next validation: SIGNED_OUT, revoked.
    phone.events.expect(AuthEvent::SignedIn).await;
    assert_eq!(phone.client.validate().await.unwrap(), None);
    let ended = phone.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(ended.reason, Some(SignOutReason::Revoked));
    assert!(tablet.client.validate().await.unwrap().is_some());
    assert!(laptop.client.session().is_some());

    // Revoking it again, or a made-up id, is a clear error; a non-id is refused unsent.
    let again = laptop.client.revoke_session(&phone_id).await.unwrap_err();
    assert_eq!(again.code(), "device_not_found");
    assert!(!again.ends_session(), "not about this device's session");
    assert_eq!(
        laptop
            .client
            .revoke_session("phone")
            .await
            .unwrap_err()
            .code(),
        "invalid_input"
    );

    // This device's own row is a local sign-out.
    let outcome = laptop.client.revoke_session(&here).await.unwrap();
    assert!(matches!(
        outcome,
        auth_core::RevokeOutcome::ThisDevice { ref sign_out } if sign_out.local_done
    ));
    let ended = laptop.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(ended.reason, Some(SignOutReason::User));
    assert!(matches!(
        laptop.client.list_sessions().await,
        Err(AuthError::NotSignedIn)
    ));
    tablet.client.user().await.unwrap();
}
