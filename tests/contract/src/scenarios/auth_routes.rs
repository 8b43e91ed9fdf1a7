//! Routes that take a user's access token: what they check (the header, the signature,
//! expiry, the user and the session) and what a ban, a sign-out or a deletion does.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, PASSWORD, access, forge, refresh_token, user_id};

/// No token, another scheme, a malformed token, one signed with another secret and one
/// without a user are refused, each with its code.
pub async fn authenticated_routes_check_signature_user_and_session(env: Env) {
    let email = env.email("auth");
    let s = env.sign_up(&email).await;
    let token = access(&s);
    assert_eq!(
        env.get("/user", Some(&token)).await.assert_ok()["email"],
        email
    );

    env.get("/user", None)
        .await
        .assert_error(401, "no_authorization");
    env.send(
        Method::GET,
        "/user",
        None,
        None,
        &[("authorization", "Basic abc")],
    )
    .await
    .assert_error(401, "no_authorization");
    env.get("/user", Some("not.a.jwt"))
        .await
        .assert_error(403, "bad_jwt");

    // Forged: same claims, another secret.
    let forged = forge(&token, "another-secret-another-secret-another-secret");
    env.get("/user", Some(&forged))
        .await
        .assert_error(403, "bad_jwt");

    // A token without a UUID subject.
    let anon_key = env.target.anon_key.clone();
    env.get("/user", Some(&anon_key))
        .await
        .assert_error(403, "bad_jwt");
}

/// An access token is refused once expired, with no leeway — `/logout` included
/// (emulator only: its clock moves).
pub async fn an_expired_access_token_is_refused(env: Env) {
    env.require_emulator("the clock, to expire an access token");
    let s = env.sign_up(&env.email("expired")).await;
    env.advance(3601).await;
    let expired = env.get("/user", Some(&access(&s))).await;
    expired.assert_error(403, "bad_jwt");
    assert!(
        expired.json["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{}",
        expired.text
    );
    env.post_auth("/logout", &access(&s), None)
        .await
        .assert_error(403, "bad_jwt");
}

/// A banned user is refused everywhere until the ban is lifted; a signed-out session's
/// token no longer works; a deleted user's tokens neither.
pub async fn revoked_session_deleted_user_and_banned_user(env: Env) {
    let email = env.email("gone");
    let s = env.sign_up(&email).await;
    let token = access(&s);
    let id = user_id(&s);

    env.admin(
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "1h"})),
    )
    .await
    .assert_ok();
    env.get("/user", Some(&token))
        .await
        .assert_error(403, "user_banned");
    env.refresh(&refresh_token(&s))
        .await
        .assert_error(400, "user_banned");
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .assert_error(400, "user_banned");
    env.admin(
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "none"})),
    )
    .await
    .assert_ok();
    env.get("/user", Some(&token)).await.assert_ok();

    env.post_auth("/logout?scope=local", &token, None).await;
    env.get("/user", Some(&token))
        .await
        .assert_error(403, "session_not_found");

    let again = env.sign_in(&email).await;
    env.admin(Method::DELETE, &format!("/admin/users/{id}"), None)
        .await
        .assert_ok();
    env.get("/user", Some(&access(&again)))
        .await
        .assert_error(403, "user_not_found");
    env.refresh(&refresh_token(&again))
        .await
        .assert_error(400, "refresh_token_not_found");
}
