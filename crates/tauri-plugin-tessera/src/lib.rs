//! Tessera's Tauri integration as a plugin: the auth commands (`plugin:tessera|…`, thin
//! adapters over `auth-core`), every engine event sent to every window as
//! `auth:state-change`, deep links handed to the engine to be checked, and window focus —
//! on a phone, the app's resume — (validate with the server, re-check the schedule). All
//! auth logic lives in `auth-core`.
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
mod demo;
#[cfg(desktop)]
mod desktop_entry;
mod error;
mod folders;
mod proxy;
mod server;
mod state;

use std::any::Any;
use std::sync::{Arc, Mutex};

use auth_core::{AuthClient, KEYRING_SERVICE, KeyringStore, LinkOutcome};
use serde::Serialize;
use serde_json::{Value, json};
use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Emitter, Manager, RunEvent, Runtime, WindowEvent};

pub use command_names::COMMANDS;
pub use demo::{DemoMail, DemoMailView, DemoMailbox};
pub(crate) use demo::{demo_mail_link, demo_mailbox};
pub use error::CommandError;
pub use proxy::SCHEME as PROXY_SCHEME;
pub use server::SERVER_EVENT;
pub use state::AuthState;

use server::{Active, EmbeddedProvider};

/// The Tauri event every auth-state change is sent as, to every window.
pub const STATE_EVENT: &str = "auth:state-change";
/// The event a link that would sign in another account arrives as (an
/// `auth_core::AccountSwitch`): the UI asks the user, then calls
/// `auth_resolve_account_switch`.
pub const ACCOUNT_SWITCH_EVENT: &str = "auth:account-switch";
/// What a link did that changed no session, for the UI to say (`LinkOutcome`'s
/// `emailConfirmed`, `emailChangeWaiting`, `emailChanged`).
pub const LINK_EVENT: &str = "auth:link";

const PREFERENCES_FILE: &str = "preferences.json";

/// Which server the app talks to.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendInfo {
    /// Its API root; empty when no server is connected yet.
    pub url: String,
    /// The app's own embedded server (no server configured).
    pub embedded: bool,
    pub demo_email: Option<String>,
    pub demo_password: Option<String>,
    /// The build names its server (`plugins.tessera.authUrl` or `TESSERA_AUTH_URL`): it
    /// cannot be changed in the app.
    pub locked: bool,
    /// The app can go back to its embedded server.
    pub embedded_available: bool,
    /// The API key, masked (`sb_publishable_…f3Qa`): it is public, but no reason to show it.
    pub anon_key_hint: Option<String>,
    /// What the server offers (providers, sign-ups, confirmation), when known.
    pub server_settings: Option<auth_core::server::ServerInfo>,
    /// What the project's Redirect URLs must hold for the app's links to come back
    /// (`tessera://auth/callback**`).
    pub redirect_url: String,
}

/// Non-secret preferences (tauri-plugin-store).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub last_email: Option<String>,
    /// Sign out locally after this many minutes without activity (off when `None`).
    pub idle_sign_out_minutes: Option<u32>,
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
    /// The mails it sent, newest first (the demo mailbox view), when it can tell.
    pub mailbox: Option<DemoMailbox>,
    pub keep_alive: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for EmbeddedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

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

    /// The server to start when none is configured: called once, when it is first used
    /// (at start, or when the person goes back to it from a server of their own).
    pub fn embedded_server(
        mut self,
        start: impl Fn(&AppHandle<R>) -> Result<EmbeddedServer, String> + Send + Sync + 'static,
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
                commands::auth_check_server,
                commands::auth_set_server,
                commands::auth_reset_server,
                commands::auth_reset_password_for_email,
                commands::auth_pending_sign_outs,
                commands::auth_retry_sign_outs,
                commands::auth_demo_mailbox,
                commands::auth_open_demo_mail,
                commands::auth_resend_confirmation,
                commands::auth_activity,
                commands::auth_confirm_email_change,
            ])
            .register_asynchronous_uri_scheme_protocol(proxy::SCHEME, proxy::handle)
            .setup(move |app, api| {
                let settings = api.config().clone().unwrap_or_default().resolved();
                let servers = server::Servers {
                    settings,
                    embedded,
                    store: Arc::new(KeyringStore::for_platform(KEYRING_SERVICE)),
                    running: Mutex::new(None),
                };
                let (active, switchable) = match engine {
                    Some((client, backend)) => (server::Active::fixed(client, backend), false),
                    None => {
                        // Sign-in links must be able to come back.
                        watch_links(app)?;
                        let choice = servers.initial_choice(app, preferences);
                        let active = match servers.engine(app, choice) {
                            Ok(active) => active,
                            // The saved server cannot be used: start as if none were saved
                            // (Settings shows it), rather than not at all.
                            Err(e) if !servers.locked() => {
                                tracing::warn!(error = %e, "the saved server cannot be used");
                                servers.engine(app, servers.fallback_choice())?
                            }
                            Err(e) => return Err(e.into()),
                        };
                        (active, true)
                    }
                };
                tracing::info!(version = %app.package_info().version, "Tessera started");
                app.manage(servers);
                install(app, active, preferences, switchable);
                Ok(())
            })
            .on_event(|app, event| match event {
                #[cfg(desktop)]
                RunEvent::WindowEvent {
                    event: WindowEvent::Focused(true),
                    ..
                } => on_focus(app),
                // On a phone, coming back to the foreground (Android `onResume`, iOS
                // `willEnterForeground`) is that moment. (The runtime sends a focus event
                // then too; taking only this one checks once.)
                #[cfg(mobile)]
                RunEvent::WindowEvent {
                    event: WindowEvent::Resumed,
                    ..
                } => {
                    tracing::info!("resumed");
                    on_focus(app);
                }
                // Going to the background may be the last thing the app does (the OS can
                // end it without a word). Nothing is held back to write then: every
                // session write is one call to the secure store, committed when it
                // returns (chunked values by their manifest, written last), preferences
                // are saved as they are set, and an unanswered sign-out is already in the
                // durable outbox. A refresh in flight either saved its tokens or, if the
                // process is ended first, is retried from the stored ones at the next
                // start (the server accepts a just-rotated token within its reuse
                // interval). So a suspend starts nothing.
                #[cfg(mobile)]
                RunEvent::WindowEvent {
                    event: WindowEvent::Suspended,
                    ..
                } => tracing::info!("suspended"),
                _ => {}
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
    // Linux registers the scheme at run time unless an installed package's desktop entry
    // starts this executable for it; Windows only in debug builds (an installer registers
    // a release build). Off the start-up path: it reads the desktop's entries and runs
    // xdg-mime, and nothing waits for it.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    {
        let app = app.clone();
        tauri::async_runtime::spawn_blocking(move || desktop_entry::register_scheme(&app));
    }
    Ok(())
}

/// Registers the state and restores the session of the server in use.
fn install<R: Runtime>(app: &AppHandle<R>, active: Active, preferences: bool, switchable: bool) {
    app.manage(AuthState::new(active, preferences, switchable));
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        state::start_engine(&handle, 0).await;
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
pub(crate) async fn handle_link<R: Runtime>(app: &AppHandle<R>, url: String) {
    let Some(state) = app.try_state::<AuthState>() else {
        return;
    };
    state.ready().await;
    let Ok(client) = state.client() else {
        tracing::warn!("a deep link came while no server is connected; ignored");
        return;
    };
    let result = client.handle_callback(&url).await;
    announce_link(app, result);
}

/// Tells the UI what a link did, beyond the auth event the engine emits: an account
/// switch to agree to (`auth:account-switch`), or news that changes no session
/// (`auth:link`: an address confirmed too late to sign in, half or all of an email
/// change). The main window comes to the front.
pub(crate) fn announce_link<R: Runtime>(
    app: &AppHandle<R>,
    result: Result<LinkOutcome, auth_core::AuthError>,
) {
    match result {
        Ok(LinkOutcome::ConfirmSwitch { switch }) => {
            tracing::info!("deep link for another account: asking the user");
            if let Err(e) = app.emit(ACCOUNT_SWITCH_EVENT, &switch) {
                tracing::warn!(error = %e, "cannot ask about the account switch");
            }
        }
        Ok(
            outcome @ (LinkOutcome::EmailConfirmed { .. }
            | LinkOutcome::EmailChangeWaiting { .. }
            | LinkOutcome::EmailChanged { .. }),
        ) => {
            tracing::info!("deep link accepted");
            if let Err(e) = app.emit(LINK_EVENT, &outcome) {
                tracing::warn!(error = %e, "cannot tell the UI what the link did");
            }
        }
        Ok(_) => tracing::info!("deep link accepted"),
        Err(e) => tracing::warn!(code = e.code(), "deep link refused"),
    }
    if let Some(window) = app.get_webview_window("main") {
        #[cfg(desktop)]
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// A window got focus (on a phone: the app came back to the foreground): ask the server
/// whether the session is still alive (throttled), and let the engine re-check its
/// schedule (this also covers resume from sleep).
fn on_focus<R: Runtime>(app: &AppHandle<R>) {
    let Some(state) = app.try_state::<AuthState>() else {
        return;
    };
    let Ok(client) = state.client() else {
        return;
    };
    client.nudge();
    if !state.should_validate() {
        return;
    }
    tauri::async_runtime::spawn(async move {
        if let Err(e) = client.validate().await {
            tracing::debug!(
                code = e.code(),
                "validation on focus failed (kept the session)"
            );
        }
    });
}

/// Opens the system browser: the default browser on a desktop, Safari on iOS, and on
/// Android a Custom Tab (the user's own browser with its saved sign-ins, over the app —
/// what RFC 8252 recommends for OAuth). iOS gets Safari itself rather than the opener's
/// in-app browser (`SFSafariViewController`): that one would stay on screen after the
/// sign-in link came back to the app.
fn open_in_browser<R: Runtime>(app: &AppHandle<R>, url: &str) -> Result<(), CommandError> {
    use tauri_plugin_opener::OpenerExt;
    let with = cfg!(target_os = "android").then_some("inAppBrowser");
    app.opener()
        .open_url(url, with)
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

/// The idle sign-out preference, given to the engine (one timer for every window).
pub(crate) fn apply_idle_timeout<R: Runtime>(app: &AppHandle<R>, client: &AuthClient) {
    let minutes = load_preferences(app).idle_sign_out_minutes;
    client.set_idle_timeout(minutes.map(|m| std::time::Duration::from_secs(u64::from(m) * 60)));
}

pub(crate) fn remember_email<R: Runtime>(app: &AppHandle<R>, email: &str) {
    save_preference(app, "lastEmail", json!(email.trim()));
}
