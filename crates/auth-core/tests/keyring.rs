//! The engine on the OS keyring for real: the Secret Service (gnome-keyring) on Linux. The
//! store alone, on every platform the tests run on, is in `tests/os-store`.
//!
//! These need a running, unlocked Secret Service, so they are `#[ignore]`d in a plain
//! `cargo test`; `scripts/test` runs them inside `scripts/with-keyring` (a private D-Bus
//! session with gnome-keyring) with `--ignored`.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use auth_core::{AuthClient, AuthEvent, KeyringStore, Password, SecretStore, SignOutScope};
use support::*;

fn service() -> String {
    format!("tessera-test-{}", uuid::Uuid::new_v4())
}

#[tokio::test]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn the_engine_keeps_its_session_in_the_keyring() {
    let env = Env::start().await;
    env.create_user("keyring@example.com").await;
    let svc = service();
    let mut cfg = env.config();
    cfg.profile = "device-a".into();
    let client = AuthClient::new(
        cfg.clone(),
        Arc::new(KeyringStore::for_platform(svc.clone())),
    )
    .unwrap();
    client.start().await.unwrap();
    let view = client
        .sign_in_with_password("keyring@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
    drop(client);

    // A second "process" (new store object, same service) restores it from the keyring.
    let again = AuthClient::new(
        cfg.clone(),
        Arc::new(KeyringStore::for_platform(svc.clone())),
    )
    .unwrap();
    let mut events = Events(again.subscribe());
    let restored = again.start().await.unwrap().unwrap();
    assert_eq!(restored.session_id, view.session_id);
    assert_eq!(
        events
            .expect(AuthEvent::InitialSession)
            .await
            .session
            .unwrap()
            .session_id,
        view.session_id
    );
    again.sign_out(SignOutScope::Local).await.unwrap();
    let raw = KeyringStore::new(svc);
    assert_eq!(
        raw.load(&format!("device-a@{}.session", cfg.issuer()))
            .unwrap(),
        None,
        "signed out: nothing left in the keyring"
    );
}
