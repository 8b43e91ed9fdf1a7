//! Which server the app talks to, and changing it while the app runs.
//!
//! In order: a server the build locks (`plugins.tessera.authUrl` in `tauri.conf.json`, or
//! `TESSERA_AUTH_URL`), shown read-only; else the one the person saved in Settings →
//! Server (`settings.json` through tauri-plugin-store: not secret, the key is public);
//! else the app's embedded server, started only when it is the one in use; else none, and
//! the first screen asks for a project.
//!
//! Each server has its own stored session (keys are `<profile>@<issuer>.…`), so a switch
//! stops one engine and starts another: the UI is told `INITIAL_SESSION` of the new one
//! (its session restored, if it has one). Nothing is sent to the old server and nothing
//! stored is deleted: switching back restores its session.

use std::sync::Arc;
use std::time::Duration;

use auth_core::proxy::{DataProxy, ProxyConfig};
use auth_core::server::ServerInfo;
use auth_core::{AuthClient, AuthConfig, BackendKind, SecretStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::{AuthState, BackendInfo, CommandError, Config, EMBEDDED_SERVER_ID, EmbeddedServer};

/// The event a change of server arrives as (a [`BackendInfo`]), in every window.
pub const SERVER_EVENT: &str = "auth:server-change";

pub(crate) const SETTINGS_FILE: &str = "settings.json";
const SAVED_KEY: &str = "server";
/// How long the check of a server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server the person chose, as kept in `settings.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedServer {
    /// The API root the check found (`https://<ref>.supabase.co/auth/v1`).
    url: String,
    anon_key: String,
    /// What the server offered when last checked (the sign-in screen follows it offline).
    #[serde(default)]
    info: Option<ServerInfo>,
}

pub(crate) type EmbeddedProvider<R> =
    Box<dyn Fn(&AppHandle<R>) -> Result<EmbeddedServer, String> + Send + Sync + 'static>;

/// What the plugin needs to make an engine for any server.
pub(crate) struct Servers<R: Runtime> {
    pub settings: Config,
    pub embedded: Option<EmbeddedProvider<R>>,
    pub store: Arc<dyn SecretStore>,
    /// The embedded server once started (it runs until the app quits).
    pub running: std::sync::Mutex<Option<Arc<EmbeddedServer>>>,
}

/// The engine in use and what the UI is told about its server.
pub(crate) struct Active {
    pub client: Option<AuthClient>,
    /// The data proxy of this engine (the `supabase` scheme).
    pub proxy: Option<Arc<DataProxy>>,
    pub backend: BackendInfo,
    /// Counts switches: an event bridge of an older engine stops forwarding.
    pub generation: u64,
}

impl Active {
    /// An engine made by the caller (tests): it cannot be switched.
    pub fn fixed(client: AuthClient, backend: BackendInfo) -> Self {
        Self {
            proxy: data_proxy(&client),
            client: Some(client),
            backend,
            generation: 0,
        }
    }
}

/// The engine's data proxy (none for a server it cannot serve, e.g. a bad URL).
fn data_proxy(client: &AuthClient) -> Option<Arc<DataProxy>> {
    match DataProxy::new(client.clone(), ProxyConfig::default()) {
        Ok(proxy) => Some(Arc::new(proxy)),
        Err(e) => {
            tracing::warn!(code = e.code(), "no data proxy for this server");
            None
        }
    }
}

/// Which server to use, by the order in the module's description.
pub(crate) enum Choice {
    Locked {
        url: String,
        anon_key: String,
    },
    Saved {
        url: String,
        anon_key: String,
        info: Option<ServerInfo>,
    },
    Embedded,
    None,
}

impl<R: Runtime> Servers<R> {
    pub fn locked(&self) -> bool {
        self.settings.auth_url.is_some()
    }

    /// The server to use at start.
    pub fn initial_choice(&self, app: &AppHandle<R>, preferences: bool) -> Choice {
        if let Some(url) = &self.settings.auth_url {
            return Choice::Locked {
                url: url.clone(),
                anon_key: self.settings.anon_key.clone().unwrap_or_default(),
            };
        }
        if let Some(saved) = preferences.then(|| saved(app)).flatten() {
            return Choice::Saved {
                url: saved.url,
                anon_key: saved.anon_key,
                info: saved.info,
            };
        }
        self.fallback_choice()
    }

    /// What to use when no server is saved or the saved one cannot be used (a broken
    /// `settings.json`): the embedded server, else none.
    pub fn fallback_choice(&self) -> Choice {
        if self.embedded.is_some() {
            Choice::Embedded
        } else {
            Choice::None
        }
    }

    /// An engine for `choice` (none for [`Choice::None`]), and what the UI is told.
    pub fn engine(&self, app: &AppHandle<R>, choice: Choice) -> Result<Active, String> {
        let backend_kind: BackendKind = self
            .settings
            .backend
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e: auth_core::AuthError| e.to_string())?;
        let callback_base = self
            .settings
            .callback_base
            .clone()
            .unwrap_or_else(|| "tessera://auth".into());
        let mut backend = BackendInfo {
            locked: self.locked(),
            embedded_available: self.embedded.is_some() && !self.locked(),
            redirect_url: auth_core::redirect_allow_list_entry(&callback_base),
            ..BackendInfo::default()
        };
        // The embedded server, once started, is kept running by `running` (below).
        let (url, anon_key, profile) = match choice {
            Choice::None => {
                return Ok(Active {
                    client: None,
                    proxy: None,
                    backend,
                    generation: 0,
                });
            }
            Choice::Locked { url, anon_key } => (url, anon_key, "default"),
            Choice::Saved {
                url,
                anon_key,
                info,
            } => {
                backend.server_settings = info;
                (url, anon_key, "default")
            }
            Choice::Embedded => {
                let server = self.start_embedded(app)?;
                backend.embedded = true;
                backend.demo_email = server.demo.as_ref().map(|(email, _)| email.clone());
                backend.demo_password = server.demo.as_ref().map(|(_, p)| p.clone());
                (server.url.clone(), server.anon_key.clone(), "embedded")
            }
        };
        if backend_kind == BackendKind::SuperTokens && !backend.locked {
            return Err(
                "TESSERA_BACKEND=supertokens needs TESSERA_AUTH_URL: the app backend's API \
                 domain"
                    .into(),
            );
        }
        // A secret key is never used, whoever configured it (the build, `settings.json`,
        // the environment): it bypasses every access rule.
        if backend_kind == BackendKind::GoTrue {
            auth_core::server::refuse_secret_key(&anon_key).map_err(|e| e.to_string())?;
        }
        backend.url = url.clone();
        backend.anon_key_hint =
            Some(auth_core::server::mask_key(&anon_key)).filter(|m| !m.is_empty());
        let mut cfg = AuthConfig::new(url, anon_key);
        cfg.profile = std::env::var("TESSERA_PROFILE")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| profile.into());
        cfg.callback_base = callback_base;
        cfg.rest_url = self.settings.rest_url.clone().filter(|_| backend.locked);
        // The build's own backend is told of sign-outs of the build's own server only: the
        // access token of a server the person chose must not go to it.
        cfg.logout_hook_url = self
            .settings
            .logout_hook_url
            .clone()
            .filter(|_| backend.locked);
        cfg.backend = backend_kind;
        if backend.embedded {
            // Its port may change (54329 busy): its sessions belong to it, not to the port.
            cfg.server_id = Some(EMBEDDED_SERVER_ID.into());
        }
        cfg.lock_dir = Some(crate::folders::lock_dir(app));
        cfg.user_agent = auth_core::user_agent("Tessera", &app.package_info().version.to_string());
        tracing::info!(url = %backend.url, embedded = backend.embedded, profile = %cfg.profile, "auth server");
        let client = AuthClient::new(cfg, self.store.clone()).map_err(|e| e.to_string())?;
        Ok(Active {
            proxy: data_proxy(&client),
            client: Some(client),
            backend,
            generation: 0,
        })
    }

    /// The embedded server, started on first use.
    fn start_embedded(&self, app: &AppHandle<R>) -> Result<Arc<EmbeddedServer>, String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = running.as_ref() {
            return Ok(server.clone());
        }
        let start = self
            .embedded
            .as_ref()
            .ok_or("this build has no embedded server")?;
        let server = Arc::new(start(app)?);
        *running = Some(server.clone());
        Ok(server)
    }
}

fn settings_store<R: Runtime>(app: &AppHandle<R>) -> Option<Arc<tauri_plugin_store::Store<R>>> {
    use tauri_plugin_store::StoreExt;
    app.store(SETTINGS_FILE).ok()
}

fn saved<R: Runtime>(app: &AppHandle<R>) -> Option<SavedServer> {
    let value = settings_store(app)?.get(SAVED_KEY)?;
    match serde_json::from_value::<SavedServer>(value) {
        Ok(saved) if !saved.url.trim().is_empty() => Some(saved),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "the saved server in settings.json cannot be read; ignored");
            None
        }
    }
}

fn save<R: Runtime>(app: &AppHandle<R>, server: Option<&SavedServer>) -> Result<(), CommandError> {
    let store = settings_store(app)
        .ok_or_else(|| CommandError::new("settings_error", "The settings cannot be opened."))?;
    match server {
        Some(server) => store.set(SAVED_KEY, json!(server)),
        None => {
            store.delete(SAVED_KEY);
        }
    }
    store.save().map_err(|e| {
        CommandError::new(
            "settings_error",
            format!("The settings cannot be saved: {e}"),
        )
    })
}

/// Checks a server as the person typed it (see `auth_core::server::probe`).
pub(crate) async fn check(url: &str, anon_key: &str) -> Result<ServerInfo, CommandError> {
    Ok(auth_core::server::probe(url, anon_key, PROBE_TIMEOUT).await?)
}

/// Checks, saves and switches to the server the person typed.
pub(crate) async fn set<R: Runtime>(
    app: &AppHandle<R>,
    state: &AuthState,
    url: &str,
    anon_key: &str,
) -> Result<BackendInfo, CommandError> {
    refuse_if_locked(state)?;
    let info = check(url, anon_key).await?;
    let saved = SavedServer {
        url: info.url.clone(),
        anon_key: anon_key.trim().to_owned(),
        info: Some(info.clone()),
    };
    let choice = Choice::Saved {
        url: saved.url.clone(),
        anon_key: saved.anon_key.clone(),
        info: Some(info),
    };
    switch(app, state, choice, Some(saved)).await
}

/// Forgets the saved server and goes back to the embedded one (or to none).
pub(crate) async fn forget<R: Runtime>(
    app: &AppHandle<R>,
    state: &AuthState,
) -> Result<BackendInfo, CommandError> {
    refuse_if_locked(state)?;
    let choice = app.state::<Servers<R>>().fallback_choice();
    switch(app, state, choice, None).await
}

pub(crate) fn refuse_if_locked(state: &AuthState) -> Result<(), CommandError> {
    if state.backend().locked || !state.can_switch() {
        return Err(CommandError::new(
            "server_locked",
            "This app is built for one server; it cannot be changed here.",
        ));
    }
    Ok(())
}

/// Saves the choice (`saved`: the new server, `None`: forget it), stops the engine in use
/// and starts one for `choice` (its session restored). Refused while the engine in use
/// still owes its server a sign-out or holds a refreshed session it could not save: that
/// work belongs to that server and would otherwise wait until the person came back to it.
async fn switch<R: Runtime>(
    app: &AppHandle<R>,
    state: &AuthState,
    choice: Choice,
    saved: Option<SavedServer>,
) -> Result<BackendInfo, CommandError> {
    let _one_at_a_time = state.switching.lock().await;
    if let Ok(client) = state.client() {
        let waiting = client
            .pending_revocations()
            .await
            .map(|p| p.len())
            .unwrap_or(0);
        if waiting > 0 {
            return Err(CommandError::new(
                "sign_outs_pending",
                format!(
                    "{waiting} sign-out(s) still waiting to reach {}. Try again once delivered \
                     (\u{201c}Try again now\u{201d}), so that no session is left alive there.",
                    state.backend().url
                ),
            ));
        }
        if client.has_unsaved_session() {
            return Err(CommandError::new(
                "session_unsaved",
                "The session could not be saved to the keyring yet; unlock the keyring and try again.",
            ));
        }
    }
    save(app, saved.as_ref())?;
    let handle = app.clone();
    // Making an engine may start the embedded server, which blocks.
    let active = tauri::async_runtime::spawn_blocking(move || {
        handle.state::<Servers<R>>().engine(&handle, choice)
    })
    .await
    .map_err(|e| CommandError::new("server_error", e.to_string()))?
    .map_err(|e| CommandError::new("server_error", e))?;
    let backend = state.install_engine(app, active).await;
    Ok(backend)
}

/// Asks the server in use what it offers (providers, sign-ups, confirmation) and tells the
/// UI; a saved server's answer is kept for offline starts. Quietly keeps the last answer
/// when the server cannot be reached.
pub(crate) async fn refresh_info<R: Runtime>(app: &AppHandle<R>, generation: u64) {
    let state = app.state::<AuthState>();
    let backend = state.backend();
    let Some(key) = state.anon_key() else {
        return;
    };
    if backend.url.is_empty() || state.is_supertokens() {
        return;
    }
    let info = match auth_core::server::probe(&backend.url, &key, PROBE_TIMEOUT).await {
        Ok(info) => info,
        Err(e) => {
            tracing::info!(code = e.code(), "the server's settings could not be read");
            return;
        }
    };
    let Some(updated) = state.update_server_settings(generation, info.clone()) else {
        return;
    };
    if !updated.embedded
        && !updated.locked
        && let Some(mut saved) = saved(app)
    {
        saved.info = Some(info);
        let _ = save(app, Some(&saved));
    }
    if let Err(e) = app.emit(SERVER_EVENT, &updated) {
        tracing::warn!(error = %e, "cannot tell the UI about the server");
    }
}
