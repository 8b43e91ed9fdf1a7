//! [`KeyringStore`]: the operating system's credential store through `keyring-core`, one
//! store crate per platform (chosen by `cfg`, each with the features its platform needs):
//!
//! | platform | store | entries |
//! |---|---|---|
//! | Linux | Secret Service (`zbus-secret-service-keyring-store`) | the user's default collection |
//! | macOS | login keychain (`apple-native-keyring-store`, `keychain`) | generic passwords |
//! | iOS | data-protection keychain (`apple-native-keyring-store`, `protected`) | after first unlock, this device only |
//! | Android | Android Keystore + encrypted SharedPreferences (`android-native-keyring-store`) | file `keyring-tessera` |
//! | Windows | Credential Manager (`windows-native-keyring-store`) | ≤ 2560 bytes each: see [`ChunkedStore`](super::ChunkedStore) |
//!
//! A missing or locked store is a typed error — never a silent fallback to a plain file.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::{ChunkedStore, SecretStore, StoreError};

/// The operating system's credential store, through `keyring-core`.
///
/// Entries are `(service, key)` pairs; the platform store is opened on first use (on the
/// blocking pool), so constructing this never blocks and never fails. A store that could
/// not be opened is tried again at the next call (a keyring that was locked or not yet
/// started may be there by then).
pub struct KeyringStore {
    service: String,
    store: Mutex<Option<Arc<keyring_core::CredentialStore>>>,
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
            store: Mutex::new(None),
        }
    }

    /// The platform's store wrapped for its entry size limit.
    pub fn for_platform(service: impl Into<String>) -> ChunkedStore<Self> {
        let limit = if cfg!(target_os = "windows") {
            super::WINDOWS_MAX_ENTRY
        } else {
            64 * 1024
        };
        ChunkedStore::new(Self::new(service), limit)
    }

    fn platform_store(&self) -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = store.as_ref() {
            return Ok(open.clone());
        }
        let open = platform::open()?;
        *store = Some(open.clone());
        Ok(open)
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, StoreError> {
        let modifiers: HashMap<&str, &str> = ENTRY_MODIFIERS.iter().copied().collect();
        self.platform_store()?
            .build(
                &self.service,
                key,
                (!modifiers.is_empty()).then_some(&modifiers),
            )
            .map_err(map_keyring_error)
    }
}

/// How each entry is made: on iOS, readable after the first unlock and never leaving the
/// device; elsewhere the store's defaults (Android's store accepts no modifiers at all).
const ENTRY_MODIFIERS: &[(&str, &str)] = if cfg!(target_os = "ios") {
    &[("access-policy", "after-first-unlock-this-device-only")]
} else {
    &[]
};

#[cfg(target_os = "linux")]
mod platform {
    use super::*;

    pub(super) fn open() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        let store = zbus_secret_service_keyring_store::Store::new()
            .map_err(|e| StoreError::Unavailable(format!("Secret Service: {e}")))?;
        Ok(store)
    }
}

/// The login keychain, as the rest of the user's desktop apps use it.
#[cfg(target_os = "macos")]
mod platform {
    use super::*;

    pub(super) fn open() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        let store = apple_native_keyring_store::keychain::Store::new()
            .map_err(|e| StoreError::Unavailable(format!("Keychain: {e}")))?;
        Ok(store)
    }
}

/// The data-protection keychain, in the app's own access group (its App ID: no
/// entitlement beyond the default). Items are readable after the first unlock since boot
/// — a refresh can run while the phone is locked in a pocket — and never leave the
/// device: not synced to iCloud, not restored onto another phone from a backup
/// (`ENTRY_MODIFIERS`).
#[cfg(target_os = "ios")]
mod platform {
    use super::*;

    pub(super) fn open() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        let store = apple_native_keyring_store::protected::Store::new()
            .map_err(|e| StoreError::Unavailable(format!("Keychain: {e}")))?;
        Ok(store)
    }
}

/// An AES key in the Android Keystore (it never leaves the keystore) encrypting the values
/// of a private SharedPreferences file, `keyring-tessera`. The store finds the app through
/// the `ndk-context` crate, which Tauri's runtime (tao) sets to the application context
/// when the activity is created — before the engine first opens the store. Should that
/// ever not have happened, the crate panics; the panic is caught here and becomes an
/// `Unavailable` error, as any other store that cannot be opened. (That panic happens
/// under the crate's own lock of its stores, which it leaves poisoned: later attempts in
/// the same process fail the same way, and the app must be started again.)
#[cfg(target_os = "android")]
mod platform {
    use super::*;

    pub(super) fn open() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        let config = HashMap::from([("name", "tessera")]);
        let opened = std::panic::catch_unwind(|| {
            android_native_keyring_store::Store::new_with_configuration(&config)
        })
        .map_err(|_| {
            StoreError::Unavailable("Android Keystore: the app's context is not ready".into())
        })?;
        let store =
            opened.map_err(|e| StoreError::Unavailable(format!("Android Keystore: {e}")))?;
        Ok(store)
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use super::*;

    pub(super) fn open() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        let store = windows_native_keyring_store::Store::new()
            .map_err(|e| StoreError::Unavailable(format!("Credential Manager: {e}")))?;
        Ok(store)
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "ios",
    target_os = "android",
    target_os = "windows"
)))]
mod platform {
    use super::*;

    pub(super) fn open() -> Result<Arc<keyring_core::CredentialStore>, StoreError> {
        Err(StoreError::Unavailable(
            "no credential store is known for this platform".into(),
        ))
    }
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
