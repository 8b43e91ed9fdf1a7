//! `PUT /user` and `/reauthenticate`: metadata, password changes, an anonymous user made
//! permanent, and the reauthentication nonce.

use reqwest::Method;
use serde_json::{Value, json};

use crate::env::{Env, PASSWORD, access, refresh_token};

/// Metadata merges (`null` removes a key); the same password, a weak one and
/// `app_metadata` are refused; a new password ends the user's other sessions, not this one.
pub async fn update_user_metadata_and_password(env: Env) {
    let email = env.email("upd");
    let a = env.sign_up(&email).await;
    let b = env.sign_in(&email).await;
    let token = access(&a);
    let put = |body: Value| env.send(Method::PUT, "/user", Some(&token), Some(body), &[]);

    let u = put(json!({"data": {"theme": "dark", "email_verified": null}})).await;
    assert_eq!(
        u.assert_ok()["user_metadata"],
        json!({"theme": "dark", "email": email, "phone_verified": false, "sub": a["user"]["id"]})
    );
    put(json!({ "password": PASSWORD }))
        .await
        .assert_error(422, "same_password");
    put(json!({"password": "abc"}))
        .await
        .assert_error(422, "weak_password");
    put(json!({"app_metadata": {"role": "x"}}))
        .await
        .assert_error(403, "not_admin");

    put(json!({"password": "a-different-one"}))
        .await
        .assert_ok();
    // Other sessions ended; this one stays.
    env.get("/user", Some(&access(&b)))
        .await
        .assert_error(403, "session_not_found");
    env.refresh(&refresh_token(&b))
        .await
        .assert_error(400, "refresh_token_not_found");
    env.get("/user", Some(&token)).await.assert_ok();
    env.refresh(&refresh_token(&a)).await.assert_ok();
}

/// An anonymous user needs an address before a password; with both it is a permanent user
/// who signs in with them.
pub async fn anonymous_user_becomes_permanent(env: Env) {
    let s = env.post("/signup", json!({})).await.assert_ok().clone();
    let token = access(&s);
    env.send(
        Method::PUT,
        "/user",
        Some(&token),
        Some(json!({"password": "lonely-pass"})),
        &[],
    )
    .await
    .assert_error(422, "validation_failed");
    let email = env.email("anon");
    let u = env
        .send(
            Method::PUT,
            "/user",
            Some(&token),
            Some(json!({"email": email, "password": "lonely-pass"})),
            &[],
        )
        .await;
    let u = u.assert_ok();
    assert_eq!(u["is_anonymous"], false);
    assert_eq!(u["email"], email);
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": "lonely-pass"}),
    )
    .await
    .assert_ok();
}

/// `/reauthenticate` mails a code (GoTrue's stock template shows it). A password change
/// does not read a nonce unless the project requires reauthentication (off by default): a
/// wrong one is ignored.
pub async fn reauthenticate_nonce(env: Env) {
    let email = env.email("reauth");
    let s = env.sign_up(&email).await;
    let token = access(&s);
    assert_eq!(
        env.get("/reauthenticate", Some(&token)).await.assert_ok(),
        &json!({})
    );
    let mail = env.last_mail(&email).await;
    let code = mail.the_code();
    assert_eq!(code.len(), 6);
    assert_eq!(mail.subject, format!("{code} is your verification code"));
    assert!(mail.links.is_empty(), "{}", mail.html);
    env.send(
        Method::PUT,
        "/user",
        Some(&token),
        Some(json!({"password": "next-pass-1", "nonce": "000000"})),
        &[],
    )
    .await
    .assert_ok();
    env.send(
        Method::PUT,
        "/user",
        Some(&token),
        Some(json!({"password": "next-pass-2", "nonce": code})),
        &[],
    )
    .await
    .assert_ok();
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": "next-pass-2"}),
    )
    .await
    .assert_ok();
}
