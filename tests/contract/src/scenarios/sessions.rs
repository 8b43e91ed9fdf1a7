//! Sessions: sign-out scopes when this device's session is already gone, refresh-token
//! validation, MFA factor names.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, access, refresh_token};

/// `global` needs a live session to act from: with this device's session gone, GoTrue
/// answers `403 session_not_found` and revokes nothing — the user's other sessions live on.
pub async fn global_sign_out_without_this_session_revokes_nothing(env: Env) {
    let email = env.email("globalgone");
    let here = env.sign_up(&email).await;
    let elsewhere = env.sign_in(&email).await;
    let r = env
        .send(
            Method::POST,
            "/logout?scope=local",
            Some(&access(&here)),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    for scope in ["global", "others"] {
        env.send(
            Method::POST,
            &format!("/logout?scope={scope}"),
            Some(&access(&here)),
            None,
            &[],
        )
        .await
        .assert_error(403, "session_not_found");
    }
    env.refresh(&refresh_token(&elsewhere)).await.assert_ok();
}

/// A refresh token GoTrue can tell it never issued (too short, or not of its form) is a
/// `400 validation_failed` — it will never be accepted.
pub async fn a_malformed_refresh_token_is_a_validation_failure(env: Env) {
    for token in [
        "short",
        "ABCDEFGHIJKL",
        "this-is-not-a-refresh-token-of-any-form",
    ] {
        env.refresh(token)
            .await
            .assert_error(400, "validation_failed");
    }
}

/// Two factors of a user may not share a friendly name — an unverified one (an abandoned
/// enrolment) included, and the empty name too.
pub async fn mfa_factor_names_must_be_unique(env: Env) {
    let email = env.email("factors");
    let s = env.sign_up(&email).await;
    let token = access(&s);
    let enroll = |name: Option<&str>| {
        let mut body = json!({"factor_type": "totp"});
        if let Some(name) = name {
            body["friendly_name"] = json!(name);
        }
        let env = env.clone();
        let token = token.clone();
        async move { env.post_auth("/factors", &token, Some(body)).await }
    };
    enroll(Some("Phone")).await.assert_ok();
    // An unverified factor is listed with the user: a client can pick another name.
    let user = env.get("/user", Some(&token)).await;
    let factors = user.assert_ok()["factors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        factors
            .iter()
            .any(|f| f["friendly_name"] == "Phone" && f["status"] == "unverified"),
        "{factors:?}"
    );
    enroll(Some("Phone"))
        .await
        .assert_error(422, "mfa_factor_name_conflict");
    enroll(Some("Laptop")).await.assert_ok();
    enroll(None).await.assert_ok();
    enroll(None)
        .await
        .assert_error(422, "mfa_factor_name_conflict");
}
