//! The OS credential store for real, through the engine's [`KeyringStore`]: the Secret
//! Service on Linux (inside `scripts/with-keyring`), Credential Manager on Windows (Wine's,
//! in `scripts/windows-tests`). They need that store running, so they are `#[ignore]`d in
//! a plain `cargo test`.
#![allow(clippy::unwrap_used)]

use auth_core::store::WINDOWS_MAX_ENTRY;
use auth_core::{ChunkedStore, KeyringStore, SecretStore};

fn service() -> String {
    format!("tessera-test-{}", uuid::Uuid::new_v4())
}

#[test]
#[ignore = "needs the OS credential store: run inside scripts/with-keyring or under Wine"]
fn round_trip_replace_and_missing_entries() {
    let store = KeyringStore::new(service());
    assert_eq!(store.load("nothing").unwrap(), None);
    store.save("k", b"secret value").unwrap();
    assert_eq!(store.load("k").unwrap(), Some(b"secret value".to_vec()));
    store.save("k", b"replaced").unwrap();
    assert_eq!(store.load("k").unwrap(), Some(b"replaced".to_vec()));
    store.delete("k").unwrap();
    assert_eq!(store.load("k").unwrap(), None);
    store.delete("k").unwrap(); // deleting twice is fine
}

#[test]
#[ignore = "needs the OS credential store: run inside scripts/with-keyring or under Wine"]
fn large_values_are_split_over_several_entries() {
    let store = ChunkedStore::new(KeyringStore::new(service()), 512);
    let value: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    store.save("big", &value).unwrap();
    assert_eq!(store.load("big").unwrap(), Some(value));
    store.delete("big").unwrap();
    assert_eq!(store.load("big").unwrap(), None);
}

#[test]
#[ignore = "needs the OS credential store: run inside scripts/with-keyring or under Wine"]
fn the_platform_store_takes_a_session_over_the_platforms_entry_limit() {
    // A session with a big user object: twice Credential Manager's limit per blob.
    let value: Vec<u8> = (0..2 * WINDOWS_MAX_ENTRY as u32 + 17)
        .map(|i| (i * 13 % 256) as u8)
        .collect();
    let svc = service();
    let store = KeyringStore::for_platform(svc.clone());
    store.save("session", &value).unwrap();
    assert_eq!(store.load("session").unwrap(), Some(value.clone()));
    if cfg!(windows) {
        // The limit is real: the same value in one entry is refused by the store itself.
        let raw = KeyringStore::new(svc.clone());
        assert!(
            raw.save("whole", &value).is_err(),
            "Credential Manager took it whole"
        );
        assert_eq!(raw.load("whole").unwrap(), None);
    }
    store.delete("session").unwrap();
    assert_eq!(store.load("session").unwrap(), None);
}
