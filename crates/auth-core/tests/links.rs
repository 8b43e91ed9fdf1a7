//! Deep links as an attacker would send them: a link finishes only a flow this device
//! started, and a link for another account changes nothing until the user agrees.
#![allow(clippy::unwrap_used)]

mod support;

use auth_core::{AuthEvent, LinkOutcome, SignOutScope};
use serde_json::Value;
use support::*;

/// The app link a project's template with an https app-link base hands to the app
/// ([`tessera_test_support::token_hash_link`]).
fn template_link(mail: &Value) -> String {
    tessera_test_support::token_hash_link(mail)
}

fn session_id(d: &Device) -> String {
    d.client.session().unwrap().session_id
}

#[tokio::test]
async fn a_forged_confirm_link_never_signs_in_the_attackers_account() {
    let env = Env::start().await;
    env.create_user("victim@example.com").await;
    let attacker = env.create_user("attacker@example.com").await;
    let mut d = env.device().await;
    d.sign_in("victim@example.com").await;
    let before = session_id(&d);
    let mail = env.magic_link_without_the_app("attacker@example.com").await;
    let hash = mail["token_hash"].as_str().unwrap();
    d.events.drain();

    for forged in [
        // The shape the old app accepted.
        format!("tessera://auth/confirm?token_hash={hash}&type=magiclink"),
        format!("tessera://auth/callback?token_hash={hash}&type=magiclink"),
        // A made-up flow id.
        format!("tessera://auth/confirm?flow=AAAAAAAAAAAAAAAA&token_hash={hash}&type=magiclink"),
        format!("tessera://auth/callback?flow=guess&token_hash={hash}&type=email"),
    ] {
        let err = d.client.handle_callback(&forged).await.unwrap_err();
        assert_eq!(err.code(), "invalid_callback", "{forged}");
        d.events.expect(AuthEvent::AuthError).await;
        assert_eq!(session_id(&d), before, "still the victim after {forged}");
    }
    assert!(
        env.server_sessions(&attacker).await.is_empty(),
        "the attacker's link was never used"
    );
    assert!(d.client.pending_revocations().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_mailed_link_finishes_the_flow_this_device_started_once() {
    let env = Env::start().await;
    env.create_user("link@example.com").await;
    let mut d = env.device().await;
    d.client.sign_in_with_otp("link@example.com").await.unwrap();
    let link = template_link(&env.last_mail("link@example.com"));
    assert!(link.starts_with("tessera://auth/callback?flow="), "{link}");
    let outcome = d.client.handle_callback(&link).await.unwrap();
    let LinkOutcome::SignedIn { session } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(session.user.email, "link@example.com");
    d.events.expect(AuthEvent::SignedIn).await;
    let err = d.client.handle_callback(&link).await.unwrap_err();
    assert_eq!(err.code(), "invalid_callback", "single use");
    assert_eq!(session_id(&d), session.session_id);
}

#[tokio::test]
async fn a_link_with_a_stolen_flow_id_must_sign_in_the_address_it_was_sent_to() {
    let env = Env::start().await;
    env.create_user("victim@example.com").await;
    let attacker = env.create_user("attacker@example.com").await;
    let d = env.device().await;
    // The victim asked for a link; suppose the attacker learned its flow id somehow.
    d.client
        .sign_in_with_otp("victim@example.com")
        .await
        .unwrap();
    let redirect = env.last_mail("victim@example.com")["redirect_to"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = env.magic_link_without_the_app("attacker@example.com").await;
    let forged = format!(
        "{redirect}&token_hash={}&type=magiclink",
        theirs["token_hash"].as_str().unwrap()
    );
    let err = d.client.handle_callback(&forged).await.unwrap_err();
    assert_eq!(err.code(), "invalid_callback");
    assert!(
        d.client.session().is_none(),
        "not signed in as the attacker"
    );
    // The session the server issued for it is revoked, not left live.
    d.client.flush_outbox().await.unwrap();
    assert!(env.server_sessions(&attacker).await.is_empty());
}

#[tokio::test]
async fn a_link_for_another_account_asks_first_and_a_no_revokes_it() {
    let env = Env::start().await;
    env.create_user("alice@example.com").await;
    let bob = env.create_user("bob@example.com").await;
    let mut d = env.device().await;
    d.sign_in("alice@example.com").await;
    let alice_session = session_id(&d);

    // A flow of this device, for another address: the link comes back, nothing changes.
    d.client.sign_in_with_otp("bob@example.com").await.unwrap();
    let link = template_link(&env.last_mail("bob@example.com"));
    d.events.drain();
    let LinkOutcome::ConfirmSwitch { switch } = d.client.handle_callback(&link).await.unwrap()
    else {
        panic!("expected a question")
    };
    assert_eq!(switch.current.email, "alice@example.com");
    assert_eq!(switch.incoming.email, "bob@example.com");
    assert_eq!(
        session_id(&d),
        alice_session,
        "nothing changes before the answer"
    );
    assert!(
        d.events.drain().is_empty(),
        "no auth event before the answer"
    );
    assert_eq!(
        d.client.pending_account_switch().await,
        Some(switch.clone())
    );

    // "No": Alice stays, Bob's new session is revoked at the server.
    assert_eq!(
        d.client
            .resolve_account_switch(&switch.id, false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(session_id(&d), alice_session);
    d.client.flush_outbox().await.unwrap();
    assert!(env.server_sessions(&bob).await.is_empty());
    assert!(d.client.pending_account_switch().await.is_none());
    assert!(
        d.client
            .resolve_account_switch(&switch.id, true)
            .await
            .is_err(),
        "an answer counts once"
    );

    // "Yes" to a second link: Bob now, Alice's session revoked.
    d.client.sign_in_with_otp("bob@example.com").await.unwrap();
    let link = template_link(&env.last_mail("bob@example.com"));
    let LinkOutcome::ConfirmSwitch { switch } = d.client.handle_callback(&link).await.unwrap()
    else {
        panic!("expected a question")
    };
    let view = d
        .client
        .resolve_account_switch(&switch.id, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.user.email, "bob@example.com");
    d.events.expect(AuthEvent::SignedIn).await;
    d.client.flush_outbox().await.unwrap();
    assert_eq!(env.server_sessions(&bob).await.len(), 1);
}

#[tokio::test]
async fn an_error_link_without_a_pending_flow_cancels_nothing_and_shows_no_foreign_text() {
    let env = Env::start().await;
    let mut d = env.device().await;
    d.client.sign_in_anonymously().await.unwrap();
    let before = d.client.session().unwrap();
    let oauth = d.client.sign_in_with_oauth("github", None).await.unwrap();
    let redirect: String = url::Url::parse(&oauth)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_to")
        .unwrap()
        .1
        .into_owned();
    let flow = redirect.split("flow=").nth(1).unwrap().to_owned();
    d.events.drain();

    for forged in [
        "tessera://auth/callback?error=server_error&error_description=Your+account+is+locked.+Call+%2B1-555-0100".to_owned(),
        "tessera://auth/callback?flow=other&error=access_denied&error_description=Call+us".to_owned(),
    ] {
        let err = d.client.handle_callback(&forged).await.unwrap_err();
        assert_eq!(err.code(), "invalid_callback", "{forged}");
        let shown = d.events.expect(AuthEvent::AuthError).await.error.unwrap();
        assert!(
            !shown.message.contains("Call") && !shown.message.contains("locked"),
            "attacker text shown: {}",
            shown.message
        );
    }
    assert_eq!(d.client.session().unwrap(), before);

    // The real flow still finishes; its own error link is reported as the server's.
    let err = d
        .client
        .handle_callback(&format!(
            "tessera://auth/callback?flow={flow}&error=access_denied&error_code=bad_oauth_callback&error_description=cancelled"
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_oauth_callback");
    assert_eq!(d.client.session().unwrap(), before);
    d.client.sign_out(SignOutScope::Local).await.unwrap();
}

/// Polls (5 s at most) until `user` has no live session at the server.
async fn wait_revoked(env: &Env, user: &str) {
    wait_server_sessions(env, user, 0, &format!("{user} still has a live session")).await;
}

/// Signed in as Alice, a link of this device for Bob comes back: the question.
async fn switch_to_bob(env: &Env, d: &mut Device) -> auth_core::AccountSwitch {
    d.sign_in("alice@example.com").await;
    d.client.sign_in_with_otp("bob@example.com").await.unwrap();
    let link = template_link(&env.last_mail("bob@example.com"));
    match d.client.handle_callback(&link).await.unwrap() {
        LinkOutcome::ConfirmSwitch { switch } => switch,
        other => panic!("expected a question, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unanswered_switch_is_revoked_at_the_server_when_it_expires() {
    let env = Env::start().await;
    env.create_user("alice@example.com").await;
    let bob = env.create_user("bob@example.com").await;
    let mut d = env.device().await;
    switch_to_bob(&env, &mut d).await;
    // Durable at once: if the app quits now, the outbox still owes the revocation.
    let owed = d.client.pending_revocations().await.unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(
        env.server_sessions(&bob).await.len(),
        1,
        "not before it expires"
    );
    d.advance(11 * 60);
    d.client.nudge();
    wait_revoked(&env, &bob).await;
    assert!(d.client.pending_account_switch().await.is_none());
    assert_eq!(d.client.session().unwrap().user.email, "alice@example.com");
}

#[tokio::test]
async fn a_yes_after_the_account_changed_is_refused_and_revokes() {
    let env = Env::start().await;
    env.create_user("alice@example.com").await;
    let bob = env.create_user("bob@example.com").await;
    let mut d = env.device().await;
    let switch = switch_to_bob(&env, &mut d).await;
    d.client.sign_out(SignOutScope::Local).await.unwrap();
    let err = d
        .client
        .resolve_account_switch(&switch.id, true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(d.client.session().is_none(), "the sign-out stands");
    d.client.flush_outbox().await.unwrap();
    wait_revoked(&env, &bob).await;
}

#[tokio::test]
async fn a_link_delivered_twice_at_once_is_used_once() {
    let env = Env::start().await;
    env.create_user("twice@example.com").await;
    let d = env.device().await;
    d.client
        .sign_in_with_otp("twice@example.com")
        .await
        .unwrap();
    let link = template_link(&env.last_mail("twice@example.com"));
    let (a, b) = tokio::join!(
        d.client.handle_callback(&link),
        d.client.handle_callback(&link)
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
}

#[tokio::test]
async fn a_flow_from_the_future_is_not_fresh_after_the_clock_steps_back() {
    let env = Env::start().await;
    env.create_user("clock@example.com").await;
    let d = env.device().await;
    d.client
        .sign_in_with_otp("clock@example.com")
        .await
        .unwrap();
    let link = template_link(&env.last_mail("clock@example.com"));
    // The flow was started, then the clock went back a day: its age can't be trusted.
    d.clock
        .set(std::time::SystemTime::now() - std::time::Duration::from_secs(86_400));
    let err = d.client.handle_callback(&link).await.unwrap_err();
    assert_eq!(err.code(), "invalid_callback");
    assert!(d.client.session().is_none());
}

#[tokio::test]
async fn the_sign_out_landing_asks_the_server_and_decides_nothing_itself() {
    let env = Env::start().await;
    env.create_user("land@example.com").await;
    let mut d = env.device().await;
    d.sign_in("land@example.com").await;
    // Anyone can open the link: while the session lives, nothing changes.
    let outcome = d
        .client
        .handle_callback("tessera://auth/signed-out")
        .await
        .unwrap();
    assert!(matches!(outcome, LinkOutcome::Checked { signed_in: true }));
    assert!(d.client.session().is_some());
    assert!(
        !d.events.drained_any(AuthEvent::SignedOut),
        "a link alone signed out"
    );
    // A link with parameters is not the landing.
    assert!(
        d.client
            .handle_callback("tessera://auth/signed-out?state=x")
            .await
            .is_err()
    );

    // The web dashboard ended every session of the account, then sent the person here.
    let mut web = env.device().await;
    web.sign_in("land@example.com").await;
    web.client.sign_out(SignOutScope::Global).await.unwrap();
    let outcome = d
        .client
        .handle_callback("tessera://auth/signed-out")
        .await
        .unwrap();
    assert!(matches!(outcome, LinkOutcome::Checked { signed_in: false }));
    let out = d.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(out.reason, Some(auth_core::SignOutReason::Revoked));
    assert!(d.client.session().is_none());
}

#[tokio::test]
async fn retrying_sign_outs_leaves_an_unanswered_switch_alone() {
    let env = Env::start().await;
    env.create_user("alice@example.com").await;
    let bob = env.create_user("bob@example.com").await;
    let mut d = env.device().await;
    let switch = switch_to_bob(&env, &mut d).await;
    // "Try again now" on the queued sign-outs, while the question is open: the question's
    // session is not a sign-out, and stays until the answer or its expiry.
    d.client.flush_outbox().await.unwrap();
    assert_eq!(
        env.server_sessions(&bob).await.len(),
        1,
        "the switch's session was revoked before the user answered"
    );
    let view = d
        .client
        .resolve_account_switch(&switch.id, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.user.email, "bob@example.com");
    d.client.user().await.unwrap();
}

#[tokio::test]
async fn a_mailed_link_followed_by_the_engine_signs_in() {
    // What the demo mailbox and `authctl link` do. Nested engine operations once made
    // this future big enough to overflow a thread's stack in debug builds (the e2e's
    // mailbox test crashed the app).
    let env = Env::start().await;
    env.create_user("follow@example.com").await;
    let d = env.device().await;
    d.client
        .sign_in_with_otp("follow@example.com")
        .await
        .unwrap();
    let mail = env.last_mail("follow@example.com");
    let link = mail["action_link"].as_str().unwrap();
    let outcome = d.client.follow_email_link(link).await.unwrap();
    assert!(
        matches!(outcome, LinkOutcome::SignedIn { .. }),
        "{outcome:?}"
    );
    assert_eq!(d.client.session().unwrap().user.email, "follow@example.com");
}
