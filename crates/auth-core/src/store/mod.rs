//! Secure storage of small blobs: the [`SecretStore`] trait and its implementations.
//!
//! - [`KeyringStore`]: the operating system's store through `keyring-core` (Secret Service
//!   on Linux, Keychain on macOS/iOS, Credential Manager on Windows). A missing or locked
//!   store is a typed error — never a silent fallback to a plain file.
//! - [`MemoryStore`]: for tests; it can be told to fail.
//! - [`ChunkedStore`]: splits values larger than a platform's per-entry limit over several
//!   entries, committed by a checksummed manifest written last.
//! - [`Store`]: the async face the engine uses: every call runs on the blocking pool and is
//!   bounded by a time-out (a keyring call can block on a GUI prompt).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

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

// ---------------------------------------------------------------------------------------

/// Splits values over several entries when they exceed `max_entry` bytes.
///
/// Layout: the entry `key` holds either `V` + the value, or a manifest
/// `C<generation>:<count>:<sha256 hex>`; chunks live at `key#<generation>.<i>`. A save
/// writes the new chunks, then the manifest (the commit point), then deletes the old
/// generation, so a crash leaves the old or the new value, never a mix.
#[derive(Debug)]
pub struct ChunkedStore<S> {
    inner: S,
    max_entry: usize,
}

/// Windows Credential Manager's limit per credential blob.
pub const WINDOWS_MAX_ENTRY: usize = 2560;

impl<S: SecretStore> ChunkedStore<S> {
    /// `max_entry` must leave room for the manifest (at least 96 bytes).
    pub fn new(inner: S, max_entry: usize) -> Self {
        Self {
            inner,
            max_entry: max_entry.max(96),
        }
    }

    fn manifest(&self, key: &str) -> Result<Option<Manifest>, StoreError> {
        match self.inner.load(key)? {
            Some(raw) if raw.first() == Some(&b'C') => Manifest::parse(&raw[1..]).map(Some),
            _ => Ok(None),
        }
    }

    fn delete_chunks(&self, key: &str, m: &Manifest) -> Result<(), StoreError> {
        for i in 0..m.count {
            self.inner.delete(&format!("{key}#{}.{i}", m.generation))?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Manifest {
    generation: u64,
    count: usize,
    sha256: String,
}

impl Manifest {
    fn parse(raw: &[u8]) -> Result<Self, StoreError> {
        let text =
            std::str::from_utf8(raw).map_err(|_| StoreError::Corrupt("chunk manifest".into()))?;
        let mut parts = text.split(':');
        let bad = || StoreError::Corrupt("chunk manifest".into());
        let generation = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let count = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let sha256 = parts.next().ok_or_else(bad)?.to_owned();
        Ok(Self {
            generation,
            count,
            sha256,
        })
    }
}

impl<S: SecretStore> SecretStore for ChunkedStore<S> {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(raw) = self.inner.load(key)? else {
            return Ok(None);
        };
        match raw.first() {
            Some(b'V') => Ok(Some(raw[1..].to_vec())),
            Some(b'C') => {
                let m = Manifest::parse(&raw[1..])?;
                let mut value = Vec::new();
                for i in 0..m.count {
                    let chunk = self
                        .inner
                        .load(&format!("{key}#{}.{i}", m.generation))?
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!("chunk {i} of {key} is missing"))
                        })?;
                    value.extend_from_slice(&chunk);
                }
                if hex(&Sha256::digest(&value)) != m.sha256 {
                    return Err(StoreError::Corrupt(format!(
                        "chunks of {key} do not match their checksum"
                    )));
                }
                Ok(Some(value))
            }
            _ => Err(StoreError::Corrupt(format!(
                "unknown entry format for {key}"
            ))),
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let old = self.manifest(key).ok().flatten();
        if value.len() < self.max_entry {
            let mut raw = Vec::with_capacity(value.len() + 1);
            raw.push(b'V');
            raw.extend_from_slice(value);
            self.inner.save(key, &raw)?;
        } else {
            let generation = old.as_ref().map_or(1, |m| m.generation + 1);
            let chunks: Vec<&[u8]> = value.chunks(self.max_entry).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                self.inner.save(&format!("{key}#{generation}.{i}"), chunk)?;
            }
            let manifest = format!(
                "C{generation}:{}:{}",
                chunks.len(),
                hex(&Sha256::digest(value))
            );
            self.inner.save(key, manifest.as_bytes())?;
        }
        if let Some(old) = old {
            // Best effort: leftovers of an old generation are unreachable, not harmful.
            let _ = self.delete_chunks(key, &old);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let old = self.manifest(key).ok().flatten();
        self.inner.delete(key)?;
        if let Some(old) = old {
            self.delete_chunks(key, &old)?;
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------

/// The operating system's credential store, through `keyring-core`.
///
/// Entries are `(service, key)` pairs; the platform store is opened on first use (on the
/// blocking pool), so constructing this never blocks and never fails.
pub struct KeyringStore {
    service: String,
    store: OnceLock<Result<Arc<keyring_core::CredentialStore>, StoreError>>,
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            store: OnceLock::new(),
        }
    }

    /// The platform's store wrapped for its entry size limit.
    pub fn for_platform(service: impl Into<String>) -> ChunkedStore<Self> {
        let limit = if cfg!(target_os = "windows") {
            WINDOWS_MAX_ENTRY
        } else {
            64 * 1024
        };
        ChunkedStore::new(Self::new(service), limit)
    }

    fn platform_store(&self) -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        self.store.get_or_init(open_platform_store).clone()
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, StoreError> {
        self.platform_store()?
            .build(&self.service, key, None)
            .map_err(map_keyring_error)
    }
}

#[cfg(target_os = "linux")]
fn open_platform_store() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
    let store = zbus_secret_service_keyring_store::Store::new()
        .map_err(|e| StoreError::Unavailable(format!("Secret Service: {e}")))?;
    Ok(store)
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn open_platform_store() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
    let store = apple_native_keyring_store::keychain::Store::new()
        .map_err(|e| StoreError::Unavailable(format!("Keychain: {e}")))?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn open_platform_store() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
    let store = windows_native_keyring_store::Store::new()
        .map_err(|e| StoreError::Unavailable(format!("Credential Manager: {e}")))?;
    Ok(store)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "ios",
    target_os = "windows"
)))]
fn open_platform_store() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
    Err(StoreError::Unavailable(
        "no credential store is known for this platform".into(),
    ))
}

fn map_keyring_error(e: keyring_core::Error) -> StoreError {
    use keyring_core::Error as E;
    match e {
        E::NoStorageAccess(inner) => StoreError::Locked(inner.to_string()),
        E::NoDefaultStore => StoreError::Unavailable("no default credential store".into()),
        E::PlatformFailure(inner) => StoreError::Unavailable(inner.to_string()),
        E::BadEncoding(_) | E::BadDataFormat(..) | E::BadStoreFormat(_) => {
            StoreError::Corrupt("the credential store returned unreadable data".into())
        }
        other => StoreError::Failed(other.to_string()),
    }
}

impl SecretStore for KeyringStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.entry(key)?.get_secret() {
            Ok(v) => Ok(Some(v)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.entry(key)?
            .set_secret(value)
            .map_err(map_keyring_error)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------

/// The async face of a [`SecretStore`]: calls run on the blocking pool, bounded by a
/// time-out.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn SecretStore>,
    timeout: Duration,
}

impl Store {
    pub fn new(inner: Arc<dyn SecretStore>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || f(inner.as_ref()));
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(StoreError::Failed(format!("storage task failed: {join}"))),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    pub async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.run(move |s| s.load(&key)).await
    }

    pub async fn save(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |s| s.save(&key, &value)).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |s| s.delete(&key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_store_round_trips_and_cleans_up() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 100);
        let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        store.save("session", &big).unwrap();
        assert!(mem.dump().len() > 5, "split over several entries");
        assert!(mem.dump().iter().all(|(_, v)| v.len() <= 100));
        assert_eq!(store.load("session").unwrap(), Some(big.clone()));

        // Overwrite with a bigger value, then a small one: old chunks go.
        let bigger: Vec<u8> = big.iter().chain(big.iter()).copied().collect();
        store.save("session", &bigger).unwrap();
        assert_eq!(store.load("session").unwrap(), Some(bigger));
        store.save("session", b"small").unwrap();
        assert_eq!(store.load("session").unwrap(), Some(b"small".to_vec()));
        assert_eq!(mem.dump().len(), 1);
        store.delete("session").unwrap();
        assert!(mem.dump().is_empty());
        assert_eq!(store.load("session").unwrap(), None);
    }

    #[test]
    fn chunked_store_detects_a_missing_or_altered_chunk() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 100);
        store.save("k", &[7u8; 500]).unwrap();
        mem.save("k#1.2", &[0u8; 100]).unwrap();
        assert!(matches!(store.load("k"), Err(StoreError::Corrupt(_))));
        mem.delete("k#1.2").unwrap();
        assert!(matches!(store.load("k"), Err(StoreError::Corrupt(_))));
    }

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
}
