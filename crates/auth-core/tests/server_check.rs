//! Connecting a server (`auth_core::server::probe`) against the emulator over HTTP: the API
//! root is found from what a person types, and each way it can be wrong is named.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use auth_core::server::{ApiKeyKind, probe};
use gotrue_emulator::{Config, Emulator};

const TIMEOUT: Duration = Duration::from_secs(5);

fn code<T: std::fmt::Debug>(r: Result<T, auth_core::AuthError>) -> String {
    r.unwrap_err().code().to_owned()
}

#[tokio::test]
async fn a_gotrue_is_found_and_what_it_offers_is_read() {
    let emu = Emulator::start(Config {
        disable_signup: true,
        autoconfirm: false,
        anonymous_users: false,
        ..tessera_test_support::config_with_codes()
    })
    .await
    .unwrap();
    // The bare root, as typed: `/auth/v1` is tried first, then the root itself.
    let info = probe(emu.url(), emu.anon_key(), TIMEOUT).await.unwrap();
    assert_eq!(info.key_kind, ApiKeyKind::LegacyAnon);
    assert!(info.url.starts_with(emu.url()), "{}", info.url);
    assert!(!info.signup_enabled && info.email_confirmation && !info.anonymous_enabled);
    assert!(info.email_enabled);
    assert!(
        info.providers.contains(&"github".to_owned()),
        "{:?}",
        info.providers
    );
    assert!(
        info.version.starts_with("gotrue-emulator"),
        "{}",
        info.version
    );
    // With `/auth/v1` typed, as a Supabase project URL is.
    let with_path = format!("{}/auth/v1/", emu.url());
    let info = probe(&with_path, emu.anon_key(), TIMEOUT).await.unwrap();
    assert_eq!(info.url, format!("{}/auth/v1", emu.url()));
}

#[tokio::test]
async fn each_way_to_be_wrong_is_named() {
    let emu = Emulator::start(Config::for_tests()).await.unwrap();
    // A secret key is refused before anything is sent.
    assert_eq!(
        code(probe(emu.url(), emu.service_role_key(), TIMEOUT).await),
        "secret_api_key"
    );
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_eq!(
        code(probe(&format!("http://127.0.0.1:{port}"), emu.anon_key(), TIMEOUT).await),
        "server_unreachable"
    );
    // Something answers, but it is not GoTrue (another service of the project).
    assert_eq!(
        code(probe(&format!("{}/rest/v1", emu.url()), emu.anon_key(), TIMEOUT).await),
        "not_gotrue"
    );
    // Plain http off this computer.
    assert_eq!(
        code(probe("http://example.com", emu.anon_key(), TIMEOUT).await),
        "insecure_url"
    );
}

#[tokio::test]
async fn a_key_the_gateway_refuses_is_named() {
    // The embedded mode checks keys as Supabase's gateway does.
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(Config::embedded(
        gotrue_emulator::new_jwt_secret(),
        dir.path().join("db.sqlite"),
        0,
    ))
    .await
    .unwrap();
    assert!(probe(emu.url(), emu.anon_key(), TIMEOUT).await.is_ok());
    // The public demo anon key: a JWT with role anon, signed with another secret.
    assert_eq!(
        code(probe(emu.url(), auth_core::DEMO_ANON_KEY, TIMEOUT).await),
        "invalid_api_key"
    );
}
