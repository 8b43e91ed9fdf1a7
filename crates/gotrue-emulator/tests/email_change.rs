//! Email change, as GoTrue does it: with `GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED` (the
//! default) both the current and the new address get a mail with their own code and link,
//! and the change is made only once both are used (`internal/api/verify.go`,
//! `emailChangeVerify`); without it, one mail to the new address; with autoconfirm, at once.
#![allow(clippy::unwrap_used)]

mod support;

use gotrue_emulator::{Config, MailTemplates};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const ACCEPTED: &str =
    "Confirmation link accepted. Please proceed to confirm link sent to the other email";

/// A server with confirmations on and templates that show the codes, and a signed-in,
/// confirmed user `old@example.com`.
async fn signed_in(config: Config) -> (Env, Value) {
    let env = Env::with(Config {
        autoconfirm: false,
        mail_templates: MailTemplates::with_codes(),
        ..config
    })
    .await;
    env.admin(
        Method::POST,
        "/admin/users",
        Some(json!({"email": "old@example.com", "password": PASSWORD, "email_confirm": true})),
    )
    .await
    .assert_ok();
    let session = env.sign_in("old@example.com").await;
    (env, session)
}

async fn change_email(env: &Env, session: &Value, path: &str, body: Value) -> Value {
    let reply = env
        .send(Method::PUT, path, Some(&access(session)), Some(body), &[])
        .await;
    reply.assert_ok().clone()
}

async fn verify_code(env: &Env, email: &str, mail: &Value) -> Reply {
    env.post(
        "/verify",
        json!({"type": "email_change", "email": email, "token": mail["otp"]}),
    )
    .await
}

async fn current_email(env: &Env, session: &Value) -> Value {
    env.get("/user", Some(&access(session)))
        .await
        .assert_ok()
        .clone()
}

#[tokio::test]
async fn secure_change_mails_both_addresses_and_needs_both_confirmations() {
    let (env, session) = signed_in(Config::for_tests()).await;
    let user = change_email(&env, &session, "/user", json!({"email": "new@example.com"})).await;
    assert_eq!(user["email"], "old@example.com");
    assert_eq!(user["new_email"], "new@example.com");
    assert!(user["email_change_sent_at"].is_string(), "{user}");

    // One mail to each address, each with its own code and link, both `email_change`.
    let to_old = env.mails("old@example.com").await;
    let to_new = env.mails("new@example.com").await;
    assert_eq!((to_old.len(), to_new.len()), (1, 1));
    let (old_mail, new_mail) = (&to_old[0], &to_new[0]);
    for mail in [old_mail, new_mail] {
        assert_eq!(mail["type"], "email_change");
        assert!(
            mail["action_link"]
                .as_str()
                .unwrap()
                .contains("type=email_change"),
            "{mail}"
        );
    }
    assert_ne!(old_mail["otp"], new_mail["otp"]);
    assert_ne!(old_mail["token_hash"], new_mail["token_hash"]);

    // First confirmation (the current address): GoTrue's message, no session, no change.
    let first = verify_code(&env, "old@example.com", old_mail).await;
    assert_eq!(first.assert_ok(), &json!({"msg": ACCEPTED, "code": "200"}));
    assert!(first.json.get("access_token").is_none());
    let me = current_email(&env, &session).await;
    assert_eq!(me["email"], "old@example.com");
    assert_eq!(me["new_email"], "new@example.com");
    // That code is used up.
    verify_code(&env, "old@example.com", old_mail)
        .await
        .assert_error(403, "otp_expired");

    // Second confirmation: the change is made and a session is issued, as before.
    let second = verify_code(&env, "new@example.com", new_mail).await;
    let second = second.assert_ok();
    assert_eq!(second["user"]["email"], "new@example.com");
    assert!(second["access_token"].is_string());
    let me = current_email(&env, &session).await;
    assert_eq!(me["email"], "new@example.com");
    assert!(me.get("new_email").is_none(), "{me}");
    env.post(
        "/token?grant_type=password",
        json!({"email": "new@example.com", "password": PASSWORD}),
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn secure_change_by_links_in_either_order_redirects_with_the_message() {
    let (env, session) = signed_in(Config::for_tests()).await;
    let target = "http://localhost:3000/welcome";
    change_email(
        &env,
        &session,
        &format!("/user?redirect_to={target}"),
        json!({"email": "new@example.com"}),
    )
    .await;
    // The new address first, this time.
    let new_link = env.last_mail("new@example.com").await["action_link"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = env.get(&new_link, None).await;
    assert_eq!(first.status, 303);
    let location = first.location();
    assert!(location.starts_with(target), "{location}");
    assert_eq!(fragment(&location).get("message").unwrap(), ACCEPTED);
    assert!(!fragment(&location).contains_key("access_token"));
    assert!(query(&location).is_empty(), "implicit flow: {location}");
    assert_eq!(
        current_email(&env, &session).await["email"],
        "old@example.com"
    );

    let old_link = env.last_mail("old@example.com").await["action_link"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = env.get(&old_link, None).await;
    let location = second.location();
    let tokens = fragment(&location);
    assert!(tokens.contains_key("access_token"), "{location}");
    assert_eq!(tokens.get("type").unwrap(), "email_change");
    assert_eq!(
        current_email(&env, &session).await["email"],
        "new@example.com"
    );
}

#[tokio::test]
async fn secure_change_with_pkce_puts_the_message_in_the_query_then_gives_a_code() {
    let (env, session) = signed_in(Config::for_tests()).await;
    let (_verifier, challenge) = pkce();
    change_email(
        &env,
        &session,
        "/user?redirect_to=tessera://auth/confirm",
        json!({"email": "new@example.com", "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await;
    let old_mail = env.last_mail("old@example.com").await;
    let new_mail = env.last_mail("new@example.com").await;
    assert!(
        old_mail["token_hash"]
            .as_str()
            .unwrap()
            .starts_with("pkce_")
    );
    let first = env
        .get(old_mail["action_link"].as_str().unwrap(), None)
        .await;
    let location = first.location();
    assert_eq!(query(&location).get("message").unwrap(), ACCEPTED);
    assert_eq!(fragment(&location).get("message").unwrap(), ACCEPTED);
    assert!(!query(&location).contains_key("code"), "{location}");
    let second = env
        .get(new_mail["action_link"].as_str().unwrap(), None)
        .await;
    let location = second.location();
    assert!(query(&location).contains_key("code"), "{location}");
    assert_eq!(
        current_email(&env, &session).await["email"],
        "new@example.com"
    );
}

#[tokio::test]
async fn resend_mails_both_addresses_again() {
    let (env, session) = signed_in(Config::for_tests()).await;
    change_email(&env, &session, "/user", json!({"email": "new@example.com"})).await;
    let stale_old = env.last_mail("old@example.com").await;
    env.post(
        "/resend",
        json!({"type": "email_change", "email": "old@example.com"}),
    )
    .await
    .assert_ok();
    assert_eq!(env.mails("old@example.com").await.len(), 2);
    assert_eq!(env.mails("new@example.com").await.len(), 2);
    // The earlier codes are replaced; the new ones need both confirmations again.
    verify_code(&env, "old@example.com", &stale_old)
        .await
        .assert_error(403, "otp_expired");
    let old_mail = env.last_mail("old@example.com").await;
    let new_mail = env.last_mail("new@example.com").await;
    let first = verify_code(&env, "new@example.com", &new_mail).await;
    assert_eq!(first.assert_ok()["msg"], ACCEPTED);
    let second = verify_code(&env, "old@example.com", &old_mail).await;
    assert_eq!(second.assert_ok()["user"]["email"], "new@example.com");
}

#[tokio::test]
async fn with_secure_change_off_one_mail_to_the_new_address_confirms() {
    let (env, session) = signed_in(Config {
        secure_email_change: false,
        ..Config::for_tests()
    })
    .await;
    change_email(&env, &session, "/user", json!({"email": "new@example.com"})).await;
    assert!(env.mails("old@example.com").await.is_empty());
    let mail = env.last_mail("new@example.com").await;
    assert_eq!(mail["type"], "email_change");
    let done = verify_code(&env, "new@example.com", &mail).await;
    assert_eq!(done.assert_ok()["user"]["email"], "new@example.com");
    // Resend also mails the new address only.
    change_email(
        &env,
        &session,
        "/user",
        json!({"email": "third@example.com"}),
    )
    .await;
    env.post(
        "/resend",
        json!({"type": "email_change", "email": "new@example.com"}),
    )
    .await
    .assert_ok();
    assert!(env.mails("new@example.com").await.len() == 1);
    assert_eq!(env.mails("third@example.com").await.len(), 2);
}

#[tokio::test]
async fn with_autoconfirm_the_change_is_immediate() {
    let env = Env::start().await; // autoconfirm on, secure change on
    let session = env.sign_up("old@example.com").await;
    let user = change_email(&env, &session, "/user", json!({"email": "new@example.com"})).await;
    assert_eq!(user["email"], "new@example.com");
    assert!(user.get("new_email").is_none(), "{user}");
    assert!(env.mails("old@example.com").await.is_empty());
    assert!(env.mails("new@example.com").await.is_empty());
}
