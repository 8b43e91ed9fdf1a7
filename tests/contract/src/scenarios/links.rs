//! Mailed links as a real project sends them: the templates, the PKCE flow states and
//! their five minutes, the redirect allow list, and email change.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, Mail, PASSWORD, access, fragment, pkce, query, urlencode, user_id};

/// The callback a Tessera flow asks for.
fn callback(flow: &str) -> String {
    format!("tessera://auth/callback?flow={flow}")
}

/// `path` with `redirect_to` set to `target`.
fn with_redirect(path: &str, target: &str) -> String {
    format!("{path}?redirect_to={}", urlencode(target))
}

/// A confirmed user made through the admin API; returns the id.
async fn confirmed_user(env: &Env, email: &str) -> String {
    let made = env
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"email": email, "password": PASSWORD, "email_confirm": true})),
        )
        .await;
    made.assert_ok()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Opens a mailed link like a browser and returns where it redirects (a 303).
async fn click(env: &Env, link: &str) -> String {
    let reply = env.open(link).await;
    assert_eq!(reply.status.as_u16(), 303, "{link}: {}", reply.text);
    reply.location()
}

/// A redirect to the app's callback, checked for GoTrue's form — the query written again,
/// sorted by name (`q.Encode()`) — and its query parameters.
#[track_caller]
fn app_redirect(location: &str) -> std::collections::HashMap<String, String> {
    let before_fragment = location.split('#').next().unwrap_or_default();
    let (path, q) = before_fragment
        .split_once('?')
        .unwrap_or_else(|| panic!("a query in {location}"));
    assert_eq!(path, "tessera://auth/callback", "{location}");
    let names: Vec<&str> = q
        .split('&')
        .map(|kv| kv.split('=').next().unwrap_or_default())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        names, sorted,
        "GoTrue writes the query sorted by name: {location}"
    );
    query(location)
}

async fn exchange(env: &Env, code: &str, verifier: &str) -> crate::env::Reply {
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": code, "code_verifier": verifier}),
    )
    .await
}

/// GoTrue's stock templates carry `{{ .ConfirmationURL }}` and nothing else: an https (or
/// http) link to the server's `/verify`, which passes `html/template`'s URL filter, and no
/// code.
pub async fn stock_templates_mail_a_link_and_no_code(env: Env) {
    let email = env.email("stock");
    let (_, challenge) = pkce();
    let back = callback("stockFlow1");
    env.post(
        &with_redirect("/signup", &back),
        json!({"email": email, "password": PASSWORD, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let mail = env.last_mail(&email).await;
    assert_eq!(mail.subject, "Confirm your email address");
    assert_eq!(mail.links.len(), 1, "{}", mail.html);
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/verify?token=pkce_", env.target.url)),
        "{link}"
    );
    let q = query(link);
    assert_eq!(q["type"], "signup");
    assert_eq!(q["redirect_to"], back);
    assert_eq!(
        mail.code(),
        None,
        "a stock template shows no code: {}",
        mail.html
    );
}

/// The template Tessera's README used to recommend starts `href` with
/// `{{ .RedirectTo }}`; `html/template` refuses the `tessera:` scheme there, and the link
/// becomes `#ZgotmplZ…` — a click that opens nothing.
pub async fn the_old_app_link_template_renders_a_dead_link(env: Env) {
    let email = env.email("applink");
    confirmed_user(&env, &email).await;
    let (_, challenge) = pkce();
    env.post(
        &with_redirect("/otp", &callback("appLinkFlow1")),
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let mail = env.last_mail(&email).await;
    let link = mail.link();
    assert!(
        link.starts_with("#ZgotmplZ&token_hash=pkce_"),
        "html/template keeps the tessera: URL out of href: {link}"
    );
}

/// A template with `{{ .Token }}` mails a code that `POST /verify` takes.
pub async fn a_template_that_shows_the_code_mails_a_working_code(env: Env) {
    let email = env.email("codes");
    env.post("/signup", json!({"email": email, "password": PASSWORD}))
        .await
        .assert_ok();
    let mail = env.last_mail(&email).await;
    let code = mail
        .code()
        .unwrap_or_else(|| panic!("a code in {}", mail.html));
    let s = env
        .post(
            "/verify",
            json!({"type": "signup", "email": email, "token": code}),
        )
        .await;
    assert!(s.assert_ok()["user"]["email_confirmed_at"].is_string());
}

/// `/resend` is PKCE like the request it repeats: the new mail's link comes back with a code
/// for the new challenge; the first mail's link is dead (its token was replaced).
pub async fn a_resent_confirmation_is_a_pkce_link_of_its_own(env: Env) {
    let email = env.email("resend");
    let (_, first) = pkce();
    env.post(
        &with_redirect("/signup", &callback("resendFlow1")),
        json!({"email": email, "password": PASSWORD, "code_challenge": first, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let (verifier, second) = pkce();
    env.post(
        &with_redirect("/resend", &callback("resendFlow2")),
        json!({"type": "signup", "email": email, "code_challenge": second, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let old = env.nth_mail(&email, 1).await;
    let new = env.nth_mail(&email, 2).await;
    assert!(
        query(new.link())["token"].starts_with("pkce_"),
        "{}",
        new.link()
    );
    let location = click(&env, new.link()).await;
    let q = app_redirect(&location);
    assert_eq!(q["flow"], "resendFlow2");
    let s = exchange(&env, &q["code"], &verifier).await;
    assert_eq!(s.assert_ok()["user"]["email"], email);
    let dead = click(&env, old.link()).await;
    assert_eq!(app_redirect(&dead)["error_code"], "otp_expired");
}

/// A sign-up's flow state lives 300 s from the sign-up: a confirmation link clicked later
/// still confirms the address and redirects with a code, but the code no longer signs in.
pub async fn a_signup_link_after_five_minutes_confirms_but_cannot_sign_in(env: Env) {
    let email = env.email("lateconfirm");
    let (verifier, challenge) = pkce();
    let back = callback("lateFlow1");
    let user = env
        .post(
            &with_redirect("/signup", &back),
            json!({"email": email, "password": PASSWORD, "code_challenge": challenge, "code_challenge_method": "s256"}),
        )
        .await;
    let id = user.assert_ok()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mail = env.last_mail(&email).await;
    env.age_flow_states(301, &[&id]).await;
    let location = click(&env, mail.link()).await;
    let q = app_redirect(&location);
    assert_eq!(q["flow"], "lateFlow1");
    exchange(&env, &q["code"], &verifier)
        .await
        .assert_error(422, "flow_state_expired");
    // The address was confirmed all the same: a password sign-in works.
    env.sign_in(&email).await;
}

/// A recovery flow also counts from the request: a reset link clicked after five minutes
/// uses up the recovery token and redirects with a code that no longer signs in.
pub async fn a_recovery_link_after_five_minutes_is_used_up(env: Env) {
    let email = env.email("laterecover");
    let id = confirmed_user(&env, &email).await;
    let (verifier, challenge) = pkce();
    let back = callback("recoverFlow1");
    env.post(
        &with_redirect("/recover", &back),
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let mail = env.last_mail(&email).await;
    env.age_flow_states(301, &[&id]).await;
    let location = click(&env, mail.link()).await;
    let q = app_redirect(&location);
    exchange(&env, &q["code"], &verifier)
        .await
        .assert_error(422, "flow_state_expired");
    // The link is spent: a second click reports it, in the query (PKCE) and the fragment.
    let again = click(&env, mail.link()).await;
    let q = app_redirect(&again);
    assert_eq!(q["error_code"], "otp_expired");
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["flow"], "recoverFlow1");
    assert_eq!(fragment(&again)["error_code"], "otp_expired");
}

/// Asks for a PKCE magic link back to `back`; returns the verifier and the mail, the
/// `nth` to `email`.
async fn magic_link(env: &Env, email: &str, back: &str, nth: usize) -> (String, Mail) {
    let (verifier, challenge) = pkce();
    env.post(
        &with_redirect("/otp", back),
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    (verifier, env.nth_mail(email, nth).await)
}

/// Only a magic link's flow counts from the moment its code is issued (the click).
pub async fn a_magic_link_counts_its_five_minutes_from_the_click(env: Env) {
    let email = env.email("magicclock");
    let session = env.sign_up(&email).await;
    let id = user_id(&session);
    let back = callback("magicFlow1");

    let (verifier, mail) = magic_link(&env, &email, &back, 1).await;
    env.age_flow_states(301, &[&id]).await;
    let location = click(&env, mail.link()).await;
    let s = exchange(&env, &app_redirect(&location)["code"], &verifier).await;
    assert_eq!(s.assert_ok()["user"]["email"], email);

    let (verifier, mail) = magic_link(&env, &email, &back, 2).await;
    let location = click(&env, mail.link()).await;
    env.age_flow_states(301, &[&id]).await;
    exchange(&env, &query(&location)["code"], &verifier)
        .await
        .assert_error(422, "flow_state_expired");
}

/// A `redirect_to` off the allow list is replaced without an error: by the `Referer` when
/// that is allowed, else by the site URL.
pub async fn a_redirect_off_the_allow_list_falls_back_to_referer_then_site(env: Env) {
    let email = env.email("fallback");
    confirmed_user(&env, &email).await;
    let evil = "https://evil.example.com/steal";
    let referer = "http://localhost:5173/from-here";
    env.send(
        Method::POST,
        &with_redirect("/recover", evil),
        None,
        Some(json!({ "email": email })),
        &[("referer", referer)],
    )
    .await
    .assert_ok();
    let mail = env.nth_mail(&email, 1).await;
    assert_eq!(query(mail.link())["redirect_to"], referer);

    env.post(&with_redirect("/recover", evil), json!({ "email": email }))
        .await
        .assert_ok();
    let mail = env.nth_mail(&email, 2).await;
    assert_eq!(query(mail.link())["redirect_to"], "http://localhost:3000");
}

/// Changes `from`'s address to `to`, with PKCE when `challenge` is given.
async fn change_email(env: &Env, token: &str, to: &str, challenge: Option<&str>, back: &str) {
    let mut body = json!({ "email": to });
    let mut path = "/user".to_owned();
    if let Some(challenge) = challenge {
        body["code_challenge"] = json!(challenge);
        body["code_challenge_method"] = json!("s256");
        path = with_redirect("/user", back);
    }
    env.put_auth(&path, token, body).await.assert_ok();
}

/// Email change with a code challenge and a redirect: the first of the two links (secure
/// email change) answers with a message, the second with a code for the app's flow. No
/// session is minted unless the app exchanges the code.
pub async fn email_change_with_pkce_ends_in_a_code_not_a_session(env: Env) {
    let from = env.email("changefrom");
    let to = env.email("changeto");
    confirmed_user(&env, &from).await;
    let session = env.sign_in(&from).await;
    let token = access(&session);
    let (verifier, challenge) = pkce();
    let back = callback("changeFlow1");
    change_email(&env, &token, &to, Some(&challenge), &back).await;

    let current = env.last_mail(&from).await;
    let new = env.last_mail(&to).await;
    assert!(query(current.link())["token"].starts_with("pkce_"));
    assert_eq!(query(new.link())["redirect_to"], back);

    let first = click(&env, current.link()).await;
    let q = app_redirect(&first);
    assert_eq!(q["flow"], "changeFlow1");
    assert!(
        q["message"].starts_with("Confirmation link accepted"),
        "{first}"
    );
    assert!(!q.contains_key("code"));
    let f = fragment(&first);
    assert!(f.contains_key("message") && f.contains_key("sb"), "{first}");

    let second = click(&env, new.link()).await;
    let q = app_redirect(&second);
    assert_eq!(q["flow"], "changeFlow1");
    assert!(!fragment(&second).contains_key("access_token"), "{second}");
    let user = env.get("/user", Some(&token)).await;
    assert_eq!(user.assert_ok()["email"], to);
    // The code is for the app's verifier only.
    let s = exchange(&env, &q["code"], &verifier).await;
    assert_eq!(s.assert_ok()["user"]["email"], to);
}

/// Without a code challenge (what Tessera sent before), the second link signs the browser
/// in at the site URL: access and refresh token in its address bar.
pub async fn email_change_without_pkce_puts_a_session_in_the_browser(env: Env) {
    let from = env.email("implicitfrom");
    let to = env.email("implicitto");
    confirmed_user(&env, &from).await;
    let session = env.sign_in(&from).await;
    change_email(&env, &access(&session), &to, None, "").await;
    let current = env.last_mail(&from).await;
    let new = env.last_mail(&to).await;
    let first = click(&env, current.link()).await;
    assert!(first.starts_with("http://localhost:3000"), "{first}");
    assert!(fragment(&first).contains_key("message"));
    let second = click(&env, new.link()).await;
    assert!(second.starts_with("http://localhost:3000"), "{second}");
    let f = fragment(&second);
    assert!(
        f.contains_key("access_token") && f.contains_key("refresh_token"),
        "{second}"
    );
    assert_eq!(f["type"], "email_change");
}
