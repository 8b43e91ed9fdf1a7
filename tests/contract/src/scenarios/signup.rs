//! `POST /signup`: the session it answers with, anonymous users, what it refuses, and
//! sign-up with confirmations on.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, PASSWORD, access, claims, refresh_token};

/// With autoconfirm, a sign-up is a session: its body and its access token's claims are
/// GoTrue's, to the field.
pub async fn signup_returns_a_session_shaped_like_gotrues(env: Env) {
    let email = env.email("Shape");
    let s = env
        .post(
            "/signup",
            json!({"email": email, "password": PASSWORD, "data": {"name": "Ada"}}),
        )
        .await;
    let s = s.assert_ok();
    let lower = email.to_lowercase();
    assert_eq!(s["token_type"], "bearer");
    assert_eq!(s["expires_in"], 3600);
    assert!(s["expires_at"].as_i64().unwrap_or_default() > 1_700_000_000);
    assert!(
        s.get("session_id").is_none(),
        "GoTrue never puts session_id in the body"
    );
    let rt = refresh_token(s);
    assert_eq!(rt.len(), 12);
    let user = &s["user"];
    assert_eq!(user["email"], lower);
    assert_eq!(user["phone"], "");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(user["is_anonymous"], false);
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    // The metadata starts as the email identity's data (with the sign-up's `data` beside).
    assert_eq!(
        user["user_metadata"],
        json!({"name": "Ada", "email": lower, "email_verified": true, "phone_verified": false, "sub": user["id"]})
    );
    assert!(user["email_confirmed_at"].is_string());
    // `confirmed_at` is a column the database computes: the sign-up's answer, made before
    // it is read back, has none.
    assert!(user.get("confirmed_at").is_none(), "{user}");
    assert!(user["last_sign_in_at"].is_string());
    let identities = user["identities"].as_array().cloned().unwrap_or_default();
    assert_eq!(identities.len(), 1, "{user}");
    assert_eq!(identities[0]["provider"], "email");
    assert_eq!(identities[0]["id"], user["id"]);
    assert_eq!(identities[0]["identity_data"]["email_verified"], true);
    assert!(user.get("factors").is_none());

    // The JWT carries GoTrue's claims.
    let c = claims(&access(s));
    assert_eq!(c["sub"], user["id"]);
    assert_eq!(c["aud"], "authenticated", "aud is a plain string");
    assert_eq!(c["role"], "authenticated");
    assert_eq!(c["email"], lower);
    assert_eq!(c["phone"], "");
    assert_eq!(c["aal"], "aal1");
    assert_eq!(c["is_anonymous"], false);
    assert_eq!(
        c["exp"].as_i64().unwrap_or_default() - c["iat"].as_i64().unwrap_or_default(),
        3600
    );
    assert_eq!(c["exp"], s["expires_at"]);
    assert!(uuid::Uuid::parse_str(c["session_id"].as_str().unwrap_or_default()).is_ok());
    let amr = c["amr"].as_array().cloned().unwrap_or_default();
    assert_eq!(amr[0]["method"], "password");
    assert!(amr[0]["timestamp"].is_i64());
    for absent in ["iss", "jti", "nbf"] {
        assert!(
            c.get(absent).is_none(),
            "{absent} is not written by default: {c}"
        );
    }
}

/// A sign-up with neither email nor phone is an anonymous user with a session; an empty
/// body is not JSON.
pub async fn anonymous_signup(env: Env) {
    let s = env.post("/signup", json!({})).await;
    let s = s.assert_ok();
    assert_eq!(s["user"]["is_anonymous"], true);
    assert_eq!(s["user"]["email"], "");
    assert_eq!(s["user"]["identities"], json!([]));
    assert_eq!(s["user"]["app_metadata"], json!({}));
    let c = claims(&access(s));
    assert_eq!(c["is_anonymous"], true);
    assert_eq!(c["amr"][0]["method"], "anonymous");

    let r = env.send(Method::POST, "/signup", None, None, &[]).await;
    r.assert_error(400, "bad_json");
}

/// A taken address, a weak or overlong password, a malformed address and a missing
/// password are refused, each with its own code.
pub async fn signup_rejections(env: Env) {
    let dup = env.email("dup");
    env.sign_up(&dup).await;
    env.post("/signup", json!({"email": dup, "password": PASSWORD}))
        .await
        .assert_error(422, "user_already_exists");
    let weak = env
        .post(
            "/signup",
            json!({"email": env.email("weak"), "password": "abc"}),
        )
        .await;
    weak.assert_error(422, "weak_password");
    assert_eq!(weak.json["weak_password"]["reasons"], json!(["length"]));
    env.post(
        "/signup",
        json!({"email": "not-an-email", "password": PASSWORD}),
    )
    .await
    .assert_error(400, "validation_failed");
    env.post("/signup", json!({"email": env.email("nopass")}))
        .await
        .assert_error(400, "validation_failed");
    let long = "x".repeat(73);
    env.post(
        "/signup",
        json!({"email": env.email("long"), "password": long}),
    )
    .await
    .assert_error(400, "validation_failed");
}

/// With confirmations on, a sign-up is a bare user and a mail; the password does not sign
/// in until the mailed code confirms the address; signing up again with a confirmed
/// address answers with an obfuscated fake user.
pub async fn signup_with_confirmations_on(env: Env) {
    let email = env.email("conf");
    let user = env
        .post("/signup", json!({"email": email, "password": PASSWORD}))
        .await;
    let user = user.assert_ok().clone();
    assert!(
        user.get("access_token").is_none(),
        "a bare user, no session"
    );
    assert!(user["confirmation_sent_at"].is_string());
    assert!(user.get("email_confirmed_at").is_none(), "{user}");

    let mail = env.last_mail(&email).await;
    assert_eq!(mail.link_type(), "signup");
    assert_eq!(mail.to, email);
    assert_eq!(mail.the_code().len(), 6);
    assert!(
        mail.link()
            .starts_with(&format!("{}/verify?token=", env.target.url)),
        "{}",
        mail.link()
    );
    assert!(!mail.subject.is_empty());

    // Wrong password first, then right password but unconfirmed.
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": "wrong-one"}),
    )
    .await
    .assert_error(400, "invalid_credentials");
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .assert_error(400, "email_not_confirmed");

    // Confirm by code.
    let s = env
        .post(
            "/verify",
            json!({"type": "signup", "email": email, "token": mail.the_code()}),
        )
        .await;
    assert!(s.assert_ok()["user"]["email_confirmed_at"].is_string());
    env.sign_in(&email).await;

    // A duplicate sign-up of a confirmed address gets an obfuscated fake user.
    let fake = env
        .post("/signup", json!({"email": email, "password": PASSWORD}))
        .await;
    let fake = fake.assert_ok();
    assert_eq!(fake["identities"], json!([]));
    assert_ne!(fake["id"], user["id"]);
}
