//! The app's embedded-server choice: with no server configured, Tessera runs the GoTrue
//! emulator itself, in its embedded mode (`gotrue_emulator::Config::embedded`: no test
//! routes, no admin API, loopback `Host` only, JSON only, tokens hashed at rest), with its
//! database in the app's data folder (`0700`), a JWT secret of this install kept in the OS
//! keyring, and a demo account, so the app works offline with no account.

use std::sync::Arc;
use std::time::Duration;

use auth_core::{KEYRING_SERVICE, KeyringStore, SecretStore, Store};
use serde_json::json;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_tessera::{DemoMail, EmbeddedServer};

/// The demo account created in the embedded emulator on first run.
pub const DEMO_EMAIL: &str = "demo@tessera.dev";
pub const DEMO_PASSWORD: &str = "tessera-demo";

/// The keyring entry (service `tessera`) holding the embedded server's JWT secret.
pub const SECRET_ENTRY: &str = "embedded-server.jwt-secret";

/// How long the keyring may take to give the secret (it may be asking to be unlocked).
const KEYRING_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the embedded emulator and makes sure the demo account exists.
pub fn start_embedded<R: Runtime>(app: &AppHandle<R>) -> Result<EmbeddedServer, String> {
    let dir = app
        .path()
        .app_data_dir()
        .map_err(|e| format!("no data folder: {e}"))?;
    private_dir(&dir)?;
    let port = std::env::var("TESSERA_EMULATOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(54329);
    let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::for_platform(KEYRING_SERVICE));
    let emulator = tauri::async_runtime::block_on(async move {
        let secret = install_secret(&Store::new(store, KEYRING_TIMEOUT)).await;
        let config = gotrue_emulator::Config {
            // The demo's mails carry a code beside the link, as a project whose templates
            // show `{{ .Token }}` sends them, so both ways can be tried offline.
            mail_templates: gotrue_emulator::MailTemplates::with_codes(),
            ..gotrue_emulator::Config::embedded(secret, dir.join("emulator.sqlite"), port)
        };
        start(config).await
    })?;
    let emulator = Arc::new(emulator);
    let mail = emulator.clone();
    Ok(EmbeddedServer {
        url: emulator.url().to_owned(),
        // The new key kind (`sb_publishable_…`), as a current Supabase project gives.
        anon_key: emulator
            .publishable_key()
            .unwrap_or(emulator.anon_key())
            .to_owned(),
        demo: Some((DEMO_EMAIL.to_owned(), DEMO_PASSWORD.to_owned())),
        mailbox: Some(Box::new(move || mailbox(&mail))),
        keep_alive: Box::new(emulator),
    })
}

/// The embedded server's sent mail, newest first.
fn mailbox(emulator: &gotrue_emulator::EmulatorHandle) -> Result<Vec<DemoMail>, String> {
    let mut mails: Vec<DemoMail> = emulator
        .mail_for(None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|m| DemoMail {
            id: m.id,
            to: m.to,
            subject: m.subject,
            kind: m.mail_type,
            code: m.otp.unwrap_or_default(),
            link: m.links.into_iter().next(),
            sent_at: m.created_at,
        })
        .collect();
    mails.reverse();
    Ok(mails)
}

/// The data folder, created if missing, readable by this user only (Unix: `0700`).
fn private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
    }
    Ok(())
}

/// This install's JWT secret: the one in the keyring, or a new random one saved there.
/// If the keyring cannot be read or written, a secret for this run only (the server's
/// refresh tokens do not depend on it, so a stored session survives the next start).
async fn install_secret(store: &Store) -> String {
    match store.load(SECRET_ENTRY).await {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(secret) if secret.len() >= 64 => return secret,
            _ => tracing::warn!("the embedded server's secret in the keyring is malformed"),
        },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(code = e.code(), "cannot read the embedded server's secret");
            return gotrue_emulator::new_jwt_secret();
        }
    }
    let secret = gotrue_emulator::new_jwt_secret();
    if let Err(e) = store.save(SECRET_ENTRY, secret.clone().into_bytes()).await {
        tracing::warn!(code = e.code(), "cannot keep the embedded server's secret");
    }
    secret
}

async fn start(
    mut config: gotrue_emulator::Config,
) -> Result<gotrue_emulator::EmulatorHandle, String> {
    let emulator = match gotrue_emulator::Emulator::start(config.clone()).await {
        Ok(e) => e,
        // The usual port is taken (another copy of the app, a test): any free one.
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

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::MemoryStore;

    #[tokio::test]
    async fn the_secret_is_made_once_kept_in_the_store_and_reused() {
        let memory = Arc::new(MemoryStore::new());
        let store = Store::new(memory.clone(), KEYRING_TIMEOUT);
        let first = install_secret(&store).await;
        assert_eq!(first.len(), 64);
        assert_ne!(first, gotrue_emulator::DEFAULT_JWT_SECRET);
        assert_eq!(install_secret(&store).await, first);
        assert_eq!(memory.saves(), 1);
        assert_eq!(memory.load(SECRET_ENTRY).unwrap(), Some(first.into_bytes()));
    }

    #[tokio::test]
    async fn a_store_that_refuses_gives_a_secret_for_this_run() {
        let memory = Arc::new(MemoryStore::new());
        memory.set_fail_saves(true);
        let store = Store::new(memory.clone(), KEYRING_TIMEOUT);
        let one = install_secret(&store).await;
        let two = install_secret(&store).await;
        assert_eq!((one.len(), two.len()), (64, 64));
        assert_ne!(one, two);
        assert_eq!(memory.saves(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn the_data_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dev.tessera.desktop");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
