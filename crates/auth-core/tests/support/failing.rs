//! A store that fails on demand, and engines on it with a manual clock: for the tests of
//! what the engine does when the keyring, the lock folder or the server misbehaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use auth_core::{
    AuthClient, AuthConfig, Clock, ManualClock, MemoryStore, Password, SecretStore, StoreError,
};

use super::{Env, Events, PASSWORD};

/// A memory store that can be locked (every call refused, as a locked keyring does), made
/// to fail saves or deletes, or made to stall its next save of the session (as a keyring
/// waiting for the user to confirm) — the stalled write still lands when the stall ends.
#[derive(Debug, Default)]
pub struct TestStore {
    pub mem: MemoryStore,
    pub locked: AtomicBool,
    pub fail_saves: AtomicBool,
    pub fail_deletes: AtomicBool,
    pub stall_next_session_save_ms: AtomicU64,
}

impl TestStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.locked.load(Ordering::SeqCst) {
            return Err(StoreError::Locked("the test keyring is locked".into()));
        }
        Ok(())
    }

    /// Refuses every write from now on (saves and deletes), as a keyring that lets the
    /// app read but not change its items.
    pub fn refuse_writes(&self) {
        self.fail_saves.store(true, Ordering::SeqCst);
        self.fail_deletes.store(true, Ordering::SeqCst);
    }
}

impl SecretStore for TestStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.mem.load(key)
    }
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(StoreError::Failed("saving fails in this test".into()));
        }
        if key.ends_with(".session") {
            let stall = self.stall_next_session_save_ms.swap(0, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(stall));
        }
        self.mem.save(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(StoreError::Failed("deleting fails in this test".into()));
        }
        self.mem.delete(key)
    }
}

pub struct Engine {
    pub client: AuthClient,
    pub clock: Arc<ManualClock>,
    pub events: Events,
}

/// An engine on `store`, not started yet.
pub fn engine(cfg: AuthConfig, store: Arc<TestStore>) -> Engine {
    let clock = Arc::new(ManualClock::starting_now());
    let client = AuthClient::with_clock(
        cfg,
        store as Arc<dyn SecretStore>,
        clock.clone() as Arc<dyn Clock>,
    )
    .unwrap();
    let events = Events(client.subscribe());
    Engine {
        client,
        clock,
        events,
    }
}

/// An engine on `store`, started and signed in as `email`.
pub async fn signed_in(cfg: AuthConfig, store: &Arc<TestStore>, email: &str) -> Engine {
    let e = engine(cfg, store.clone());
    e.client.start().await.unwrap();
    e.client
        .sign_in_with_password(email, &Password::new(PASSWORD))
        .await
        .unwrap();
    e
}

/// The emulator with no refresh-token reuse interval: a superseded token sent again is
/// counted (and ends the session, as GoTrue does).
pub fn strict() -> gotrue_emulator::Config {
    gotrue_emulator::Config {
        refresh_token_reuse_interval: Duration::ZERO,
        ..tessera_test_support::config_with_codes()
    }
}

/// How many superseded refresh tokens the emulator has been sent.
pub async fn reuses(env: &Env) -> u64 {
    env.stats().await["refresh_token_reuses"].as_u64().unwrap()
}

/// Waits (real time, at most 5 s) until `check` holds.
pub async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 5 s: {what}");
}
