//! TOTP factors: enrolment, challenge and verification to `aal2`, and what an `aal1`
//! session may no longer do once a factor is verified.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, access, claims, refresh_token};

/// Enrol, challenge, a wrong code, the right one: the session becomes `aal2` (new refresh
/// token, other `aal1` sessions ended) and stays so through a refresh; an `aal1` session
/// may then not remove the factor, enrol another or change the password; anonymous users
/// cannot enrol.
pub async fn totp_enroll_challenge_verify_unenroll(env: Env) {
    let email = env.email("mfa");
    let a = env.sign_up(&email).await;
    let other = env.sign_in(&email).await;
    let token = access(&a);

    let enrolled = env
        .post_auth(
            "/factors",
            &token,
            Some(json!({"factor_type": "totp", "friendly_name": "phone"})),
        )
        .await;
    let enrolled = enrolled.assert_ok().clone();
    let factor = enrolled["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(enrolled["type"], "totp");
    let qr = enrolled["totp"]["qr_code"].as_str().unwrap_or_default();
    assert!(qr.starts_with("<?xml") || qr.contains("<svg"), "{qr}");
    assert!(
        enrolled["totp"]["uri"]
            .as_str()
            .unwrap_or_default()
            .starts_with("otpauth://totp/")
    );
    let secret = enrolled["totp"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    env.post_auth(
        "/factors",
        &token,
        Some(json!({"factor_type": "totp", "friendly_name": "phone"})),
    )
    .await
    .assert_error(422, "mfa_factor_name_conflict");

    let ch = env
        .post_auth(
            &format!("/factors/{factor}/challenge"),
            &token,
            Some(json!({})),
        )
        .await;
    let ch = ch.assert_ok().clone();
    assert_eq!(ch["type"], "totp");
    assert!(ch["expires_at"].is_i64());
    let wrong = env
        .post_auth(
            &format!("/factors/{factor}/verify"),
            &token,
            Some(json!({"challenge_id": ch["id"], "code": "000000"})),
        )
        .await;
    wrong.assert_error(422, "mfa_verification_failed");

    let code = tessera_test_support::totp_at(&secret, env.now().await);
    let s = env
        .post_auth(
            &format!("/factors/{factor}/verify"),
            &token,
            Some(json!({"challenge_id": ch["id"], "code": code})),
        )
        .await;
    let s = s.assert_ok().clone();
    let c = claims(&access(&s));
    assert_eq!(c["aal"], "aal2");
    // Both methods, newest first by the second; within one second GoTrue leaves its claims
    // in the order they were made (the password first).
    let amr = c["amr"].as_array().cloned().unwrap_or_default();
    assert_eq!(amr.len(), 2, "{amr:?}");
    let order = if amr[0]["timestamp"] == amr[1]["timestamp"] {
        ["password", "totp"]
    } else {
        ["totp", "password"]
    };
    assert_eq!([&amr[0]["method"], &amr[1]["method"]], order, "{amr:?}");
    assert_eq!(c["session_id"], claims(&token)["session_id"]);
    assert_ne!(
        refresh_token(&s),
        refresh_token(&a),
        "verify issues a new refresh token"
    );
    // The user's other aal1 session is gone; the refreshed aal2 session stays aal2.
    env.get("/user", Some(&access(&other)))
        .await
        .assert_error(403, "session_not_found");
    let refreshed = env.refresh(&refresh_token(&s)).await.assert_ok().clone();
    assert_eq!(claims(&access(&refreshed))["aal"], "aal2");
    let user = env.get("/user", Some(&access(&refreshed))).await;
    assert_eq!(user.assert_ok()["factors"][0]["status"], "verified");

    // A fresh aal1 sign-in may not remove a verified factor or enroll another.
    let weak = env.sign_in(&email).await;
    env.send(
        Method::DELETE,
        &format!("/factors/{factor}"),
        Some(&access(&weak)),
        None,
        &[],
    )
    .await
    .assert_error(422, "insufficient_aal");
    env.post_auth(
        "/factors",
        &access(&weak),
        Some(json!({"factor_type": "totp"})),
    )
    .await
    .assert_error(403, "insufficient_aal");
    env.send(
        Method::PUT,
        "/user",
        Some(&access(&weak)),
        Some(json!({"password": "changed-pass"})),
        &[],
    )
    .await
    .assert_error(401, "insufficient_aal");
    let gone = env
        .send(
            Method::DELETE,
            &format!("/factors/{factor}"),
            Some(&access(&refreshed)),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.assert_ok()["id"], factor);

    // Anonymous users cannot enroll.
    let anon = env.post("/signup", json!({})).await.assert_ok().clone();
    env.post_auth(
        "/factors",
        &access(&anon),
        Some(json!({"factor_type": "totp"})),
    )
    .await
    .assert_error(403, "no_authorization");
}
