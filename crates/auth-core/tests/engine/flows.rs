//! Signing in: password with restore at start, OAuth with PKCE, magic link and email code,
//! sign-up, user updates and MFA; bad input changes nothing.

use std::sync::Arc;

use super::support::*;
use auth_core::{
    AuthClient, AuthError, AuthEvent, MemoryStore, OneTimeCode, Password, SignOutScope, UserUpdate,
};
use serde_json::json;

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
    let now = env.get("/_emulator/time").await;
    let code = tessera_test_support::totp_at(&secret, now["now"].as_u64().unwrap());
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
