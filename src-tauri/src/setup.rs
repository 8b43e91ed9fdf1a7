//! The app's embedded-server choice: with no server configured, Tessera runs the GoTrue
//! emulator itself (its database in the app's data folder) with a demo account, so the app
//! works offline with no account.

use serde_json::json;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_tessera::EmbeddedServer;

/// The demo account created in the embedded emulator on first run.
pub const DEMO_EMAIL: &str = "demo@tessera.dev";
pub const DEMO_PASSWORD: &str = "tessera-demo";

/// Starts the embedded emulator and makes sure the demo account exists.
pub fn start_embedded<R: Runtime>(app: &AppHandle<R>) -> Result<EmbeddedServer, String> {
    let dir = app
        .path()
        .app_data_dir()
        .map_err(|e| format!("no data folder: {e}"))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let port = std::env::var("TESSERA_EMULATOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(54329);
    let config = gotrue_emulator::Config {
        port,
        db: Some(dir.join("emulator.sqlite")),
        ..gotrue_emulator::Config::default()
    };
    let emulator = tauri::async_runtime::block_on(start(config))?;
    Ok(EmbeddedServer {
        url: emulator.url().to_owned(),
        anon_key: emulator.anon_key().to_owned(),
        demo: Some((DEMO_EMAIL.to_owned(), DEMO_PASSWORD.to_owned())),
        keep_alive: Box::new(emulator),
    })
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
