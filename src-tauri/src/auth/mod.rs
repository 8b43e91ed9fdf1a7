//! Tessera's auth integration, split like Tauri's official plugins: `commands` (thin IPC
//! adapters), `error` (the serializable `{code, message}`), and here the state, the event
//! bridge, deep links, window focus and the embedded emulator. All auth logic lives in
//! `auth-core`.

pub mod commands;
pub mod error;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_core::{AuthClient, AuthConfig, KEYRING_SERVICE, KeyringStore, SecretStore};
use serde::Serialize;
use serde_json::{Value, json};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::watch;

use self::error::CommandError;

/// The Tauri event every auth-state change is sent as, to every window.
pub const STATE_EVENT: &str = "auth:state-change";

const PREFERENCES_FILE: &str = "preferences.json";

/// The demo account created in the embedded emulator on first run.
pub const DEMO_EMAIL: &str = "demo@tessera.dev";
pub const DEMO_PASSWORD: &str = "tessera-demo";

/// Which server the app talks to.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendInfo {
    pub url: String,
    /// The embedded `gotrue-emulator` (no server configured).
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
    /// Keeps the embedded emulator running as long as the app.
    _emulator: Option<gotrue_emulator::EmulatorHandle>,
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

/// Where the app finds its server: `TESSERA_AUTH_URL` / `TESSERA_ANON_KEY`, else the
/// `plugins.tessera` section of `tauri.conf.json`, else the embedded emulator.
struct Settings {
    url: Option<String>,
    anon_key: Option<String>,
    callback_base: String,
    rest_url: Option<String>,
    logout_hook_url: Option<String>,
    backend: Option<String>,
}

fn settings<R: Runtime>(app: &AppHandle<R>) -> Settings {
    let section: Value = app
        .config()
        .plugins
        .0
        .get("tessera")
        .cloned()
        .unwrap_or(Value::Null);
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let from_conf = |key: &str| {
        section
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|v| !v.is_empty())
    };
    Settings {
        url: from_env("TESSERA_AUTH_URL").or_else(|| from_conf("authUrl")),
        anon_key: from_env("TESSERA_ANON_KEY").or_else(|| from_conf("anonKey")),
        callback_base: from_conf("callbackBase").unwrap_or_else(|| "tessera://auth".into()),
        rest_url: from_env("TESSERA_REST_URL").or_else(|| from_conf("restUrl")),
        logout_hook_url: from_env("TESSERA_LOGOUT_HOOK_URL").or_else(|| from_conf("logoutHookUrl")),
        backend: from_env("TESSERA_BACKEND").or_else(|| from_conf("backend")),
    }
}

/// Starts the embedded emulator (database in the app's data folder) and makes sure the demo
/// account exists.
async fn start_embedded<R: Runtime>(
    app: &AppHandle<R>,
) -> Result<gotrue_emulator::EmulatorHandle, String> {
    let dir = app
        .path()
        .app_data_dir()
        .map_err(|e| format!("no data folder: {e}"))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let port = std::env::var("TESSERA_EMULATOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(54329);
    let mut config = gotrue_emulator::Config {
        port,
        db: Some(dir.join("emulator.sqlite")),
        ..gotrue_emulator::Config::default()
    };
    let emulator = match gotrue_emulator::Emulator::start(config.clone()).await {
        Ok(e) => e,
        Err(gotrue_emulator::StartError::Bind { .. }) => {
            config.port = 0;
            gotrue_emulator::Emulator::start(config)
                .await
                .map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let demo = gotrue_emulator::NewUser {
        user_metadata: Some(json!({ "name": "Demo user" })),
        ..gotrue_emulator::NewUser::confirmed(DEMO_EMAIL, DEMO_PASSWORD)
    };
    match emulator.create_user(demo).await {
        Ok(_) => {}
        Err(e) if e.code == "email_exists" => {} // kept from an earlier start
        Err(e) => return Err(format!("cannot create the demo user: {e}")),
    }
    Ok(emulator)
}

/// Builds the engine for the app and registers it; restores the session in the background.
pub fn init<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    let settings = settings(app);
    let backend_kind: auth_core::BackendKind = settings
        .backend
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e: auth_core::AuthError| e.to_string())?;
    if backend_kind == auth_core::BackendKind::SuperTokens && settings.url.is_none() {
        return Err(
            "TESSERA_BACKEND=supertokens needs TESSERA_AUTH_URL: the app backend's API domain"
                .into(),
        );
    }
    let (url, anon_key, emulator, profile_default) = match settings.url {
        Some(url) => (url, settings.anon_key.unwrap_or_default(), None, "default"),
        None => {
            let emulator = tauri::async_runtime::block_on(start_embedded(app))?;
            (
                emulator.url().to_owned(),
                emulator.anon_key().to_owned(),
                Some(emulator),
                "embedded",
            )
        }
    };
    let backend = BackendInfo {
        url: url.clone(),
        embedded: emulator.is_some(),
        demo_email: emulator.as_ref().map(|_| DEMO_EMAIL.to_owned()),
        demo_password: emulator.as_ref().map(|_| DEMO_PASSWORD.to_owned()),
    };
    let mut cfg = AuthConfig::new(url, anon_key);
    cfg.profile = std::env::var("TESSERA_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| profile_default.into());
    cfg.callback_base = settings.callback_base;
    cfg.rest_url = settings.rest_url;
    cfg.logout_hook_url = settings.logout_hook_url;
    cfg.backend = backend_kind;
    cfg.lock_dir = Some(auth_core::default_lock_dir());
    cfg.user_agent = auth_core::user_agent("Tessera", &app.package_info().version.to_string());
    tracing::info!(url = %backend.url, embedded = backend.embedded, profile = %cfg.profile, "Tessera started");
    let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::for_platform(KEYRING_SERVICE));
    let client = AuthClient::new(cfg, store).map_err(|e| e.to_string())?;
    install(app, client, backend, emulator);
    Ok(())
}

/// Registers the state and starts the event bridge and the restore (also used by tests
/// with an engine of their own).
pub fn install<R: Runtime>(
    app: &AppHandle<R>,
    client: AuthClient,
    backend: BackendInfo,
    emulator: Option<gotrue_emulator::EmulatorHandle>,
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
        _emulator: emulator,
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

#[cfg(desktop)]
fn cold_start_links<R: Runtime>(app: &AppHandle<R>) -> Vec<String> {
    use tauri_plugin_deep_link::DeepLinkExt;
    match app.try_state::<tauri_plugin_deep_link::DeepLink<R>>() {
        Some(_) => app
            .deep_link()
            .get_current()
            .ok()
            .flatten()
            .unwrap_or_default()
            .iter()
            .map(|u| u.to_string())
            .collect(),
        None => Vec::new(),
    }
}

#[cfg(mobile)]
fn cold_start_links<R: Runtime>(app: &AppHandle<R>) -> Vec<String> {
    use tauri_plugin_deep_link::DeepLinkExt;
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
pub async fn handle_link<R: Runtime>(app: &AppHandle<R>, url: String) {
    let Some(state) = app.try_state::<AuthState>() else {
        return;
    };
    state.ready().await;
    match state.client.handle_callback(&url).await {
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
pub fn on_focus<R: Runtime>(app: &AppHandle<R>) {
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

pub fn open_in_browser<R: Runtime>(app: &AppHandle<R>, url: &str) -> Result<(), CommandError> {
    use tauri_plugin_opener::OpenerExt;
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| CommandError::new("browser_error", format!("cannot open the browser: {e}")))
}

/// Marks that the store plugin is registered (the app registers it; test apps may not).
#[derive(Debug)]
pub struct PreferencesStore;

fn store<R: Runtime>(app: &AppHandle<R>) -> Option<Arc<tauri_plugin_store::Store<R>>> {
    use tauri_plugin_store::StoreExt;
    app.try_state::<PreferencesStore>()?;
    app.store(PREFERENCES_FILE).ok()
}

pub fn load_preferences<R: Runtime>(app: &AppHandle<R>) -> Preferences {
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

pub fn save_preference<R: Runtime>(app: &AppHandle<R>, key: &str, value: Value) {
    if let Some(store) = store(app) {
        store.set(key, value);
        if let Err(e) = store.save() {
            tracing::warn!(error = %e, "cannot save preferences");
        }
    }
}

pub fn remember_email<R: Runtime>(app: &AppHandle<R>, email: &str) {
    save_preference(app, "lastEmail", json!(email.trim()));
}
