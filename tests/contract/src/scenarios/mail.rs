//! Mailed sign-ins and codes: magic links (implicit and PKCE), `/otp` making users,
//! password recovery and `/resend`.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, PASSWORD, access, claims, fragment, query};

/// A magic link signs in by its link (the session in the fragment, once), by the code its
/// mail shows, and by its token hash — each once.
pub async fn magic_link_implicit_code_and_link(env: Env) {
    let email = env.email("magic");
    env.signed_in_user(&email).await;
    let r = env
        .post(
            "/otp?redirect_to=tessera://auth/confirm",
            json!({ "email": email }),
        )
        .await;
    assert_eq!(r.assert_ok(), &json!({}));
    let mail = env.nth_mail(&email, 1).await;
    assert_eq!(mail.link_type(), "magiclink");
    let link = mail.link().to_owned();
    assert!(link.starts_with(&env.target.url), "{link}");

    // The link: 303 with the session in the fragment.
    let clicked = env.open(&link).await;
    assert_eq!(clicked.status.as_u16(), 303, "{}", clicked.text);
    let loc = clicked.location();
    assert!(loc.starts_with("tessera://auth/confirm#"), "{loc}");
    let f = fragment(&loc);
    for key in [
        "access_token",
        "expires_at",
        "expires_in",
        "refresh_token",
        "token_type",
        "type",
        "sb",
    ] {
        assert!(f.contains_key(key), "{key} missing in {loc}");
    }
    assert_eq!(f["type"], "magiclink");
    env.get("/user", Some(&f["access_token"])).await.assert_ok();

    // Used links fail, as a redirect with the error.
    let again = env.open(&link).await;
    assert_eq!(again.status.as_u16(), 303);
    assert_eq!(fragment(&again.location())["error_code"], "otp_expired");

    // The code from a fresh mail.
    env.post("/otp", json!({ "email": email }))
        .await
        .assert_ok();
    let code = env.nth_mail(&email, 2).await.the_code();
    let verify_code = json!({"type": "email", "email": email, "token": code});
    env.post("/verify", verify_code.clone()).await.assert_ok();
    env.post("/verify", verify_code)
        .await
        .assert_error(403, "otp_expired");

    // The token hash from a fresh mail.
    env.post("/otp", json!({ "email": email }))
        .await
        .assert_ok();
    let hash = env.nth_mail(&email, 3).await.token_hash();
    env.post(
        "/verify",
        json!({"type": "magiclink", "token_hash": hash, "email": email}),
    )
    .await
    .assert_error(400, "validation_failed");
    let s = env
        .post("/verify", json!({"type": "magiclink", "token_hash": hash}))
        .await;
    assert_eq!(claims(&access(s.assert_ok()))["amr"][0]["method"], "otp");
}

/// `/otp` signs a new address up (with autoconfirm, then mails a magic link) unless told
/// not to; it needs an address.
pub async fn otp_creates_users_unless_told_not_to(env: Env) {
    env.post(
        "/otp",
        json!({"email": env.email("nobody"), "create_user": false}),
    )
    .await
    .assert_error(422, "otp_disabled");
    let newbie = env.email("newbie");
    env.post("/otp", json!({ "email": newbie }))
        .await
        .assert_ok();
    let mail = env.last_mail(&newbie).await;
    assert_eq!(mail.link_type(), "magiclink");
    let s = env
        .post(
            "/verify",
            json!({"type": "email", "token_hash": mail.token_hash()}),
        )
        .await;
    assert_eq!(s.assert_ok()["user"]["email"], newbie);
    env.post("/otp", json!({}))
        .await
        .assert_error(400, "validation_failed");
}

/// Without autoconfirm, `/otp` for a new address sends the sign-up confirmation, whose
/// code signs in as an `email` code.
pub async fn otp_for_a_new_address_mails_the_signup_confirmation(env: Env) {
    let fresh = env.email("fresh");
    env.post("/otp", json!({ "email": fresh }))
        .await
        .assert_ok();
    let mail = env.last_mail(&fresh).await;
    assert_eq!(mail.link_type(), "signup");
    env.post(
        "/verify",
        json!({"type": "email", "email": fresh, "token": mail.the_code()}),
    )
    .await
    .assert_ok();
}

/// A magic link with a code challenge redirects with a code that the verifier exchanges;
/// a broken PKCE link reports its error in the query too.
pub async fn magic_link_with_pkce(env: Env) {
    let email = env.email("pkcemail");
    env.sign_up(&email).await;
    let (verifier, challenge) = crate::env::pkce();
    env.post(
        "/otp?redirect_to=tessera://auth/callback",
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let mail = env.last_mail(&email).await;
    assert!(mail.token_hash().starts_with("pkce_"), "{}", mail.link());
    let clicked = env.open(mail.link()).await;
    assert_eq!(clicked.status.as_u16(), 303, "{}", clicked.text);
    let loc = clicked.location();
    assert!(loc.starts_with("tessera://auth/callback?code="), "{loc}");
    let code = query(&loc)["code"].clone();
    let s = env
        .post(
            "/token?grant_type=pkce",
            json!({"auth_code": code, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(
        claims(&access(s.assert_ok()))["amr"][0]["method"],
        "magiclink"
    );

    // A broken PKCE link reports the error in the query too.
    let broken = env
        .get(
            "/verify?token=pkce_deadbeef&type=magiclink&redirect_to=tessera://auth/callback",
            None,
        )
        .await;
    let loc = broken.location();
    assert_eq!(query(&loc)["error_code"], "otp_expired", "{loc}");
    assert_eq!(fragment(&loc)["error_code"], "otp_expired", "{loc}");
}

/// `/recover` answers `{}` for any address and mails only a known one; its code signs in
/// for a password change. `/resend` checks its type; only the newest confirmation code
/// works.
pub async fn recover_and_resend(env: Env) {
    let lost = env.email("lost");
    env.signed_in_user(&lost).await;
    let unknown = env.email("unknown");
    assert_eq!(
        env.post("/recover", json!({ "email": unknown }))
            .await
            .assert_ok(),
        &json!({})
    );
    env.post("/recover", json!({ "email": lost }))
        .await
        .assert_ok();
    let mail = env.last_mail(&lost).await;
    assert_eq!(mail.link_type(), "recovery");
    assert!(
        env.mails(&unknown).await.is_empty(),
        "no mail to an unknown address"
    );
    let s = env
        .post(
            "/verify",
            json!({"type": "recovery", "email": lost, "token": mail.the_code()}),
        )
        .await;
    let s = s.assert_ok().clone();
    env.send(
        Method::PUT,
        "/user",
        Some(&access(&s)),
        Some(json!({"password": "brand-new-pass"})),
        &[],
    )
    .await
    .assert_ok();
    env.post(
        "/token?grant_type=password",
        json!({"email": lost, "password": "brand-new-pass"}),
    )
    .await
    .assert_ok();
    env.post("/recover", json!({}))
        .await
        .assert_error(400, "validation_failed");

    env.post("/resend", json!({"type": "bogus", "email": lost}))
        .await
        .assert_error(400, "validation_failed");
    assert_eq!(
        env.post("/resend", json!({"type": "signup", "email": lost}))
            .await
            .assert_ok(),
        &json!({})
    );

    let again = env.email("again");
    env.post("/signup", json!({"email": again, "password": PASSWORD}))
        .await
        .assert_ok();
    env.post("/resend", json!({"type": "signup", "email": again}))
        .await
        .assert_ok();
    let first = env.nth_mail(&again, 1).await;
    let second = env.nth_mail(&again, 2).await;
    assert_eq!(env.mails(&again).await.len(), 2);
    // Only the newest code works.
    env.post(
        "/verify",
        json!({"type": "signup", "email": again, "token": first.the_code()}),
    )
    .await
    .assert_error(403, "otp_expired");
    env.post(
        "/verify",
        json!({"type": "signup", "email": again, "token": second.the_code()}),
    )
    .await
    .assert_ok();
}
