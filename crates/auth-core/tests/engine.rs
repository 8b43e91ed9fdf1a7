//! The session engine against the GoTrue emulator over HTTP. Each test pins down one
//! invariant of DESIGN.md or one bug users hit in other clients.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthClient, AuthError, AuthEvent, Connectivity, MemoryStore, OneTimeCode, Password,
    SignOutReason, SignOutScope, UserUpdate,
};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn sign_in_persists_then_announces_and_restores_at_start() {
    let env = Env::start().await;
    env.create_user("ada@example.com").await;
    let mut a = env.device().await;
    assert_eq!(
        a.events.expect(AuthEvent::InitialSession).await.session,
        None
    );
    let view = a.sign_in("ada@example.com").await;
    let signed_in = a.events.expect(AuthEvent::SignedIn).await;
    assert_eq!(
        signed_in.session.as_ref().unwrap().session_id,
        view.session_id
    );
    assert_eq!(view.user.email, "ada@example.com");
    assert_eq!(view.aal, "aal1");
    assert!(a.store.saves() >= 1, "saved before SIGNED_IN");

    // A new process with the same store restores the session, even with the server down.
    env.fault(json!({"path": "/token", "drop": true, "times": 100}))
        .await;
    env.fault(json!({"path": "/user", "drop": true, "times": 100}))
        .await;
    let mut b = env.device_with(a.store.clone(), env.config()).await;
    let initial = b.events.expect(AuthEvent::InitialSession).await;
    assert_eq!(initial.session.unwrap().session_id, view.session_id);
    assert!(
        b.client.access_token().await.is_ok(),
        "a valid stored token is usable offline"
    );
}

#[tokio::test]
async fn a_thousand_concurrent_callers_make_one_refresh() {
    let env = Env::start().await;
    env.create_user("many@example.com").await;
    let mut d = env.device().await;
    d.sign_in("many@example.com").await;
    d.advance(3600); // expired by the device clock
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let c = d.client.clone();
        tasks.push(tokio::spawn(async move { c.access_token().await }));
    }
    let mut tokens = HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap().expose_secret().to_owned());
    }
    assert_eq!(
        d.client
            .metrics()
            .refresh_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
    d.events.expect(AuthEvent::TokenRefreshed).await;
}

#[tokio::test]
async fn two_processes_on_one_stored_session_refresh_once() {
    let env = Env::start().await;
    env.create_user("twoproc@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_path_buf());
    let store = Arc::new(MemoryStore::new());
    let mut app = env.device_with(store.clone(), cfg.clone()).await;
    app.sign_in("twoproc@example.com").await;
    let cli = env.device_with(store.clone(), cfg).await; // restores the same session
    app.advance(3600);
    cli.advance(3600);
    let (x, y) = tokio::join!(app.client.access_token(), cli.client.access_token());
    assert_eq!(x.unwrap(), y.unwrap());
    let total = app
        .client
        .metrics()
        .refresh_requests
        .load(std::sync::atomic::Ordering::SeqCst)
        + cli
            .client
            .metrics()
            .refresh_requests
            .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        total, 1,
        "the second process adopted the first one's refresh"
    );
}

#[tokio::test]
async fn transient_failures_never_sign_out_and_recover() {
    let env = Env::start().await;
    env.create_user("flaky@example.com").await;
    let mut d = env.device().await;
    d.sign_in("flaky@example.com").await;

    for fault in [
        json!({"path": "/token", "status": 503, "times": 1}),
        json!({"path": "/token", "drop": true, "times": 1}),
        json!({"path": "/token", "malformed": true, "times": 1}),
        json!({"path": "/token", "status": 429, "times": 1}),
        json!({"path": "/token", "delay_ms": 3000, "times": 1}),
    ] {
        // The token of this round (each round's refresh makes a new one; two tokens are
        // byte-identical only when the server issued them in the same second, which is why
        // comparing with the first one passed, except on a slow machine).
        let before = d.client.access_token().await.unwrap();
        env.fault(fault.clone()).await;
        d.advance(3000); // into the refresh margin; the token is still valid
        let err = d.client.refresh().await.unwrap_err();
        assert!(err.is_retryable(), "{fault}: {err:?}");
        assert!(d.client.session().is_some(), "{fault}: still signed in");
        assert!(matches!(
            d.client.connectivity(),
            Connectivity::Retrying { .. }
        ));
        // A caller still gets the unexpired token.
        assert_eq!(d.client.access_token().await.unwrap(), before);
        env.clear_faults().await;
        // The retry happens after the back-off, by the clock.
        d.advance(10);
        let refreshed = d.events.expect(AuthEvent::TokenRefreshed).await;
        assert!(refreshed.session.is_some());
        assert_eq!(d.client.connectivity(), Connectivity::Online);
        d.advance(0);
    }
    let events = d.events.drain();
    assert!(
        events.iter().all(|e| e.event != AuthEvent::SignedOut),
        "no false sign-out"
    );
}

#[tokio::test]
async fn expired_and_offline_shows_retrying_not_signed_out() {
    let env = Env::start().await;
    env.create_user("offline@example.com").await;
    let mut d = env.device().await;
    d.sign_in("offline@example.com").await;
    env.fault(json!({"path": "/token", "drop": true, "times": 1000}))
        .await;
    d.advance(7200); // access token expired too
    let err = d.client.access_token().await.unwrap_err();
    assert!(err.is_retryable());
    let c = d.events.expect(AuthEvent::Connectivity).await;
    assert!(matches!(
        c.connectivity,
        Some(Connectivity::Retrying { .. })
    ));
    assert!(
        d.client.session().is_some(),
        "the user stays signed in while offline"
    );
    // Back-off grows: several attempts over a simulated hour, still signed in.
    for _ in 0..20 {
        d.advance(180);
        settle().await;
    }
    assert!(d.client.session().is_some());
    env.clear_faults().await;
    d.advance(600);
    d.events.expect(AuthEvent::TokenRefreshed).await;
    assert!(d.client.access_token().await.is_ok());
}

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
async fn a_failed_save_during_refresh_loses_no_session() {
    let env = Env::with(gotrue_emulator::Config {
        refresh_token_reuse_interval: Duration::ZERO,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    env.create_user("disk@example.com").await;
    let mut d = env.device().await;
    d.sign_in("disk@example.com").await;
    d.store.set_fail_saves(true);
    d.advance(3500);
    // The refreshed session is kept in memory, unsaved (its old token is superseded), and
    // the failure reported.
    d.client.refresh().await.unwrap();
    let error = d.events.expect(AuthEvent::AuthError).await;
    assert_eq!(error.error.unwrap().code, "storage_failed");
    assert!(d.client.session().is_some());
    let saves = d.store.saves();
    d.store.set_fail_saves(false);
    d.advance(10);
    // The save is retried on its own.
    for _ in 0..100 {
        if d.store.saves() > saves {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(d.store.saves() > saves, "the unsaved session was saved");
    assert!(d.client.validate().await.unwrap().is_some());
    let restarted = env.device_with(d.store.clone(), env.config()).await;
    assert!(
        restarted.client.validate().await.unwrap().is_some(),
        "the stored session works"
    );
}

#[tokio::test]
async fn refresh_happens_after_a_suspend_and_the_engine_does_not_poll() {
    let env = Env::start().await;
    env.create_user("sleepy@example.com").await;
    let mut d = env.device().await;
    d.sign_in("sleepy@example.com").await;
    settle().await;
    let wakeups = || {
        d.client
            .metrics()
            .wakeups
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let start = wakeups();
    // Idle for 50 minutes, in one-minute steps: nothing is due, nothing wakes.
    for _ in 0..50 {
        d.advance(60);
        tokio::task::yield_now().await;
    }
    settle().await;
    assert!(
        wakeups() - start <= 1,
        "woke {} times while idle",
        wakeups() - start
    );
    assert_eq!(
        d.client
            .metrics()
            .refresh_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // A two-hour suspend: at resume the refresh is overdue and happens at once.
    d.advance(7200);
    d.events.expect(AuthEvent::TokenRefreshed).await;
    assert_eq!(
        d.client
            .metrics()
            .refresh_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn clock_skew_is_measured_and_expiry_uses_the_local_receipt_time() {
    let env = Env::start().await;
    env.create_user("skew@example.com").await;
    env.advance_server(3 * 3600); // the server's clock is three hours ahead
    let mut d = env.device().await;
    let view = d.sign_in("skew@example.com").await;
    assert!(
        (view.clock_skew_secs - 3 * 3600).abs() <= 2,
        "{}",
        view.clock_skew_secs
    );
    settle().await;
    // No refresh storm: the token is valid for an hour by this device's clock.
    assert_eq!(
        d.client
            .metrics()
            .refresh_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let token = d.client.access_token().await.unwrap();
    assert_eq!(d.client.access_token().await.unwrap(), token);
}

#[tokio::test]
async fn oauth_pkce_callback_is_accepted_once_and_only_for_our_flows() {
    let env = Env::start().await;
    let mut d = env.device().await;
    let url = d.client.sign_in_with_oauth("github", None).await.unwrap();
    assert!(url.contains("code_challenge="));
    assert!(url.contains("redirect_to=tessera%3A%2F%2Fauth%2Fcallback%3Fflow%3D"));
    // Play the browser.
    let page = env.http.get(&url).send().await.unwrap();
    let page_url = page.headers()["location"].to_str().unwrap().to_owned();
    let state = url::Url::parse(&page_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let submit = env
        .http
        .post(&page_url)
        .form(&[("state", state.as_str()), ("email", "octo@example.com")])
        .send()
        .await
        .unwrap();
    let callback = env
        .http
        .get(submit.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let deep_link = callback.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        deep_link.starts_with("tessera://auth/callback?"),
        "{deep_link}"
    );

    let auth_core::LinkOutcome::SignedIn { session: view } =
        d.client.handle_callback(&deep_link).await.unwrap()
    else {
        panic!("not signed in")
    };
    assert_eq!(view.user.email, "octo@example.com");
    d.events.expect(AuthEvent::SignedIn).await;

    // Replayed, forged or foreign links change nothing.
    for bad in [
        deep_link.clone(),
        deep_link.replace("flow=", "flow=x"),
        "tessera://auth/callback?flow=unknown&code=00000000-0000-0000-0000-000000000000".to_owned(),
        "tessera://auth/callback#access_token=abc&refresh_token=def".to_owned(),
        "evil://auth/callback?flow=a&code=b".to_owned(),
    ] {
        assert!(d.client.handle_callback(&bad).await.is_err(), "{bad}");
        d.events.expect(AuthEvent::AuthError).await;
        assert_eq!(
            d.client.session().unwrap().session_id,
            view.session_id,
            "state unchanged by {bad}"
        );
    }
}

#[tokio::test]
async fn magic_link_and_email_code() {
    let env = Env::start().await;
    env.create_user("link@example.com").await;
    let d = env.device().await;
    d.client.sign_in_with_otp("link@example.com").await.unwrap();
    let mail = env.last_mail("link@example.com");
    let click = env
        .http
        .get(mail["action_link"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let deep_link = click.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        deep_link.starts_with("tessera://auth/callback?"),
        "{deep_link}"
    );
    d.client.handle_callback(&deep_link).await.unwrap();
    assert_eq!(d.client.session().unwrap().user.email, "link@example.com");

    d.client.sign_out(SignOutScope::Local).await.unwrap();
    d.client.sign_in_with_otp("link@example.com").await.unwrap();
    let mail = env.last_mail("link@example.com");
    let wrong = d
        .client
        .verify_otp(
            "link@example.com",
            &OneTimeCode::new("000000"),
            auth_core::OtpType::Email,
        )
        .await;
    assert_eq!(wrong.unwrap_err().code(), "otp_expired");
    let code = OneTimeCode::new(mail["otp"].as_str().unwrap());
    d.client
        .verify_otp("link@example.com", &code, auth_core::OtpType::Email)
        .await
        .unwrap();
    assert!(d.client.session().is_some());
}

#[tokio::test]
async fn sign_up_update_user_and_mfa() {
    let env = Env::start().await;
    let mut d = env.device().await;
    let outcome = d
        .client
        .sign_up("new@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
    assert!(matches!(outcome, auth_core::SignUpOutcome::SignedIn { .. }));
    let user = d
        .client
        .update_user(UserUpdate {
            data: Some(json!({"theme": "dark"})),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(user.user_metadata["theme"], "dark");
    d.events.expect(AuthEvent::UserUpdated).await;

    let enrolled = d.client.mfa_enroll(Some("phone")).await.unwrap();
    assert!(enrolled.uri.starts_with("otpauth://totp/"));
    assert!(enrolled.qr_code_svg.contains("<svg"));
    let secret = enrolled.secret.clone();
    let now: Value = env
        .http
        .get(env.url("/_emulator/time"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = totp(&secret, now["now"].as_u64().unwrap());
    let view = d
        .client
        .mfa_verify(&enrolled.factor_id, &OneTimeCode::new(code))
        .await
        .unwrap();
    assert_eq!(view.aal, "aal2");
    d.events.expect(AuthEvent::MfaChallengeVerified).await;
    assert_eq!(d.client.user().await.unwrap().factors.len(), 1);
    d.client.mfa_unenroll(&enrolled.factor_id).await.unwrap();
    assert!(d.client.user().await.unwrap().factors.is_empty());
}

fn totp(secret: &str, at: u64) -> String {
    use sha2::Digest as _;
    let _ = sha2::Sha256::digest(b"");
    let key = base32_decode(secret);
    let counter = (at / 30).to_be_bytes();
    let mac = hmac_sha1(&key, &counter);
    let offset = (mac[19] & 0x0f) as usize;
    let bin = ((u32::from(mac[offset]) & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    // Test-only SHA-1 HMAC (RFC 2104) so the engine's dev-dependencies stay small.
    fn sha1(data: &[u8]) -> [u8; 20] {
        let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
        let mut msg = data.to_vec();
        let len = (data.len() as u64) * 8;
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&len.to_be_bytes());
        for chunk in msg.chunks(64) {
            let mut w = [0u32; 80];
            for i in 0..16 {
                w[i] = u32::from_be_bytes([
                    chunk[4 * i],
                    chunk[4 * i + 1],
                    chunk[4 * i + 2],
                    chunk[4 * i + 3],
                ]);
            }
            for i in 16..80 {
                w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
            }
            let [mut a, mut b, mut c, mut d, mut e] = h;
            for (i, wi) in w.iter().enumerate() {
                let (f, k) = match i {
                    0..=19 => ((b & c) | (!b & d), 0x5A827999),
                    20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                    40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                    _ => (b ^ c ^ d, 0xCA62C1D6),
                };
                let t = a
                    .rotate_left(5)
                    .wrapping_add(f)
                    .wrapping_add(e)
                    .wrapping_add(k)
                    .wrapping_add(*wi);
                e = d;
                d = c;
                c = b.rotate_left(30);
                b = a;
                a = t;
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
                *x = x.wrapping_add(y);
            }
        }
        let mut out = [0u8; 20];
        for (i, v) in h.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
        }
        out
    }
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
}

#[tokio::test]
async fn secrets_never_reach_events_debug_or_errors() {
    let env = Env::start().await;
    env.create_user("leak@example.com").await;
    let mut d = env.device().await;
    d.sign_in("leak@example.com").await;
    d.advance(3500);
    d.client.refresh().await.unwrap();
    let token = d.client.access_token().await.unwrap();
    let stored = d.store.dump();
    let session_blob = stored
        .iter()
        .find(|(k, _)| k.ends_with(".session"))
        .unwrap()
        .1
        .clone();
    let blob: Value = serde_json::from_slice(&session_blob).unwrap();
    let refresh = blob["data"]["refresh_token"].as_str().unwrap().to_owned();
    let access = token.expose_secret().to_owned();

    env.fault(json!({"path": "/token", "status": 503, "times": 1}))
        .await;
    d.advance(3500);
    let err = d.client.refresh().await.unwrap_err();
    d.client.sign_out(SignOutScope::Local).await.unwrap();
    let events = d.events.drain();
    let mut texts: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    texts.push(format!("{:?}", d.client));
    texts.push(format!("{token:?} {token}"));
    texts.push(format!("{err:?} {err}"));
    texts.push(format!(
        "{:?}",
        d.client.pending_revocations().await.unwrap()
    ));
    for text in texts {
        assert!(!text.contains(&access), "access token leaked: {text}");
        assert!(!text.contains(&refresh), "refresh token leaked: {text}");
    }
}

/// The start fails with `storage_corrupt`, reported as an `AUTH_ERROR` event, and the
/// session restored at start is none.
async fn starts_signed_out_reporting_corruption(client: &AuthClient) {
    let mut events = Events(client.subscribe());
    let err = client.start().await.unwrap_err();
    assert_eq!(err.code(), "storage_corrupt");
    let reported = events.expect(AuthEvent::AuthError).await.error.unwrap();
    assert_eq!(reported.code, "storage_corrupt");
    assert_eq!(events.expect(AuthEvent::InitialSession).await.session, None);
}

#[tokio::test]
async fn a_corrupt_stored_session_is_reported_and_removed() {
    let env = Env::start().await;
    let store = Arc::new(MemoryStore::new());
    let key = format!("default@{}.session", env.config().issuer());
    auth_core::SecretStore::save(store.as_ref(), &key, b"{not json").unwrap();
    let client = AuthClient::new(env.config(), store.clone()).unwrap();
    starts_signed_out_reporting_corruption(&client).await;
    assert!(store.dump().is_empty());
}

/// What a store says of a value it can no longer decrypt (Android: a SharedPreferences
/// file restored onto a new phone, whose Keystore key did not come with it): the store
/// itself answers `Corrupt`, until the value is deleted.
#[tokio::test]
async fn a_value_the_store_cannot_decrypt_is_removed_and_the_user_signed_out() {
    use auth_core::SecretStore as _;
    #[derive(Debug, Default)]
    struct Undecryptable {
        mem: MemoryStore,
    }
    impl auth_core::SecretStore for Undecryptable {
        fn load(&self, key: &str) -> Result<Option<Vec<u8>>, auth_core::StoreError> {
            match self.mem.load(key)? {
                Some(v) if v == b"sealed with a key this device lacks" => Err(
                    auth_core::StoreError::Corrupt("the value cannot be decrypted".into()),
                ),
                other => Ok(other),
            }
        }
        fn save(&self, key: &str, value: &[u8]) -> Result<(), auth_core::StoreError> {
            self.mem.save(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), auth_core::StoreError> {
            self.mem.delete(key)
        }
    }
    let env = Env::start().await;
    env.create_user("restored@example.com").await;
    let store = Arc::new(Undecryptable::default());
    let key = format!("default@{}.session", env.config().issuer());
    store
        .mem
        .save(&key, b"sealed with a key this device lacks")
        .unwrap();
    let client = AuthClient::new(env.config(), store.clone()).unwrap();
    starts_signed_out_reporting_corruption(&client).await;
    assert!(store.mem.dump().is_empty(), "the unreadable value is gone");
    // The user signs in again on this device, and that session is kept.
    client
        .sign_in_with_password("restored@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
    assert!(store.mem.load(&key).unwrap().is_some());
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
async fn bad_input_is_a_clear_error_and_changes_nothing() {
    let env = Env::start().await;
    let d = env.device().await;
    assert!(matches!(
        d.client
            .sign_in_with_password("", &Password::new("x"))
            .await,
        Err(AuthError::InvalidInput(_))
    ));
    let e = d
        .client
        .sign_in_with_password("nobody@example.com", &Password::new("whatever1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_credentials");
    assert!(matches!(
        d.client.access_token().await,
        Err(AuthError::NotSignedIn)
    ));
    assert!(matches!(
        d.client.sign_out(SignOutScope::Others).await,
        Err(AuthError::NotSignedIn)
    ));
    assert!(d.client.sign_in_with_oauth("git hub", None).await.is_err());
    assert!(
        AuthClient::new(
            auth_core::AuthConfig::new("ftp://x", "k"),
            Arc::new(MemoryStore::new())
        )
        .is_err()
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
async fn a_process_with_a_stale_token_uses_the_stored_one_even_when_both_are_due() {
    // Strict server: any reuse outside the parent rule revokes the whole session.
    let env = Env::with(gotrue_emulator::Config {
        refresh_token_reuse_interval: Duration::ZERO,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    env.create_user("stale@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_path_buf());
    let store = Arc::new(MemoryStore::new());
    let mut app = env.device_with(store.clone(), cfg.clone()).await;
    app.sign_in("stale@example.com").await;
    let mut cli = env.device_with(store.clone(), cfg).await; // holds the first refresh token
    app.client.refresh().await.unwrap();
    app.client.refresh().await.unwrap(); // the CLI's token is now two generations old
    cli.advance(7200); // both the CLI's session and the stored one are due by its clock
    cli.client.access_token().await.unwrap();
    settle().await;
    assert!(
        cli.events
            .drain()
            .iter()
            .all(|e| e.event != AuthEvent::SignedOut)
    );
    assert!(
        app.client.validate().await.unwrap().is_some(),
        "no reuse detection was triggered"
    );
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

/// Two processes on one stored session (two engines, one store, one lock directory): one
/// signs out with each scope while the other refreshes, 200 times, with the server's
/// answer delayed by a random few milliseconds so that every interleaving comes up. A
/// refresh that finishes after the other process ended the session must not write it
/// back, and no refresh token may ever be sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_never_resurrects_a_session_another_process_ended() {
    use rand::Rng;
    // Strict server: a refresh token sent twice would revoke the whole session.
    let env = Env::with(gotrue_emulator::Config {
        refresh_token_reuse_interval: Duration::ZERO,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    env.create_user("race@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = env.config();
    cfg.lock_dir = Some(dir.path().to_path_buf());
    let scopes = [
        SignOutScope::Local,
        SignOutScope::Global,
        SignOutScope::Others,
    ];
    let mut resurrected = Vec::new();
    // Local/global rounds whose refresh reached the server but whose result was thrown
    // away because the session had ended meanwhile: the interleaving this test is about.
    let mut discarded = 0;
    for round in 0..200 {
        let scope = scopes[round % scopes.len()];
        let store = Arc::new(MemoryStore::new());
        let mut app = env.device_with(store.clone(), cfg.clone()).await;
        let view = app.sign_in("race@example.com").await;
        let cli = env.device_with(store.clone(), cfg.clone()).await; // restores it
        let (delay, logout_delay, head_start) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..15u64),
                rng.random_range(0..15u64),
                rng.random_range(0..10u64),
            )
        };
        if delay > 0 {
            env.fault(json!({"path": "/token", "delay_ms": delay, "times": 1}))
                .await;
        }
        if logout_delay > 0 {
            env.fault(json!({"path": "/logout", "delay_ms": logout_delay, "times": 1}))
                .await;
        }
        let refresher = cli.client.clone();
        let refresh = tokio::spawn(async move { refresher.refresh().await });
        tokio::time::sleep(Duration::from_millis(head_start)).await;
        let outcome = app.client.sign_out(scope).await.unwrap();
        let refreshed = refresh.await.unwrap();
        env.clear_faults().await;
        assert!(outcome.local_done || scope == SignOutScope::Others);
        let requests = cli
            .client
            .metrics()
            .refresh_requests
            .load(std::sync::atomic::Ordering::SeqCst);
        if scope != SignOutScope::Others
            && requests == 1
            && matches!(refreshed, Err(AuthError::NotSignedIn))
        {
            discarded += 1;
        }
        // Deliver whatever either process queued.
        app.client.flush_outbox().await.unwrap();
        cli.client.flush_outbox().await.unwrap();
        let stored = store
            .dump()
            .into_iter()
            .any(|(key, _)| key.ends_with(".session"));
        let live = env.server_sessions(&view.user.id).await.len();
        match scope {
            SignOutScope::Others => {
                assert!(
                    stored,
                    "round {round}: `others` keeps this device's session"
                );
                assert_eq!(live, 1, "round {round}: only this device's session is left");
                app.client.sign_out(SignOutScope::Global).await.unwrap();
                cli.client.flush_outbox().await.unwrap();
            }
            _ => {
                if stored || live > 0 {
                    resurrected.push((round, scope, stored, live));
                }
            }
        }
        app.client.shutdown();
        cli.client.shutdown();
    }
    let stats = env.stats().await;
    assert_eq!(
        resurrected,
        Vec::new(),
        "(round, scope, still stored, live on the server) after a sign-out"
    );
    assert_eq!(
        stats["refresh_token_reuses"], 0,
        "no refresh token sent twice"
    );
    assert!(
        discarded > 0,
        "no round refreshed across the other process's sign-out"
    );
    eprintln!("200 rounds: {discarded} refreshes discarded, 0 resurrected, 0 reuses");
}
