//! Changing the email address against the emulator, with GoTrue's secure email change (a
//! code to each address; the first confirmation only says "now the other one").
#![allow(clippy::unwrap_used)]

mod support;

use auth_core::{AuthEvent, EmailChangeOutcome, OneTimeCode, UserUpdate};
use gotrue_emulator::Config;
use support::*;

fn code_for(env: &Env, email: &str) -> OneTimeCode {
    let mails = env.emu.mail_for(Some(email)).unwrap();
    OneTimeCode::new(
        mails
            .last()
            .expect("a mail")
            .otp
            .clone()
            .expect("a code in the mail"),
    )
}

#[tokio::test]
async fn both_addresses_confirm_then_the_address_changes_and_no_extra_session_lives() {
    let env = Env::with(Config {
        autoconfirm: false,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    let user = env.create_user("old@example.com").await;
    let mut d = env.device().await;
    d.sign_in("old@example.com").await;
    let session = d.client.session().unwrap().session_id;
    d.client
        .update_user(UserUpdate {
            email: Some("new@example.com".into()),
            ..UserUpdate::default()
        })
        .await
        .unwrap();
    assert_eq!(d.client.session().unwrap().user.email, "old@example.com");

    // The current address first: accepted, nothing changed yet.
    let first = d
        .client
        .confirm_email_change("old@example.com", &code_for(&env, "old@example.com"))
        .await
        .unwrap();
    assert_eq!(first, EmailChangeOutcome::OtherAddressPending);
    assert_eq!(d.client.session().unwrap().user.email, "old@example.com");

    // Then the new one: changed, announced, and this device keeps its own session.
    let second = d
        .client
        .confirm_email_change("new@example.com", &code_for(&env, "new@example.com"))
        .await
        .unwrap();
    let EmailChangeOutcome::Changed { user: changed } = second else {
        panic!("not changed: {second:?}");
    };
    assert_eq!(changed.email, "new@example.com");
    d.events.expect(AuthEvent::UserUpdated).await;
    let view = d.client.session().unwrap();
    assert_eq!(
        (view.user.email.as_str(), view.session_id),
        ("new@example.com", session)
    );
    // The session the server issued with the change is ended: one session left, and
    // nothing owed. The outbox entry goes when the answer to the revocation arrives, a
    // moment after the server already counts one session (on a loaded machine the check
    // came in between: the fresh-clone CI run of 2026-12-02).
    wait_server_sessions(&env, &user, 1, "an extra session lives on").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !d.client.pending_revocations().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the extra session's revocation is still owed"
        );
        settle().await;
    }
}

#[tokio::test]
async fn a_wrong_code_is_an_error_and_changes_nothing() {
    let env = Env::with(Config {
        autoconfirm: false,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    env.create_user("keep@example.com").await;
    let mut d = env.device().await;
    d.sign_in("keep@example.com").await;
    d.client
        .update_user(UserUpdate {
            email: Some("other@example.com".into()),
            ..UserUpdate::default()
        })
        .await
        .unwrap();
    let err = d
        .client
        .confirm_email_change("other@example.com", &OneTimeCode::new("000000"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_expired");
    assert_eq!(d.client.session().unwrap().user.email, "keep@example.com");
}
