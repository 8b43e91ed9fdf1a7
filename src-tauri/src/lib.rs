//! The Tessera app: a thin Tauri shell over `auth-core`. Commands adapt IPC calls to the
//! engine, the engine's events go to every window as `auth:state-change`, deep links go to
//! the engine to be checked. See `auth/` and ARCHITECTURE.md.

pub mod auth;

use tauri::{Manager, Runtime};

/// Registers the commands (shared by the app and the `tauri::test` suites).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        auth::commands::auth_state,
        auth::commands::auth_backend,
        auth::commands::auth_sign_up,
        auth::commands::auth_sign_in_with_password,
        auth::commands::auth_sign_in_anonymously,
        auth::commands::auth_sign_in_with_otp,
        auth::commands::auth_verify_otp,
        auth::commands::auth_sign_in_with_oauth,
        auth::commands::auth_sign_out,
        auth::commands::auth_refresh,
        auth::commands::auth_user,
        auth::commands::auth_update_user,
        auth::commands::auth_mfa_factors,
        auth::commands::auth_mfa_enroll,
        auth::commands::auth_mfa_verify,
        auth::commands::auth_mfa_unenroll,
        auth::commands::auth_preferences,
        auth::commands::auth_set_preferences,
        auth::commands::auth_open_window,
        auth::commands::auth_list_sessions,
        auth::commands::auth_revoke_session,
    ])
}

/// The app's entry point (desktop `main`, and the mobile entry point).
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let mut builder = tauri::Builder::default();
    // A second instance started with a URL hands it to the running one and exits.
    #[cfg(desktop)]
    {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }));
    }
    let builder = builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_store::Builder::default().build())
        .manage(auth::PreferencesStore)
        .plugin(tauri_plugin_opener::init())
        .setup(|app| {
            let handle = app.handle().clone();
            {
                use tauri_plugin_deep_link::DeepLinkExt;
                let links = handle.clone();
                app.deep_link().on_open_url(move |event| {
                    for url in event.urls() {
                        let app = links.clone();
                        let url = url.to_string();
                        tauri::async_runtime::spawn(async move { auth::handle_link(&app, url).await });
                    }
                });
                // Linux and Windows register the scheme at run time (dev builds included).
                #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
                if let Err(e) = app.deep_link().register_all() {
                    tracing::warn!(error = %e, "cannot register the tessera:// scheme with the desktop");
                }
            }
            auth::init(&handle).map_err(|e| -> Box<dyn std::error::Error> { e.into() })?;
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Focused(true) = event {
                auth::on_focus(window.app_handle());
            }
        });
    if let Err(e) = with_commands(builder).run(tauri::generate_context!("../tauri.conf.json")) {
        tracing::error!("Tessera could not start: {e}");
        std::process::exit(1);
    }
}
