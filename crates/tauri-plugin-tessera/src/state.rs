//! [`AuthState`]: the engine in use (one per server; see `server.rs` for switching), the
//! bridge that sends its events to every window, and the restore at start.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use auth_core::AuthClient;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::watch;

use crate::server::{Active, SERVER_EVENT};
use crate::{BackendInfo, CommandError, STATE_EVENT};

/// What the commands reach through `State<AuthState>`.
pub struct AuthState {
    active: RwLock<Active>,
    ready: watch::Sender<bool>,
    last_validation: Mutex<Option<Instant>>,
    /// Preferences are kept (tauri-plugin-store is registered).
    pub(crate) preferences: bool,
    /// The server can be changed in the app (not an engine given by the caller).
    switchable: bool,
    pub(crate) switching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl AuthState {
    pub(crate) fn new(active: Active, preferences: bool, switchable: bool) -> Self {
        Self {
            active: RwLock::new(active),
            ready: watch::Sender::new(false),
            last_validation: Mutex::new(None),
            preferences,
            switchable,
            switching: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Active> {
        self.active.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The engine of the server in use; an error when no server is connected yet.
    pub fn client(&self) -> Result<AuthClient, CommandError> {
        self.read().client.clone().ok_or_else(|| {
            CommandError::new(
                "no_server",
                "No server is connected yet: open Settings and connect your Supabase project.",
            )
        })
    }

    /// The data proxy of the server in use (the `supabase` scheme).
    pub fn proxy(&self) -> Option<std::sync::Arc<auth_core::proxy::DataProxy>> {
        self.read().proxy.clone()
    }

    /// Which server the app talks to.
    pub fn backend(&self) -> BackendInfo {
        self.read().backend.clone()
    }

    pub(crate) fn anon_key(&self) -> Option<String> {
        let active = self.read();
        active.client.as_ref().map(|c| c.config().anon_key.clone())
    }

    pub(crate) fn is_supertokens(&self) -> bool {
        let active = self.read();
        active
            .client
            .as_ref()
            .is_some_and(|c| c.config().backend == auth_core::BackendKind::SuperTokens)
    }

    pub(crate) fn can_switch(&self) -> bool {
        self.switchable
    }

    fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Records what the server offers, unless the server changed since it was asked.
    pub(crate) fn update_server_settings(
        &self,
        generation: u64,
        info: auth_core::server::ServerInfo,
    ) -> Option<BackendInfo> {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        if active.generation != generation {
            return None;
        }
        active.backend.server_settings = Some(info);
        Some(active.backend.clone())
    }

    /// Waits until the stored session has been restored (so no window sees a false
    /// "signed out" while the keyring is still being read, or while the server changes).
    pub async fn ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Validates on focus, at most every few seconds.
    pub(crate) fn should_validate(&self) -> bool {
        let mut last = self
            .last_validation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(3));
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Puts `active` in place of the engine in use (which stops: its session stays
    /// stored), tells every window, and restores the new server's session.
    pub(crate) async fn install_engine<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        mut active: Active,
    ) -> BackendInfo {
        self.ready.send_replace(false);
        let old = {
            let mut slot = self.active.write().unwrap_or_else(|e| e.into_inner());
            active.generation = slot.generation + 1;
            std::mem::replace(&mut *slot, active)
        };
        if let Some(client) = &old.client {
            client.shutdown();
        }
        drop(old);
        let backend = self.backend();
        if let Err(e) = app.emit(SERVER_EVENT, &backend) {
            tracing::warn!(error = %e, "cannot tell the UI about the server");
        }
        start_engine(app, self.generation()).await;
        backend
    }
}

/// Forwards the engine's events to every window while it is the one in use, restores its
/// stored session (announced as `INITIAL_SESSION`), then asks the server what it offers.
pub(crate) async fn start_engine<R: Runtime>(app: &AppHandle<R>, generation: u64) {
    let state = app.state::<AuthState>();
    let Ok(client) = state.client() else {
        state.ready.send_replace(true);
        return;
    };
    crate::apply_idle_timeout(app, &client);
    let mut events = client.subscribe();
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(change) => {
                    if handle.state::<AuthState>().generation() != generation {
                        break;
                    }
                    if let Err(e) = handle.emit(STATE_EVENT, &change) {
                        tracing::warn!(error = %e, "cannot emit an auth event");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "auth events were dropped");
                }
                Err(_) => break,
            }
        }
    });
    match client.start().await {
        Ok(Some(view)) => {
            tracing::info!(session = %view.session_id, "restored the stored session")
        }
        Ok(None) => tracing::info!("no stored session"),
        Err(e) => tracing::warn!(code = e.code(), "the stored session could not be restored"),
    }
    state.ready.send_replace(true);
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        crate::server::refresh_info(&handle, generation).await;
    });
}
