//! A stored session belongs to the server that issued it: an engine pointed at another
//! server (a second project, `authctl` with its default URL) neither sends it nor deletes
//! it.
#![allow(clippy::unwrap_used)]

mod support;

use auth_core::{AuthEvent, SignOutScope};
use support::*;

#[tokio::test]
async fn a_session_is_neither_sent_to_nor_deleted_by_another_server() {
    let home = Env::start().await;
    let other = Env::start().await;
    let ada = home.create_user("ada@example.com").await;
    other.create_user("ada@example.com").await;
    let mut a = home.device().await;
    let view = a.sign_in("ada@example.com").await;
    a.client.shutdown();

    // The same profile and store, pointed at another server.
    let mut b = other.device_with(a.store.clone(), other.config()).await;
    assert_eq!(
        b.events.expect(AuthEvent::InitialSession).await.session,
        None,
        "signed out for this server"
    );
    assert_eq!(
        b.client.access_token().await.unwrap_err().code(),
        "not_signed_in"
    );
    assert!(b.client.refresh().await.is_err());
    assert!(b.client.validate().await.unwrap().is_none());
    let stats = other.stats().await;
    assert_eq!(stats["refresh_token_grants"], 0, "{stats}");
    assert_eq!(stats["user_requests"], 0, "{stats}");

    // A session of its own there, and a sign-out of it: the home session is untouched.
    b.sign_in("ada@example.com").await;
    b.client.sign_out(SignOutScope::Local).await.unwrap();
    b.client.flush_outbox().await.unwrap();
    b.client.shutdown();

    let mut back = home.device_with(a.store.clone(), home.config()).await;
    let restored = back.events.expect(AuthEvent::InitialSession).await.session;
    assert_eq!(restored.unwrap().session_id, view.session_id);
    back.client.refresh().await.unwrap();
    assert_eq!(home.server_sessions(&ada).await.len(), 1);
}

#[test]
fn the_issuer_is_the_normalised_server_url() {
    let cfg = |url: &str| auth_core::AuthConfig::new(url, "k").issuer();
    assert_eq!(
        cfg("HTTPS://Abc.Supabase.co:443/auth/v1/"),
        "https://abc.supabase.co/auth/v1"
    );
    assert_eq!(cfg("http://127.0.0.1:9999"), "http://127.0.0.1:9999");
    assert_ne!(cfg("http://127.0.0.1:9999"), cfg("http://127.0.0.1:9998"));
}

#[test]
fn a_server_id_names_the_server_whatever_its_port_and_debug_hides_the_key() {
    let mut a = auth_core::AuthConfig::new("http://127.0.0.1:54329", "install-key-123");
    let mut b = auth_core::AuthConfig::new("http://127.0.0.1:40001", "install-key-123");
    a.server_id = Some("tessera-embedded".into());
    b.server_id = Some("tessera-embedded".into());
    assert_eq!(a.issuer(), b.issuer());
    assert!(!format!("{a:?}").contains("install-key-123"));
}

#[tokio::test]
async fn the_embedded_server_on_another_port_still_has_its_session() {
    let first = Env::start().await;
    let second = Env::start().await; // the same server, restarted on another port
    first.create_user("ada@example.com").await;
    let mut cfg = first.config();
    cfg.server_id = Some("tessera-embedded".into());
    let mut a = first.device_with(Default::default(), cfg).await;
    let view = a.sign_in("ada@example.com").await;
    a.client.shutdown();
    let mut cfg = second.config();
    cfg.server_id = Some("tessera-embedded".into());
    let mut b = second.device_with(a.store.clone(), cfg).await;
    let restored = b.events.expect(AuthEvent::InitialSession).await.session;
    assert_eq!(restored.unwrap().session_id, view.session_id);
}
