//! The Supabase scenarios that apply to every backend, run against both: GoTrue (the
//! emulator) and SuperTokens (header mode, the SuperTokens emulator). Sign-in and restart,
//! refresh coalescing, each sign-out scope, offline sign-out, revocation elsewhere; then
//! what only SuperTokens has (theft detection, blacklisting).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use auth_core::{
    AuthConfig, AuthError, AuthEvent, BackendKind, MemoryStore, SignOutReason, SignOutScope,
};
use serde_json::{Value, json};
use support::*;

enum Server {
    GoTrue(Env),
    SuperTokens {
        handle: supertokens_emulator::Handle,
        http: reqwest::Client,
        helper: Env, // for device_with (its emulator is unused)
    },
}

impl Server {
    async fn start(kind: BackendKind) -> Self {
        Self::start_with(kind, true).await
    }

    async fn start_with(kind: BackendKind, check_database: bool) -> Self {
        match kind {
            BackendKind::GoTrue => Self::GoTrue(Env::start().await),
            BackendKind::SuperTokens => Self::SuperTokens {
                handle: supertokens_emulator::start(supertokens_emulator::Config {
                    check_database,
                    ..supertokens_emulator::Config::for_tests()
                })
                .await
                .unwrap(),
                http: reqwest::Client::new(),
                helper: Env::start().await,
            },
        }
    }

    fn env(&self) -> &Env {
        match self {
            Self::GoTrue(env) => env,
            Self::SuperTokens { helper, .. } => helper,
        }
    }

    fn config(&self) -> AuthConfig {
        let mut cfg = self.env().config();
        if let Self::SuperTokens { handle, .. } = self {
            cfg.url = handle.url();
            cfg.backend = BackendKind::SuperTokens;
        }
        cfg
    }

    async fn device(&self) -> Device {
        self.env()
            .device_with(Arc::new(MemoryStore::new()), self.config())
            .await
    }

    async fn create_user(&self, email: &str) {
        match self {
            Self::GoTrue(env) => {
                env.create_user(email).await;
            }
            Self::SuperTokens { handle, http, .. } => {
                let r = http
                    .post(format!("{}/_emulator/users", handle.url()))
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        }
    }

    async fn get(&self, path: &str) -> Value {
        let (http, url) = match self {
            Self::GoTrue(env) => (&env.http, env.url(path)),
            Self::SuperTokens { handle, http, .. } => (http, format!("{}{path}", handle.url())),
        };
        http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The sessions the server holds for the user.
    async fn sessions(&self, user_id: &str) -> usize {
        self.get(&format!("/_emulator/sessions?user_id={user_id}"))
            .await
            .as_array()
            .unwrap()
            .len()
    }

    async fn refreshes(&self) -> u64 {
        let stats = self.get("/_emulator/stats").await;
        match self {
            Self::GoTrue(_) => stats["refresh_token_grants"].as_u64().unwrap(),
            Self::SuperTokens { .. } => stats["refreshes"].as_u64().unwrap(),
        }
    }

    /// Ends every session of the user from elsewhere (another device's global sign-out;
    /// SuperTokens: the backend's `revokeAllSessionsForUser`).
    async fn revoke_all(&self, user_id: &str, email: &str) {
        match self {
            Self::GoTrue(_) => {
                let mut other = self.device().await;
                other.sign_in(email).await;
                other.client.sign_out(SignOutScope::Global).await.unwrap();
            }
            Self::SuperTokens { handle, http, .. } => {
                http.post(format!("{}/_emulator/revoke-user", handle.url()))
                    .json(&json!({ "user_id": user_id }))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

async fn sign_in_restores_after_a_restart(kind: BackendKind) {
    let server = Server::start(kind).await;
    server.create_user("restart@example.com").await;
    let mut d = server.device().await;
    let view = d.sign_in("restart@example.com").await;
    assert_eq!(view.user.email, "restart@example.com");
    assert!(
        !view.session_id.is_empty(),
        "session id from the access token"
    );
    d.events.expect(AuthEvent::SignedIn).await;
    let mut again = server
        .env()
        .device_with(d.store.clone(), server.config())
        .await;
    let initial = again.events.expect(AuthEvent::InitialSession).await;
    assert_eq!(initial.session.unwrap().session_id, view.session_id);
    assert!(again.client.validate().await.unwrap().is_some());
    assert_eq!(server.sessions(&view.user.id).await, 1);
}

async fn concurrent_callers_share_one_refresh(kind: BackendKind) {
    let server = Server::start(kind).await;
    server.create_user("many@example.com").await;
    let mut d = server.device().await;
    d.sign_in("many@example.com").await;
    let before = server.refreshes().await;
    d.advance(3600);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = d.client.clone();
            tokio::spawn(async move { c.access_token().await })
        })
        .collect();
    let mut tokens = HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap().expose_secret().to_owned());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(server.refreshes().await - before, 1);
    assert_eq!(
        d.client.metrics().refresh_requests.load(Ordering::SeqCst),
        1
    );
    // The refreshed session still works at the server.
    assert!(d.client.validate().await.unwrap().is_some());
}

async fn each_sign_out_scope(kind: BackendKind) {
    let server = Server::start(kind).await;
    server.create_user("scopes@example.com").await;
    let mut here = server.device().await;
    let mut there = server.device().await;
    let user = here.sign_in("scopes@example.com").await.user.id;
    there.sign_in("scopes@example.com").await;
    assert_eq!(server.sessions(&user).await, 2);

    let out = here.client.sign_out(SignOutScope::Others).await.unwrap();
    assert!(out.server_confirmed && !out.local_done);
    assert_eq!(server.sessions(&user).await, 1);
    assert!(here.client.validate().await.unwrap().is_some());
    assert_eq!(there.client.validate().await.unwrap(), None);
    let ended = there.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(ended.reason, Some(SignOutReason::Revoked));

    let out = here.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(out.server_confirmed && out.local_done);
    assert_eq!(server.sessions(&user).await, 0);

    here.sign_in("scopes@example.com").await;
    there.sign_in("scopes@example.com").await;
    let out = here.client.sign_out(SignOutScope::Global).await.unwrap();
    assert!(out.server_confirmed && out.local_done);
    assert_eq!(server.sessions(&user).await, 0);
    assert_eq!(there.client.validate().await.unwrap(), None);
}

async fn offline_sign_out_is_immediate_and_delivered_later(kind: BackendKind) {
    let server = Server::start(kind).await;
    server.create_user("offline@example.com").await;
    let mut d = server.device().await;
    let user = d.sign_in("offline@example.com").await.user.id;
    // The same server, unreachable: the engine's backend talks to a closed port.
    let mut dead = server.config();
    dead.url = "http://127.0.0.1:9".into();
    let offline = auth_core::AuthClient::builder(server.config(), d.store.clone())
        .backend(auth_core::backend::connect(&dead).unwrap())
        .build()
        .unwrap();
    let mut events = Events(offline.subscribe());
    offline.start().await.unwrap();
    let out = offline.sign_out(SignOutScope::Local).await.unwrap();
    assert!(out.local_done && out.queued && !out.server_confirmed);
    events.expect(AuthEvent::SignedOut).await;
    assert_eq!(server.sessions(&user).await, 1, "not yet revoked");
    let back = server
        .env()
        .device_with(d.store.clone(), server.config())
        .await;
    assert_eq!(back.client.flush_outbox().await.unwrap(), 0);
    assert_eq!(server.sessions(&user).await, 0);
}

async fn revocation_elsewhere_is_seen_on_validate(kind: BackendKind) {
    let server = Server::start(kind).await;
    server.create_user("revoked@example.com").await;
    let mut d = server.device().await;
    let user = d.sign_in("revoked@example.com").await.user.id;
    server.revoke_all(&user, "revoked@example.com").await;
    assert_eq!(d.client.validate().await.unwrap(), None);
    let ended = d.events.expect(AuthEvent::SignedOut).await;
    assert_eq!(ended.reason, Some(SignOutReason::Revoked));
    assert!(matches!(
        d.client.access_token().await,
        Err(AuthError::NotSignedIn)
    ));
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod gotrue {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(auth_core::BackendKind::GoTrue).await;
            })*
        }
        mod supertokens {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(auth_core::BackendKind::SuperTokens).await;
            })*
        }
    };
}

on_both!(
    sign_in_restores_after_a_restart,
    concurrent_callers_share_one_refresh,
    each_sign_out_scope,
    offline_sign_out_is_immediate_and_delivered_later,
    revocation_elsewhere_is_seen_on_validate,
);

// ------------------------------------------------------------------ SuperTokens only

#[tokio::test]
async fn supertokens_an_old_refresh_token_coming_back_revokes_the_session() {
    let server = Server::start(BackendKind::SuperTokens).await;
    server.create_user("theft@example.com").await;
    let mut d = server.device().await;
    let user = d.sign_in("theft@example.com").await.user.id;
    // Keep a copy of the first refresh token, as a thief would.
    let stolen = auth_core::RefreshToken::new(stored_refresh_token(&d));
    d.client.refresh().await.unwrap();
    d.client.validate().await.unwrap(); // first use of the new access token: rotation final
    d.client.refresh().await.unwrap();
    let err = d.client.backend().refresh(&stolen).await.unwrap_err();
    assert_eq!(err.code(), "token_theft_detected");
    assert!(err.ends_session());
    assert_eq!(server.sessions(&user).await, 0, "the session was revoked");
    // The legitimate device learns at its next check: SIGNED_OUT, revoked.
    assert_eq!(d.client.validate().await.unwrap(), None);
    assert_eq!(
        d.events.expect(AuthEvent::SignedOut).await.reason,
        Some(SignOutReason::Revoked)
    );
}

#[tokio::test]
async fn supertokens_sign_out_refreshes_first_when_the_access_token_expired() {
    let server = Server::start(BackendKind::SuperTokens).await;
    server.create_user("expired@example.com").await;
    // No background task: nothing refreshes on its own when the clock moves.
    let mut cfg = server.config();
    cfg.background = false;
    let mut d = server
        .env()
        .device_with(Arc::new(MemoryStore::new()), cfg)
        .await;
    let user = d.sign_in("expired@example.com").await.user.id;
    let before = server.refreshes().await;
    d.advance(7200); // expired by the device's clock
    let out = d.client.sign_out(SignOutScope::Local).await.unwrap();
    assert!(out.server_confirmed, "{out:?}");
    assert_eq!(
        server.refreshes().await - before,
        1,
        "refreshed, then signed out"
    );
    assert_eq!(server.sessions(&user).await, 0);
}

#[tokio::test]
async fn supertokens_without_blacklisting_a_revocation_shows_at_the_next_refresh() {
    let server = Server::start_with(BackendKind::SuperTokens, false).await;
    server.create_user("noblack@example.com").await;
    let mut d = server.device().await;
    let user = d.sign_in("noblack@example.com").await.user.id;
    server.revoke_all(&user, "noblack@example.com").await;
    // The access token alone still passes verifySession…
    assert!(d.client.validate().await.unwrap().is_some());
    // …until the refresh, which the backend refuses: UNAUTHORISED → SIGNED_OUT, revoked.
    d.advance(3600);
    assert!(d.client.access_token().await.is_err());
    assert_eq!(
        d.events.expect(AuthEvent::SignedOut).await.reason,
        Some(SignOutReason::Revoked)
    );
}

#[tokio::test]
async fn supertokens_operations_it_lacks_say_so() {
    let server = Server::start(BackendKind::SuperTokens).await;
    let d = server.device().await;
    let err = d
        .client
        .sign_in_with_otp("x@example.com")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsupported_by_backend");
    let err = d.client.sign_in_anonymously().await.unwrap_err();
    assert_eq!(err.code(), "unsupported_by_backend");
    let err = d
        .client
        .sign_in_with_password(
            "nobody@example.com",
            &auth_core::Password::new("wrong-1234"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_credentials");
}

/// The refresh token the device stored (tests only: reads the in-memory store).
fn stored_refresh_token(d: &Device) -> String {
    let raw = d
        .store
        .dump()
        .into_iter()
        .find(|(k, _)| k.starts_with("default@") && k.ends_with(".session"))
        .map(|(_, v)| v)
        .expect("a stored session");
    let v: Value = serde_json::from_slice(&raw).unwrap();
    v["data"]["refresh_token"]
        .as_str()
        .or_else(|| v["refresh_token"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn supertokens_a_401_without_its_json_body_is_transient() {
    let server = Server::start(BackendKind::SuperTokens).await;
    server.create_user("portal@example.com").await;
    let mut cfg = server.config();
    cfg.background = false;
    let mut d = server
        .env()
        .device_with(Arc::new(MemoryStore::new()), cfg)
        .await;
    d.sign_in("portal@example.com").await;
    let Server::SuperTokens { handle, http, .. } = &server else {
        unreachable!()
    };
    // A captive portal (or a proxy) answers 401 with its own page, not SuperTokens' JSON.
    http.post(format!("{}/_emulator/captive-portal", handle.url()))
        .json(&json!({"times": 2}))
        .send()
        .await
        .unwrap();
    let err = d.client.validate().await.unwrap_err();
    assert!(!err.ends_session() && err.is_retryable(), "{err:?}");
    d.advance(7200);
    let err = d.client.refresh().await.unwrap_err();
    assert!(!err.ends_session() && err.is_retryable(), "{err:?}");
    assert!(d.client.session().is_some(), "not signed out");
    // Past the portal, the session works.
    d.advance(60);
    assert!(d.client.validate().await.unwrap().is_some());
}
