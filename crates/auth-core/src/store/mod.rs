//! Secure storage of small blobs: the [`SecretStore`] trait and its implementations.
//!
//! - [`KeyringStore`]: the operating system's store through `keyring-core` (Secret Service
//!   on Linux, Keychain on macOS/iOS, Android Keystore, Credential Manager on Windows: see
//!   `keyring.rs`). A missing or locked store is a typed error — never a silent fallback
//!   to a plain file.
//! - [`MemoryStore`]: for tests; it can be told to fail.
//! - [`ChunkedStore`]: splits values larger than a platform's per-entry limit over several
//!   entries, committed by a checksummed manifest written last.
//! - [`Store`]: the async face the engine uses: every call runs on the blocking pool and is
//!   bounded by a time-out (a keyring call can block on a GUI prompt).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why the secure storage failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    #[error("no secure storage is available ({0})")]
    Unavailable(String),
    #[error("the secure storage is locked or refused access ({0})")]
    Locked(String),
    #[error("the secure storage did not answer within {0:?}")]
    Timeout(Duration),
    #[error("stored data is corrupt ({0})")]
    Corrupt(String),
    #[error("the secure storage failed ({0})")]
    Failed(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "keyring_unavailable",
            Self::Locked(_) => "keyring_locked",
            Self::Timeout(_) => "keyring_timeout",
            Self::Corrupt(_) => "storage_corrupt",
            Self::Failed(_) => "storage_failed",
        }
    }
}

/// A store of small secret blobs by key. Calls may block; [`Store`] keeps them off the
/// async workers.
pub trait SecretStore: Send + Sync + fmt::Debug + 'static {
    /// The value, or `None` when there is none.
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the value.
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes the value; removing a missing value is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

mod chunked;
pub use chunked::{ChunkedStore, WINDOWS_MAX_ENTRY};

// ---------------------------------------------------------------------------------------

/// An in-memory store, for tests. `fail_saves` makes every save fail (as a locked keyring
/// would); `saves` counts successful saves.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Vec<u8>>>,
    fail_saves: AtomicBool,
    saves: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_fail_saves(&self, fail: bool) {
        self.fail_saves.store(fail, Ordering::SeqCst);
    }

    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// Every key and value, for tests that look for leaked secrets.
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl SecretStore for MemoryStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(StoreError::Failed(
                "saving is disabled in this test store".into(),
            ));
        }
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), value.to_vec());
        self.saves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}

impl<T: SecretStore> SecretStore for Arc<T> {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).load(key)
    }
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).save(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key)
    }
}

mod keyring;
pub use keyring::KeyringStore;

// ---------------------------------------------------------------------------------------

/// The async face of a [`SecretStore`]: calls run on the blocking pool, bounded by a
/// time-out.
///
/// A call that times out is not cancelled — a keyring waiting for the user may still
/// write long after. So the calls on one key run strictly in the order they were made:
/// each waits for the previous one on that key to really return, whether or not its
/// caller is still waiting. A write that timed out can therefore land late, but never
/// over a write or removal made after it.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn SecretStore>,
    timeout: Duration,
    /// Per key, the end of the queue: the receiver whose sender the last call made on
    /// that key drops when it has really returned.
    queues: Arc<Mutex<HashMap<String, tokio::sync::oneshot::Receiver<()>>>>,
}

/// Something held until a store call has really returned (a cross-process lock guard).
pub type Hold = Box<dyn std::any::Any + Send>;

impl Store {
    pub fn new(inner: Arc<dyn SecretStore>, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            queues: Arc::default(),
        }
    }

    /// Joins the key's queue: the call before this one (to wait for), and this call's
    /// own place (dropped when it has returned).
    fn enqueue(
        &self,
        key: &str,
    ) -> (
        Option<tokio::sync::oneshot::Receiver<()>>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (done, next) = tokio::sync::oneshot::channel();
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        (queues.insert(key.to_owned(), next), done)
    }

    async fn run<T: Send + 'static>(
        &self,
        key: &str,
        hold: Option<Hold>,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        // The place in the key's queue is taken now, in call order.
        let (previous, done) = self.enqueue(key);
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                // Ends when the previous call has returned (its sender is dropped).
                let _ = previous.await;
            }
            let result = tokio::task::spawn_blocking(move || f(inner.as_ref())).await;
            drop(hold);
            drop(done);
            result
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(result))) => result,
            Ok(Ok(Err(join))) => Err(StoreError::Failed(format!("storage task failed: {join}"))),
            Ok(Err(join)) => Err(StoreError::Failed(format!("storage task failed: {join}"))),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    pub async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let owned = key.to_owned();
        self.run(key, None, move |s| s.load(&owned)).await
    }

    pub async fn save(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.save_holding(key, value, None).await
    }

    /// Saves, keeping `hold` (a cross-process lock guard) until the write has really
    /// returned — also when the caller stopped waiting — so that no other process writes
    /// in between and is then overwritten by this late write.
    pub async fn save_holding(
        &self,
        key: &str,
        value: Vec<u8>,
        hold: Option<Hold>,
    ) -> Result<(), StoreError> {
        let owned = key.to_owned();
        self.run(key, hold, move |s| s.save(&owned, &value)).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let owned = key.to_owned();
        self.run(key, None, move |s| s.delete(&owned)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn async_store_bounds_a_blocked_call() {
        #[derive(Debug)]
        struct Stuck;
        impl SecretStore for Stuck {
            fn load(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
                std::thread::sleep(Duration::from_millis(500));
                Ok(None)
            }
            fn save(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
                Ok(())
            }
            fn delete(&self, _: &str) -> Result<(), StoreError> {
                Ok(())
            }
        }
        let store = Store::new(Arc::new(Stuck), Duration::from_millis(50));
        assert_eq!(
            store.load("x").await,
            Err(StoreError::Timeout(Duration::from_millis(50)))
        );
    }

    /// A write that timed out lands late, but before the calls made after it.
    #[tokio::test]
    async fn a_late_write_never_lands_over_a_later_call() {
        #[derive(Debug, Default)]
        struct SlowFirst {
            mem: MemoryStore,
            slow: AtomicBool,
        }
        impl SecretStore for SlowFirst {
            fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                self.mem.load(key)
            }
            fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
                if !self.slow.swap(true, Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(300));
                }
                self.mem.save(key, value)
            }
            fn delete(&self, key: &str) -> Result<(), StoreError> {
                self.mem.delete(key)
            }
        }
        let inner = Arc::new(SlowFirst::default());
        let store = Store::new(inner.clone(), Duration::from_millis(50));
        assert!(matches!(
            store.save("k", b"old".to_vec()).await,
            Err(StoreError::Timeout(_))
        ));
        let _ = store.save("k", b"new".to_vec()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(inner.mem.load("k").unwrap(), Some(b"new".to_vec()));
        let _ = store.save("k", b"x".to_vec()).await;
        store.delete("k").await.unwrap();
        assert_eq!(store.load("k").await.unwrap(), None);
    }
}
