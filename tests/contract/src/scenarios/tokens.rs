//! `POST /token`: the password grant's errors, refresh-token rotation and its reuse rules,
//! and concurrent refreshes.

use std::collections::HashSet;

use serde_json::json;

use crate::env::{Env, PASSWORD, Reply, access, claims, refresh_token, user_id};

/// Wrong and unknown credentials, unknown or missing grant types and a missing address
/// are refused; every sign-in is a new session.
pub async fn password_grant_errors_and_new_session_per_sign_in(env: Env) {
    let email = env.email("pw");
    let first = env.sign_up(&email).await;
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": "nope-nope"}),
    )
    .await
    .assert_error(400, "invalid_credentials");
    let unknown = env
        .post(
            "/token?grant_type=password",
            json!({"email": env.email("ghost"), "password": PASSWORD}),
        )
        .await;
    unknown.assert_error(400, "invalid_credentials");
    assert_eq!(unknown.json["msg"], "Invalid login credentials");
    let bad_grant = env.post("/token?grant_type=magic", json!({})).await;
    bad_grant.assert_error(400, "invalid_credentials");
    assert_eq!(bad_grant.json["msg"], "unsupported_grant_type");
    env.post("/token", json!({}))
        .await
        .assert_error(400, "invalid_credentials");
    env.post("/token?grant_type=password", json!({"password": PASSWORD}))
        .await
        .assert_error(400, "validation_failed");

    let second = env.sign_in(&email).await;
    let a = claims(&access(&first))["session_id"].clone();
    let b = claims(&access(&second))["session_id"].clone();
    assert_ne!(a, b, "every sign-in creates a new session");
    assert_eq!(env.session_ids(&user_id(&first)).await.len(), 2);
}

/// A refresh rotates the token within the session. The parent of the live token is
/// answered with the live token; an older one only within the reuse interval (10 s); after
/// it, reuse is refused and the token family revoked — with GoTrue's quirk that a revoked
/// token is usable again within the interval of its revocation.
pub async fn refresh_rotates_and_reuse_rules(env: Env) {
    let s0 = env.sign_up(&env.email("rotate")).await;
    let t0 = refresh_token(&s0);
    let session = claims(&access(&s0))["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let s1 = env.refresh(&t0).await.assert_ok().clone();
    let t1 = refresh_token(&s1);
    assert_ne!(t0, t1);
    assert_eq!(
        claims(&access(&s1))["session_id"],
        claims(&access(&s0))["session_id"]
    );
    assert_eq!(
        claims(&access(&s1))["amr"],
        claims(&access(&s0))["amr"],
        "refresh adds no amr"
    );

    // The parent of the live token is always answered with the live token.
    let again = env.refresh(&t0).await.assert_ok().clone();
    assert_eq!(refresh_token(&again), t1);

    let s2 = env.refresh(&t1).await.assert_ok().clone();
    let t2 = refresh_token(&s2);

    // t0 is no longer the parent of the live token, but it is within the reuse interval.
    let branch = env.refresh(&t0).await.assert_ok().clone();
    assert_ne!(refresh_token(&branch), t2);

    // Outside the interval, an old token is reuse: 400 and the whole family is revoked.
    env.age_refresh_tokens(11, &[&session]).await;
    let s3 = env
        .refresh(&refresh_token(&branch))
        .await
        .assert_ok()
        .clone();
    let t3 = refresh_token(&s3);
    env.refresh(&t1)
        .await
        .assert_error(400, "refresh_token_already_used");
    // GoTrue's quirk, kept on purpose: revoking the family bumps `updated_at`, so a token
    // revoked that way is usable again inside the reuse interval ...
    // (and the child it mints makes it the parent of the live token from then on) ...
    let quirk = env.refresh(&t2).await.assert_ok().clone();
    assert_eq!(
        refresh_token(env.refresh(&t2).await.assert_ok()),
        refresh_token(&quirk)
    );
    // ... while the other revoked tokens are refused once the interval has passed.
    env.age_refresh_tokens(11, &[&session]).await;
    env.refresh(&t3)
        .await
        .assert_error(400, "refresh_token_already_used");
    // The session itself survives (legacy algorithm): its access token still works.
    env.get("/user", Some(&access(&s3))).await.assert_ok();
}

/// After sign-out the refresh token is not found; a token GoTrue can tell it never issued
/// is a validation failure, one of the right form that it does not know is not found.
pub async fn refresh_after_logout_and_malformed_tokens(env: Env) {
    let s = env.sign_up(&env.email("rt")).await;
    env.post_auth("/logout", &access(&s), None).await;
    let r = env.refresh(&refresh_token(&s)).await;
    r.assert_error(400, "refresh_token_not_found");
    assert_eq!(
        r.json["msg"],
        "Invalid Refresh Token: Refresh Token Not Found"
    );
    env.refresh("short")
        .await
        .assert_error(400, "validation_failed");
    env.refresh("ABCDEFGHIJKL")
        .await
        .assert_error(400, "validation_failed");
    env.refresh("abcdefghijkl")
        .await
        .assert_error(400, "refresh_token_not_found");
    env.post("/token?grant_type=refresh_token", json!({}))
        .await
        .assert_error(400, "validation_failed");
}

/// Many refreshes of one token at once: the token rotates once, and every caller gets
/// the one new token.
pub async fn concurrent_refreshes_rotate_once_and_never_fail(env: Env) {
    let s = env.sign_up(&env.email("race")).await;
    let token = refresh_token(&s);
    let mut handles = Vec::new();
    for _ in 0..25 {
        let env = env.clone();
        let token = token.clone();
        handles.push(tokio::spawn(async move { env.refresh(&token).await }));
    }
    let mut replies: Vec<Reply> = Vec::new();
    for h in handles {
        replies.push(h.await.expect("a refresh task"));
    }
    let mut issued = HashSet::new();
    for reply in &replies {
        issued.insert(refresh_token(reply.assert_ok()));
    }
    assert_eq!(
        issued.len(),
        1,
        "all callers get the one rotated token: {issued:?}"
    );
    assert!(!issued.contains(&token));
}
