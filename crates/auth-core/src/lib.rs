//! Tessera's session engine for Supabase Auth (GoTrue).
//!
//! It knows nothing of Tauri: the app and the `authctl` CLI are thin layers over
//! [`AuthClient`]. Its dependencies — the HTTP API, the secret store and the clock — are
//! passed in, so it can be tested without a display or a keyring.
//!
//! ```no_run
//! # async fn demo() -> Result<(), auth_core::AuthError> {
//! use std::sync::Arc;
//! use auth_core::{AuthClient, AuthConfig, KeyringStore, Password, SignOutScope};
//!
//! let store = Arc::new(KeyringStore::for_platform("tessera"));
//! let client = AuthClient::new(AuthConfig::new("http://127.0.0.1:9999", "anon-key"), store)?;
//! let mut events = client.subscribe();
//! client.start().await?; // INITIAL_SESSION
//! client.sign_in_with_password("ada@example.com", &Password::new("…")).await?;
//! let token = client.access_token().await?; // valid, refreshed when due
//! client.sign_out(SignOutScope::Local).await?; // immediate, even offline
//! # let _ = (token, events.try_recv());
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod callback;
mod client;
pub mod clock;
mod config;
pub mod crash;
mod decode;
mod error;
pub mod expiry;
pub mod hook;
mod http;
pub mod jwt;
mod lock;
pub mod model;
mod net_watch;
mod persist;
pub mod proxy;
mod secret;
pub mod server;
pub mod store;

pub use backend::{
    AuthBackend, BackendKind, GoTrueApi, MfaEnrollment, OtpType, SignOutScope, SuperTokensApi,
    User, UserUpdate,
};
pub use client::{AuthClient, AuthClientBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AuthConfig, Metrics, redirect_allow_list_entry};
pub use error::{ApiCode, AuthError, DEFINITIVE_SESSION_CODES};
pub use model::{
    AccountSwitch, AuthEvent, AuthStateChange, Connectivity, DeviceSession, EmailChangeOutcome,
    ErrorView, LinkOutcome, PendingRevocation, RevokeOutcome, SessionView, SignOutOutcome,
    SignOutReason, SignUpOutcome, UserView,
};
pub use secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};
pub use store::{ChunkedStore, KeyringStore, MemoryStore, SecretStore, Store, StoreError};

/// The keyring service name shared by the app and `authctl`.
pub const KEYRING_SERVICE: &str = "tessera";

/// The anon key of Supabase's local stack, signed with its well-known demo secret: the
/// default for talking to the embedded `gotrue-emulator`.
pub const DEMO_ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";

/// A `User-Agent` naming the client and the platform, e.g. `Tessera/0.1.0 (Linux)`: GoTrue
/// keeps it with the session, and "Your devices" shows it.
pub fn user_agent(product: &str, version: &str) -> String {
    let platform = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        "windows" => "Windows",
        "ios" => "iOS",
        "android" => "Android",
        other => other,
    };
    format!("{product}/{version} ({platform})")
}

/// The folders a platform gives an app, from which its lock folder is chosen
/// ([`lock_dir`]). The app takes them from Tauri's path resolver; `authctl` computes the
/// same ones for the desktop app it sits beside, so that both lock the same files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppDirs {
    /// The per-user runtime folder: `$XDG_RUNTIME_DIR` on Linux (private, on tmpfs); none
    /// elsewhere.
    pub runtime: Option<std::path::PathBuf>,
    /// The app's own cache folder (`<cache>/<identifier>` on a desktop; inside the app's
    /// sandbox on a phone).
    pub app_cache: Option<std::path::PathBuf>,
}

/// Where the app and `authctl` keep their cross-process lock files and the signed-out
/// marker (nothing secret): `$TESSERA_LOCK_DIR` when set, else `tessera` in the runtime
/// folder, else `locks` in the app's cache folder, else (neither known) `tessera` in the
/// temp folder.
pub fn lock_dir(dirs: &AppDirs) -> std::path::PathBuf {
    lock_dir_with(dirs, |name| std::env::var_os(name))
}

fn lock_dir_with(
    dirs: &AppDirs,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> std::path::PathBuf {
    if let Some(dir) = env("TESSERA_LOCK_DIR").filter(|v| !v.is_empty()) {
        return dir.into();
    }
    if let Some(runtime) = &dirs.runtime {
        return runtime.join("tessera");
    }
    if let Some(cache) = &dirs.app_cache {
        return cache.join("locks");
    }
    std::env::temp_dir().join("tessera")
}

#[cfg(test)]
mod lock_dir_tests {
    use super::*;
    use std::path::PathBuf;

    fn none(_: &str) -> Option<std::ffi::OsString> {
        None
    }

    #[test]
    fn a_phone_without_home_or_tmpdir_locks_in_the_apps_own_folder() {
        // An Android app up to version 12: no runtime folder, no HOME, no TMPDIR. The
        // temp folder would be /data/local/tmp, which apps cannot write.
        let dirs = AppDirs {
            runtime: None,
            app_cache: Some(PathBuf::from("/data/user/0/dev.tessera.app/cache")),
        };
        assert_eq!(
            lock_dir_with(&dirs, none),
            PathBuf::from("/data/user/0/dev.tessera.app/cache/locks")
        );
    }

    #[test]
    fn the_runtime_folder_then_the_override_come_first() {
        let dirs = AppDirs {
            runtime: Some(PathBuf::from("/run/user/1000")),
            app_cache: Some(PathBuf::from("/home/a/.cache/dev.tessera.desktop")),
        };
        assert_eq!(
            lock_dir_with(&dirs, none),
            PathBuf::from("/run/user/1000/tessera")
        );
        let set = |name: &str| (name == "TESSERA_LOCK_DIR").then(|| "/elsewhere".into());
        assert_eq!(lock_dir_with(&dirs, set), PathBuf::from("/elsewhere"));
        let empty = |name: &str| (name == "TESSERA_LOCK_DIR").then(Default::default);
        assert_eq!(
            lock_dir_with(&dirs, empty),
            PathBuf::from("/run/user/1000/tessera")
        );
    }
}
