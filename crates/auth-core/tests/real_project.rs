//! What a real Supabase project does that Tessera's engine must cope with, against the
//! emulator behaving as GoTrue does there (`docs/fidelity.md`): stock templates (links, no
//! codes), PKCE flows that live five minutes from the request, email change through links,
//! a `global` sign-out whose own session is gone, a refresh token the server calls
//! malformed, factor names that must be unique, and signed-out data calls with a
//! publishable key.
#![allow(clippy::unwrap_used)]

mod support;

use auth_core::proxy::{DataProxy, ProxyConfig, ProxyRequest};
use auth_core::{AuthEvent, LinkOutcome, Password, SignOutReason, SignOutScope, UserUpdate};
use gotrue_emulator::Config;
use serde_json::{Value, json};
use support::*;

/// A project that confirms addresses by mail, with GoTrue's stock templates.
async fn confirming_project() -> Env {
    Env::with(Config {
        autoconfirm: false,
        ..Config::for_tests()
    })
    .await
}

/// Opens the newest mail to `to` like the person's browser and returns the deep link the
/// server redirects to.
async fn open_mail(env: &Env, to: &str) -> String {
    let mail = env.last_mail(to);
    assert!(mail["otp"].is_null(), "stock templates mail no code");
    let link = mail["links"][0].as_str().unwrap();
    let resp = env.http.get(link).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn email_change_links_finish_in_the_app_and_leave_no_session_behind() {
    let env = confirming_project().await;
    let user_id = env.create_user("before@example.com").await;
    let mut d = env.device().await;
    d.sign_in("before@example.com").await;
    d.client
        .update_user(UserUpdate {
            email: Some("after@example.com".into()),
            ..UserUpdate::default()
        })
        .await
        .unwrap();
    d.events.drain();

    // The current address's link: half of the change, nothing else happens.
    let first = open_mail(&env, "before@example.com").await;
    assert!(first.starts_with("tessera://auth/callback?"), "{first}");
    let outcome = d.client.handle_callback(&first).await.unwrap();
    assert_eq!(
        outcome,
        LinkOutcome::EmailChangeWaiting {
            email: "after@example.com".into()
        }
    );
    assert_eq!(d.client.session().unwrap().user.email, "before@example.com");

    // The new address's link: the change is done, in the app, and no browser signed in.
    let second = open_mail(&env, "after@example.com").await;
    assert!(!second.contains("access_token"), "{second}");
    let outcome = d.client.handle_callback(&second).await.unwrap();
    assert_eq!(
        outcome,
        LinkOutcome::EmailChanged {
            email: "after@example.com".into()
        }
    );
    d.events.expect(AuthEvent::UserUpdated).await;
    assert_eq!(d.client.session().unwrap().user.email, "after@example.com");
    wait_server_sessions(&env, &user_id, 1, "only this device's session lives").await;
}

#[tokio::test]
async fn a_confirmation_link_after_five_minutes_says_confirmed_sign_in() {
    let env = confirming_project().await;
    let d = env.device().await;
    d.client
        .sign_up("late@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
    env.advance_server(301);
    let link = open_mail(&env, "late@example.com").await;
    let outcome = d.client.handle_callback(&link).await.unwrap();
    assert_eq!(
        outcome,
        LinkOutcome::EmailConfirmed {
            email: "late@example.com".into()
        }
    );
    assert!(d.client.session().is_none());
    d.client
        .sign_in_with_password("late@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reset_link_after_five_minutes_says_send_a_new_one() {
    let env = confirming_project().await;
    env.create_user("forgot@example.com").await;
    let d = env.device().await;
    d.client
        .reset_password_for_email("forgot@example.com")
        .await
        .unwrap();
    env.advance_server(301);
    let link = open_mail(&env, "forgot@example.com").await;
    let err = d.client.handle_callback(&link).await.unwrap_err();
    assert_eq!(err.code(), "recovery_link_expired");
    assert!(err.to_string().contains("send a new one"), "{err}");
    // A new link, opened in time, works.
    d.client
        .reset_password_for_email("forgot@example.com")
        .await
        .unwrap();
    let link = open_mail(&env, "forgot@example.com").await;
    assert!(matches!(
        d.client.handle_callback(&link).await.unwrap(),
        LinkOutcome::SignedIn { .. }
    ));
}

/// Ends the device's session at the server behind its back ("Your devices" on another
/// device, an admin).
async fn end_at_the_server(env: &Env, device: &Device) {
    let token = device.client.access_token().await.unwrap();
    let r = env
        .http
        .post(env.url("/logout?scope=local"))
        .header("apikey", env.emu.anon_key())
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

#[tokio::test]
async fn a_global_sign_out_whose_own_session_is_gone_claims_nothing() {
    let env = Env::start().await;
    let user_id = env.create_user("gone@example.com").await;
    let mut here = env.device().await;
    let mut elsewhere = env.device().await;
    here.sign_in("gone@example.com").await;
    elsewhere.sign_in("gone@example.com").await;
    end_at_the_server(&env, &here).await;

    let outcome = here.client.sign_out(SignOutScope::Global).await.unwrap();
    assert!(outcome.local_done);
    assert!(!outcome.server_confirmed, "{outcome:?}");
    assert!(!outcome.queued);
    assert_eq!(
        outcome.server_not_done.map(|e| e.code).as_deref(),
        Some("session_already_ended")
    );
    // The other device was not signed out, and nobody said it was.
    wait_server_sessions(&env, &user_id, 1, "the other session lives").await;
    assert!(elsewhere.client.session().is_some());
}

#[tokio::test]
async fn an_others_sign_out_whose_own_session_is_gone_says_so() {
    let env = Env::start().await;
    let user_id = env.create_user("others@example.com").await;
    let mut here = env.device().await;
    let mut elsewhere = env.device().await;
    here.sign_in("others@example.com").await;
    elsewhere.sign_in("others@example.com").await;
    end_at_the_server(&env, &here).await;
    let outcome = here.client.sign_out(SignOutScope::Others).await.unwrap();
    assert!(outcome.local_done, "the server says this session is gone");
    assert!(!outcome.server_confirmed);
    assert_eq!(
        outcome.server_not_done.map(|e| e.code).as_deref(),
        Some("session_already_ended")
    );
    assert!(here.client.session().is_none());
    wait_server_sessions(&env, &user_id, 1, "the other session lives").await;
}

#[tokio::test]
async fn a_refresh_token_the_server_calls_malformed_ends_the_session() {
    let env = Env::start().await;
    env.create_user("malformed@example.com").await;
    let mut d = env.device().await;
    d.sign_in("malformed@example.com").await;
    env.fault(json!({
        "path": "/token",
        "status": 400,
        "body": {"code": 400, "error_code": "validation_failed", "msg": "Refresh token is not valid"},
        "times": 100
    }))
    .await;
    let err = d.client.refresh().await.unwrap_err();
    assert_eq!(err.code(), "validation_failed");
    let out = d.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(out.reason, Some(SignOutReason::RefreshFailed));
    assert!(d.client.session().is_none(), "not retried forever");
}

#[tokio::test]
async fn a_second_authenticator_gets_a_name_of_its_own() {
    let env = Env::start().await;
    env.create_user("factors@example.com").await;
    let mut d = env.device().await;
    d.sign_in("factors@example.com").await;
    // An abandoned enrolment, then another: GoTrue refuses a name in use.
    let first = d.client.mfa_enroll(None).await.unwrap();
    let second = d.client.mfa_enroll(None).await.unwrap();
    assert_eq!(first.friendly_name, "Authenticator app");
    assert_eq!(second.friendly_name, "Authenticator app 2");
    let named = d.client.mfa_enroll(Some("Phone")).await.unwrap();
    assert_eq!(named.friendly_name, "Phone");
}

fn call(path: &str) -> ProxyRequest {
    ProxyRequest {
        method: "POST".into(),
        path_and_query: path.into(),
        headers: vec![],
        body: b"{}".to_vec(),
    }
}

fn body(r: &auth_core::proxy::ProxyResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn signed_out_data_calls_with_a_publishable_key_send_it_as_the_api_key_only() {
    let env = Env::start().await;
    let mut cfg = env.config();
    cfg.anon_key = env.emu.publishable_key().unwrap().to_owned();
    let d = env
        .device_with(std::sync::Arc::new(auth_core::MemoryStore::new()), cfg)
        .await;
    let proxy = DataProxy::new(d.client.clone(), ProxyConfig::default()).unwrap();
    // A function that reads the key itself (verify_jwt off) answers the anon role.
    let r = proxy.handle(call("/functions/v1/hello")).await;
    assert_eq!(r.status, 200, "{:?}", body(&r));
    assert_eq!(body(&r)["hello"], "anon");
    // One behind the JWT check gets no bearer to refuse as malformed: it asks for one.
    let r = proxy.handle(call("/functions/v1/whoami")).await;
    assert_eq!(r.status, 401);
    assert_eq!(body(&r)["message"], "Missing authorization header");
    // REST: the gateway reads the key as the anon role, which PostgREST then judges (the
    // devices function is the signed-in user's only).
    let r = proxy
        .handle(call("/rest/v1/rpc/tessera_list_sessions"))
        .await;
    assert_eq!(body(&r)["code"], "42501", "{:?}", body(&r));
}
