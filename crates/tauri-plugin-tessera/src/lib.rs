//! Tessera's Tauri integration as a plugin: the auth commands (`plugin:tessera|…`, thin
//! adapters over `auth-core`), every engine event sent to every window as
//! `auth:state-change`, deep links handed to the engine to be checked, and window focus
//! (validate with the server, re-check the schedule). All auth logic lives in `auth-core`.
//!
//! ```ignore
//! tauri::Builder::default()
//!     .plugin(tauri_plugin_deep_link::init())
//!     .plugin(tauri_plugin_store::Builder::default().build())
//!     .plugin(tauri_plugin_opener::init())
//!     .plugin(tauri_plugin_tessera::init())
//! ```
//!
//! Settings come from `plugins.tessera` in `tauri.conf.json` ([`Config`]), overridden by
//! the environment (`TESSERA_AUTH_URL`, `TESSERA_ANON_KEY`, …). An app can offer a server
//! of its own for when none is configured ([`Builder::embedded_server`]). The UI grants
//! `tessera:default` in a capability and calls the guest module (`guest-js/`).

mod command_names;
mod commands;
mod error;

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_core::{AuthClient, AuthConfig, KEYRING_SERVICE, KeyringStore, LinkOutcome, SecretStore};
use serde::Serialize;
use serde_json::{Value, json};
use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Emitter, Manager, RunEvent, Runtime, WindowEvent};
use tokio::sync::watch;

pub use command_names::COMMANDS;
pub use error::CommandError;

/// The Tauri event every auth-state change is sent as, to every window.
pub const STATE_EVENT: &str = "auth:state-change";
/// The event a link that would sign in another account arrives as (an
/// `auth_core::AccountSwitch`): the UI asks the user, then calls
/// `auth_resolve_account_switch`.
pub const ACCOUNT_SWITCH_EVENT: &str = "auth:account-switch";

const PREFERENCES_FILE: &str = "preferences.json";

/// Which server the app talks to.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendInfo {
    pub url: String,
    /// The app's own embedded server (no server configured).
    pub embedded: bool,
    pub demo_email: Option<String>,
    pub demo_password: Option<String>,
}

/// Non-secret preferences (tauri-plugin-store).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub last_email: Option<String>,
    /// Sign out locally after this many minutes without activity (off when `None`).
    pub idle_sign_out_minutes: Option<u32>,
}

/// What the commands reach through `State<AuthState>`.
pub struct AuthState {
    pub client: AuthClient,
    pub backend: BackendInfo,
    ready: watch::Receiver<bool>,
    last_validation: Mutex<Option<Instant>>,
    /// Preferences are kept (tauri-plugin-store is registered).
    preferences: bool,
    /// Keeps the app's embedded server running as long as the app.
    _embedded: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl AuthState {
    /// Waits until the stored session has been restored (so no window sees a false
    /// "signed out" while the keyring is still being read).
    pub async fn ready(&self) {
        let mut rx = self.ready.clone();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Validates on focus, at most every few seconds.
    fn should_validate(&self) -> bool {
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
}

/// `plugins.tessera` in `tauri.conf.json`. Each field can be overridden by the
/// environment variable named beside it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The auth server (`TESSERA_AUTH_URL`): a GoTrue root or `https://<ref>.supabase.co/auth/v1`.
    pub auth_url: Option<String>,
    /// Its anon / publishable key (`TESSERA_ANON_KEY`).
    pub anon_key: Option<String>,
    /// Base of the app's deep links (default `tessera://auth`).
    pub callback_base: Option<String>,
    /// PostgREST's root for "Your devices" (`TESSERA_REST_URL`; default: from the auth URL).
    pub rest_url: Option<String>,
    /// The app backend's logout endpoint (`TESSERA_LOGOUT_HOOK_URL`).
    pub logout_hook_url: Option<String>,
    /// `gotrue` (default) or `supertokens` (`TESSERA_BACKEND`).
    pub backend: Option<String>,
}

impl Config {
    /// The environment over the file.
    fn resolved(&self) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let file = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        Self {
            auth_url: env("TESSERA_AUTH_URL").or_else(|| file(&self.auth_url)),
            anon_key: env("TESSERA_ANON_KEY").or_else(|| file(&self.anon_key)),
            callback_base: file(&self.callback_base),
            rest_url: env("TESSERA_REST_URL").or_else(|| file(&self.rest_url)),
            logout_hook_url: env("TESSERA_LOGOUT_HOOK_URL").or_else(|| file(&self.logout_hook_url)),
            backend: env("TESSERA_BACKEND").or_else(|| file(&self.backend)),
        }
    }
}

/// The name sessions of the app's embedded server are stored under (its URL's port may
/// change from one start to the next).
pub const EMBEDDED_SERVER_ID: &str = "tessera-embedded";

/// A server the app runs itself, for when none is configured (Tessera's embedded GoTrue
/// emulator). `keep_alive` is held as long as the app runs.
pub struct EmbeddedServer {
    pub url: String,
    pub anon_key: String,
    /// A demo account to show on the sign-in screen: (email, password).
    pub demo: Option<(String, String)>,
    pub keep_alive: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for EmbeddedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

type EmbeddedProvider<R> =
    Box<dyn FnOnce(&AppHandle<R>) -> Result<EmbeddedServer, String> + Send + 'static>;

/// Builds the plugin.
pub struct Builder<R: Runtime> {
    embedded: Option<EmbeddedProvider<R>>,
    engine: Option<(AuthClient, BackendInfo)>,
    preferences: bool,
}

impl<R: Runtime> Default for Builder<R> {
    fn default() -> Self {
        Self {
            embedded: None,
            engine: None,
            preferences: false,
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Builder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("embedded", &self.embedded.is_some())
            .finish_non_exhaustive()
    }
}

/// The plugin with its settings from `tauri.conf.json` and the environment.
/// The plugin with its settings from `tauri.conf.json` and the environment, keeping
/// preferences (the app registers tauri-plugin-store before it).
pub fn init<R: Runtime>() -> TauriPlugin<R, Option<Config>> {
    Builder::new().with_preferences().build()
}

impl<R: Runtime> Builder<R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The server to start when none is configured (called once, at setup).
    pub fn embedded_server(
        mut self,
        start: impl FnOnce(&AppHandle<R>) -> Result<EmbeddedServer, String> + Send + 'static,
    ) -> Self {
        self.embedded = Some(Box::new(start));
        self
    }

    /// Keep the user's preferences (last email, idle sign-out) in `preferences.json`
    /// through tauri-plugin-store, which the app must register before this plugin.
    /// Without it, preferences are not kept.
    pub fn with_preferences(mut self) -> Self {
        self.preferences = true;
        self
    }

    /// An engine made by the caller instead of one from the settings (tests).
    pub fn engine(mut self, client: AuthClient, backend: BackendInfo) -> Self {
        self.engine = Some((client, backend));
        self
    }

    /// `plugins.tessera` may be absent (settings from the environment only).
    pub fn build(self) -> TauriPlugin<R, Option<Config>> {
        let Self {
            embedded,
            engine,
            preferences,
        } = self;
        tauri::plugin::Builder::<R, Option<Config>>::new("tessera")
            .invoke_handler(tauri::generate_handler![
                commands::auth_state,
                commands::auth_backend,
                commands::auth_sign_up,
                commands::auth_sign_in_with_password,
                commands::auth_sign_in_anonymously,
                commands::auth_sign_in_with_otp,
                commands::auth_verify_otp,
                commands::auth_sign_in_with_oauth,
                commands::auth_sign_out,
                commands::auth_refresh,
                commands::auth_user,
                commands::auth_update_user,
                commands::auth_mfa_factors,
                commands::auth_mfa_enroll,
                commands::auth_mfa_verify,
                commands::auth_mfa_unenroll,
                commands::auth_preferences,
                commands::auth_set_preferences,
                commands::auth_open_window,
                commands::auth_list_sessions,
                commands::auth_revoke_session,
                commands::auth_pending_account_switch,
                commands::auth_resolve_account_switch,
            ])
            .setup(move |app, api| {
                let (client, backend, keep) = match engine {
                    Some((client, backend)) => (client, backend, None),
                    None => {
                        // Sign-in links must be able to come back.
                        watch_links(app)?;
                        let config = api.config().clone().unwrap_or_default();
                        engine_from_settings(app, &config.resolved(), embedded)?
                    }
                };
                install(app, client, backend, keep, preferences);
                Ok(())
            })
            .on_event(|app, event| {
                if let RunEvent::WindowEvent {
                    event: WindowEvent::Focused(true),
                    ..
                } = event
                {
                    on_focus(app);
                }
            })
            .build()
    }
}

/// Deep links the OS hands the running app (the single-instance plugin forwards a second
/// instance's links here too) go to the engine.
fn watch_links<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    use tauri_plugin_deep_link::DeepLinkExt;
    if app
        .try_state::<tauri_plugin_deep_link::DeepLink<R>>()
        .is_none()
    {
        return Err(
            "register tauri-plugin-deep-link before tauri-plugin-tessera: sign-in links \
             come back as deep links"
                .into(),
        );
    }
    let links = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            let app = links.clone();
            let url = url.to_string();
            tauri::async_runtime::spawn(async move { handle_link(&app, url).await });
        }
    });
    // Linux and Windows register the scheme at run time (dev builds included).
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if let Err(e) = app.deep_link().register_all() {
        tracing::warn!(error = %e, "cannot register the deep-link scheme with the desktop");
    }
    Ok(())
}

/// The engine the settings describe: the configured server, or the app's embedded one.
type Engine = (AuthClient, BackendInfo, Option<Box<dyn Any + Send + Sync>>);

fn engine_from_settings<R: Runtime>(
    app: &AppHandle<R>,
    settings: &Config,
    embedded: Option<EmbeddedProvider<R>>,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let backend_kind: auth_core::BackendKind =
        settings.backend.as_deref().unwrap_or_default().parse()?;
    if backend_kind == auth_core::BackendKind::SuperTokens && settings.auth_url.is_none() {
        return Err(
            "TESSERA_BACKEND=supertokens needs TESSERA_AUTH_URL: the app backend's API domain"
                .into(),
        );
    }
    let (url, anon_key, server, profile_default) = match (&settings.auth_url, embedded) {
        (Some(url), _) => (
            url.clone(),
            settings.anon_key.clone().unwrap_or_default(),
            None,
            "default",
        ),
        (None, Some(start)) => {
            let server = start(app)?;
            (
                server.url.clone(),
                server.anon_key.clone(),
                Some(server),
                "embedded",
            )
        }
        (None, None) => {
            return Err("no auth server: set plugins.tessera.authUrl or TESSERA_AUTH_URL".into());
        }
    };
    let demo = server.as_ref().and_then(|s| s.demo.clone());
    let backend = BackendInfo {
        url: url.clone(),
        embedded: server.is_some(),
        demo_email: demo.as_ref().map(|(email, _)| email.clone()),
        demo_password: demo.map(|(_, password)| password),
    };
    let mut cfg = AuthConfig::new(url, anon_key);
    cfg.profile = std::env::var("TESSERA_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| profile_default.into());
    cfg.callback_base = settings
        .callback_base
        .clone()
        .unwrap_or_else(|| "tessera://auth".into());
    cfg.rest_url = settings.rest_url.clone();
    cfg.logout_hook_url = settings.logout_hook_url.clone();
    cfg.backend = backend_kind;
    if backend.embedded {
        // Its port may change (54329 busy): its sessions belong to it, not to the port.
        cfg.server_id = Some(EMBEDDED_SERVER_ID.into());
    }
    cfg.lock_dir = Some(auth_core::default_lock_dir());
    cfg.user_agent = auth_core::user_agent("Tessera", &app.package_info().version.to_string());
    tracing::info!(url = %backend.url, embedded = backend.embedded, profile = %cfg.profile, "Tessera started");
    let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::for_platform(KEYRING_SERVICE));
    let client = AuthClient::new(cfg, store)?;
    Ok((client, backend, server.map(|s| s.keep_alive)))
}

/// Registers the state and starts the event bridge and the restore.
fn install<R: Runtime>(
    app: &AppHandle<R>,
    client: AuthClient,
    backend: BackendInfo,
    keep_alive: Option<Box<dyn Any + Send + Sync>>,
    preferences: bool,
) {
    let (ready_tx, ready) = watch::channel(false);
    let mut events = client.subscribe();
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(change) => {
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
    app.manage(AuthState {
        client: client.clone(),
        backend,
        ready,
        last_validation: Mutex::new(None),
        preferences,
        _embedded: keep_alive,
    });
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        match client.start().await {
            Ok(Some(view)) => {
                tracing::info!(session = %view.session_id, "restored the stored session")
            }
            Ok(None) => tracing::info!("no stored session"),
            Err(e) => tracing::warn!(code = e.code(), "the stored session could not be restored"),
        }
        let _ = ready_tx.send(true);
        // A link that started the app (cold start) is handled once the session is restored.
        for url in cold_start_links(&handle) {
            handle_link(&handle, url).await;
        }
    });
}

/// The links the app was started with (a cold start from a link). Tests run without the
/// deep-link plugin: then there are none.
fn cold_start_links<R: Runtime>(app: &AppHandle<R>) -> Vec<String> {
    use tauri_plugin_deep_link::DeepLinkExt;
    if app
        .try_state::<tauri_plugin_deep_link::DeepLink<R>>()
        .is_none()
    {
        return Vec::new();
    }
    app.deep_link()
        .get_current()
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .map(|u| u.to_string())
        .collect()
}

/// A deep link arrived: the engine checks it strictly (a refused link becomes an
/// `AUTH_ERROR` event and changes nothing). The main window comes to the front.
async fn handle_link<R: Runtime>(app: &AppHandle<R>, url: String) {
    let Some(state) = app.try_state::<AuthState>() else {
        return;
    };
    state.ready().await;
    match state.client.handle_callback(&url).await {
        Ok(LinkOutcome::ConfirmSwitch { switch }) => {
            tracing::info!("deep link for another account: asking the user");
            if let Err(e) = app.emit(ACCOUNT_SWITCH_EVENT, &switch) {
                tracing::warn!(error = %e, "cannot ask about the account switch");
            }
        }
        Ok(_) => tracing::info!("deep link accepted"),
        Err(e) => tracing::warn!(code = e.code(), "deep link refused"),
    }
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// A window got focus: ask the server whether the session is still alive (throttled), and
/// let the engine re-check its schedule (this also covers resume from sleep).
fn on_focus<R: Runtime>(app: &AppHandle<R>) {
    let Some(state) = app.try_state::<AuthState>() else {
        return;
    };
    state.client.nudge();
    if !state.should_validate() {
        return;
    }
    let client = state.client.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(e) = client.validate().await {
            tracing::debug!(
                code = e.code(),
                "validation on focus failed (kept the session)"
            );
        }
    });
}

fn open_in_browser<R: Runtime>(app: &AppHandle<R>, url: &str) -> Result<(), CommandError> {
    use tauri_plugin_opener::OpenerExt;
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| CommandError::new("browser_error", format!("cannot open the browser: {e}")))
}

/// The preferences file, when the app registered tauri-plugin-store (an engine given to
/// [`Builder::engine`] runs without preferences: test apps do not register the store).
fn store<R: Runtime>(app: &AppHandle<R>) -> Option<Arc<tauri_plugin_store::Store<R>>> {
    use tauri_plugin_store::StoreExt;
    app.try_state::<AuthState>().filter(|s| s.preferences)?;
    app.store(PREFERENCES_FILE).ok()
}

pub(crate) fn load_preferences<R: Runtime>(app: &AppHandle<R>) -> Preferences {
    let Some(store) = store(app) else {
        return Preferences {
            last_email: None,
            idle_sign_out_minutes: None,
        };
    };
    Preferences {
        last_email: store
            .get("lastEmail")
            .and_then(|v| v.as_str().map(str::to_owned)),
        idle_sign_out_minutes: store
            .get("idleSignOutMinutes")
            .and_then(|v| v.as_u64())
            .map(|m| m as u32),
    }
}

pub(crate) fn save_preference<R: Runtime>(app: &AppHandle<R>, key: &str, value: Value) {
    if let Some(store) = store(app) {
        store.set(key, value);
        if let Err(e) = store.save() {
            tracing::warn!(error = %e, "cannot save preferences");
        }
    }
}

pub(crate) fn remember_email<R: Runtime>(app: &AppHandle<R>, email: &str) {
    save_preference(app, "lastEmail", json!(email.trim()));
}
