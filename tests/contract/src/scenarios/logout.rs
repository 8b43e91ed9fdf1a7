//! `POST /logout`: its three scopes, and what it refuses.

use crate::env::{Env, access, claims, refresh_token, user_id};

/// `local` ends the caller's session, `others` every other one, `global` (the default)
/// all of them.
pub async fn logout_scopes(env: Env) {
    let email = env.email("scopes");
    let a = env.sign_up(&email).await;
    let b = env.sign_in(&email).await;
    let c = env.sign_in(&email).await;
    let uid = user_id(&a);

    // local: only the caller's session.
    let r = env
        .post_auth("/logout?scope=local", &access(&a), None)
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(env.session_ids(&uid).await.len(), 2);
    env.refresh(&refresh_token(&a))
        .await
        .assert_error(400, "refresh_token_not_found");

    // others: everything but the caller's.
    let d = env.sign_in(&email).await;
    env.post_auth("/logout?scope=others", &access(&d), None)
        .await;
    let left = env.session_ids(&uid).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0], claims(&access(&d))["session_id"]);
    env.get("/user", Some(&access(&b)))
        .await
        .assert_error(403, "session_not_found");
    env.get("/user", Some(&access(&c)))
        .await
        .assert_error(403, "session_not_found");
    env.get("/user", Some(&access(&d))).await.assert_ok();

    // global is the default.
    env.sign_in(&email).await;
    let r = env.post_auth("/logout", &access(&d), None).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert!(env.session_ids(&uid).await.is_empty());
}

/// An unknown scope and a missing token are refused; a second sign-out of the same
/// session is `session_not_found`, not a success.
pub async fn logout_is_not_idempotent_and_checks_its_input(env: Env) {
    let s = env.sign_up(&env.email("twice")).await;
    let token = access(&s);
    env.post_auth("/logout?scope=nonsense", &token, None)
        .await
        .assert_error(400, "validation_failed");
    env.send(reqwest::Method::POST, "/logout", None, None, &[])
        .await
        .assert_error(401, "no_authorization");
    assert_eq!(
        env.post_auth("/logout?scope=global", &token, None)
            .await
            .status
            .as_u16(),
        204
    );
    env.post_auth("/logout?scope=global", &token, None)
        .await
        .assert_error(403, "session_not_found");
}
