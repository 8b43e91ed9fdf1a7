//! The engine against a server that signs with an asymmetric key (ES256, as current
//! Supabase projects) and against Supabase's non-JWT publishable key: tokens and API keys
//! are opaque to the engine, which never assumes HS256 nor a JWT `apikey`.
#![allow(clippy::unwrap_used)]

mod support;

use auth_core::{AuthEvent, SignOutScope};
use gotrue_emulator::Config;
use serde_json::Value;
use support::*;

/// The JOSE header of a compact JWT.
fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_engine_works_with_es256_tokens() {
    let env = Env::with(Config::for_tests_es256()).await;
    let kid = env.emu.signing_kid().unwrap().to_owned();
    let user_id = env.create_user("es256@example.com").await;
    let mut d = env.device().await;

    let view = d.sign_in("es256@example.com").await;
    d.events.expect(AuthEvent::SignedIn).await;
    let token = d.client.access_token().await.unwrap();
    let h = header(token.expose_secret());
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["kid"], kid.as_str());
    // The claims were read from the ES256 token: the server's session id, aal1.
    let sessions = env.server_sessions(&user_id).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], view.session_id.as_str());
    assert_eq!(view.aal, "aal1");

    let refreshed = d.client.refresh().await.unwrap();
    assert_eq!(refreshed.session_id, view.session_id);
    // (ES256 signatures are deterministic: a token refreshed within the same second can be
    // byte-identical to the old one, so the server's count tells that it happened.)
    assert_eq!(env.stats().await["refresh_token_grants"], 1);
    let new_token = d.client.access_token().await.unwrap();
    assert_eq!(header(new_token.expose_secret())["alg"], "ES256");

    let user = d.client.user().await.unwrap();
    assert_eq!(user.id, user_id);
    assert_eq!(user.email, "es256@example.com");

    let out = d.client.sign_out(SignOutScope::Global).await.unwrap();
    assert!(
        out.local_done && out.server_confirmed && !out.queued,
        "{out:?}"
    );
    assert!(env.server_sessions(&user_id).await.is_empty());
    d.events.expect(AuthEvent::SignedOut).await;
}

/// The embedded server, whose gateway check refuses any key but its own.
async fn embedded_env() -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        bcrypt_cost: 4,
        ..Config::embedded(
            gotrue_emulator::new_jwt_secret(),
            dir.path().join("emulator.sqlite"),
            0,
        )
    };
    (Env::with(config).await, dir)
}

#[tokio::test]
async fn the_engine_works_with_a_publishable_key() {
    let (env, _dir) = embedded_env().await;
    let key = env.emu.publishable_key().unwrap().to_owned();
    assert!(key.starts_with("sb_publishable_"));
    let mut cfg = env.config();
    cfg.anon_key = key;
    let mut d = env
        .device_with(
            std::sync::Arc::new(auth_core::MemoryStore::new()),
            cfg.clone(),
        )
        .await;

    let outcome = d
        .client
        .sign_up("pk@example.com", &auth_core::Password::new(PASSWORD))
        .await
        .unwrap();
    assert!(
        matches!(outcome, auth_core::SignUpOutcome::SignedIn { .. }),
        "{outcome:?}"
    );
    d.events.expect(AuthEvent::SignedIn).await;
    d.client.sign_out(SignOutScope::Local).await.unwrap();

    let view = d.sign_in("pk@example.com").await;
    let refreshed = d.client.refresh().await.unwrap();
    assert_eq!(refreshed.session_id, view.session_id);
    assert_eq!(d.client.user().await.unwrap().email, "pk@example.com");

    // The control: the public demo publishable key is not this server's.
    cfg.anon_key = gotrue_emulator::DEMO_PUBLISHABLE_KEY.to_owned();
    let stranger = env
        .device_with(std::sync::Arc::new(auth_core::MemoryStore::new()), cfg)
        .await;
    let refused = stranger
        .client
        .sign_in_with_password("pk@example.com", &auth_core::Password::new(PASSWORD))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, auth_core::AuthError::Api { status: 401, .. }),
        "{refused:?}"
    );
}
