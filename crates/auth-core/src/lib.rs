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

/// Where the app and `authctl` keep their cross-process lock files (nothing secret):
/// `$TESSERA_LOCK_DIR`, else `$XDG_RUNTIME_DIR/tessera` (per user, private), else a
/// `tessera` folder in the user's cache directory, else in the temp directory.
pub fn default_lock_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("TESSERA_LOCK_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("tessera");
    }
    if let Some(dir) = std::env::var_os("LOCALAPPDATA").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("tessera");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".cache").join("tessera");
    }
    std::env::temp_dir().join("tessera")
}
