//! What is stored and what leaks: no secret in events, `Debug` or errors; a corrupt or
//! undecryptable stored session is reported and removed.

use std::sync::Arc;

use super::support::*;
use auth_core::{AuthClient, AuthEvent, MemoryStore, Password, SignOutScope};
use serde_json::{Value, json};

#[tokio::test]
async fn secrets_never_reach_events_debug_or_errors() {
    let env = Env::start().await;
    env.create_user("leak@example.com").await;
    let mut d = env.device().await;
    d.sign_in("leak@example.com").await;
    d.advance(3500);
    d.client.refresh().await.unwrap();
    let token = d.client.access_token().await.unwrap();
    let stored = d.store.dump();
    let session_blob = stored
        .iter()
        .find(|(k, _)| k.ends_with(".session"))
        .unwrap()
        .1
        .clone();
    let blob: Value = serde_json::from_slice(&session_blob).unwrap();
    let refresh = blob["data"]["refresh_token"].as_str().unwrap().to_owned();
    let access = token.expose_secret().to_owned();

    env.fault(json!({"path": "/token", "status": 503, "times": 1}))
        .await;
    d.advance(3500);
    let err = d.client.refresh().await.unwrap_err();
    d.client.sign_out(SignOutScope::Local).await.unwrap();
    let events = d.events.drain();
    let mut texts: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    texts.push(format!("{:?}", d.client));
    texts.push(format!("{token:?} {token}"));
    texts.push(format!("{err:?} {err}"));
    texts.push(format!(
        "{:?}",
        d.client.pending_revocations().await.unwrap()
    ));
    for text in texts {
        assert!(!text.contains(&access), "access token leaked: {text}");
        assert!(!text.contains(&refresh), "refresh token leaked: {text}");
    }
}

/// The start fails with `storage_corrupt`, reported as an `AUTH_ERROR` event, and the
/// session restored at start is none.
async fn starts_signed_out_reporting_corruption(client: &AuthClient) {
    let mut events = Events(client.subscribe());
    let err = client.start().await.unwrap_err();
    assert_eq!(err.code(), "storage_corrupt");
    let reported = events.expect(AuthEvent::AuthError).await.error.unwrap();
    assert_eq!(reported.code, "storage_corrupt");
    assert_eq!(events.expect(AuthEvent::InitialSession).await.session, None);
}

#[tokio::test]
async fn a_corrupt_stored_session_is_reported_and_removed() {
    let env = Env::start().await;
    let store = Arc::new(MemoryStore::new());
    let key = format!("default@{}.session", env.config().issuer());
    auth_core::SecretStore::save(store.as_ref(), &key, b"{not json").unwrap();
    let client = AuthClient::new(env.config(), store.clone()).unwrap();
    starts_signed_out_reporting_corruption(&client).await;
    assert!(store.dump().is_empty());
}

/// What a store says of a value it can no longer decrypt (Android: a SharedPreferences
/// file restored onto a new phone, whose Keystore key did not come with it): the store
/// itself answers `Corrupt`, until the value is deleted.
#[tokio::test]
async fn a_value_the_store_cannot_decrypt_is_removed_and_the_user_signed_out() {
    use auth_core::SecretStore as _;
    #[derive(Debug, Default)]
    struct Undecryptable {
        mem: MemoryStore,
    }
    impl auth_core::SecretStore for Undecryptable {
        fn load(&self, key: &str) -> Result<Option<Vec<u8>>, auth_core::StoreError> {
            match self.mem.load(key)? {
                Some(v) if v == b"sealed with a key this device lacks" => Err(
                    auth_core::StoreError::Corrupt("the value cannot be decrypted".into()),
                ),
                other => Ok(other),
            }
        }
        fn save(&self, key: &str, value: &[u8]) -> Result<(), auth_core::StoreError> {
            self.mem.save(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), auth_core::StoreError> {
            self.mem.delete(key)
        }
    }
    let env = Env::start().await;
    env.create_user("restored@example.com").await;
    let store = Arc::new(Undecryptable::default());
    let key = format!("default@{}.session", env.config().issuer());
    store
        .mem
        .save(&key, b"sealed with a key this device lacks")
        .unwrap();
    let client = AuthClient::new(env.config(), store.clone()).unwrap();
    starts_signed_out_reporting_corruption(&client).await;
    assert!(store.mem.dump().is_empty(), "the unreadable value is gone");
    // The user signs in again on this device, and that session is kept.
    client
        .sign_in_with_password("restored@example.com", &Password::new(PASSWORD))
        .await
        .unwrap();
    assert!(store.mem.load(&key).unwrap().is_some());
}
