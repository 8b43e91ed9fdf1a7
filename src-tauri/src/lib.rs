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
        #[cfg(desktop)]
        if is_failed_handover(&e.to_string()) {
            start_again_as_first_instance();
        }
        tracing::error!("Tessera could not start: {e}");
        std::process::exit(1);
    }
}

/// The single-instance plugin found a running instance but could not hand it our
/// arguments: that instance was quitting (it held the name, then left the bus without
/// answering). This happens when the app is started again while the last one is closing.
#[cfg(desktop)]
fn is_failed_handover(error: &str) -> bool {
    error.contains("single-instance") && error.contains("failed to forward arguments")
}

/// Starts this program again with the same arguments (a deep link among them is not lost):
/// with the quitting instance gone, it becomes the running one. At most three times, a
/// little later each time, so a running instance that never answers still ends in an error.
#[cfg(desktop)]
fn start_again_as_first_instance() {
    const ATTEMPT: &str = "TESSERA_HANDOVER_ATTEMPT";
    let attempt: u32 = std::env::var(ATTEMPT)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if attempt >= 3 {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    tracing::warn!(
        attempt = attempt + 1,
        "the running instance quit while we handed it our arguments; starting again"
    );
    std::thread::sleep(std::time::Duration::from_millis(
        200 * u64::from(attempt + 1),
    ));
    let mut command = std::process::Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .env(ATTEMPT, (attempt + 1).to_string());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = command.exec(); // returns only if it failed
        tracing::error!(error = %e, "could not start again");
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => tracing::error!(error = %e, "could not start again"),
    }
}

#[cfg(all(test, desktop))]
mod tests {
    #[test]
    fn only_a_failed_single_instance_handover_starts_again() {
        assert!(super::is_failed_handover(
            "failed to initialize plugin `single-instance`: failed to forward arguments to the \
             running instance: org.freedesktop.DBus.Error.NoReply: Message recipient disconnected"
        ));
        assert!(!super::is_failed_handover(
            "failed to initialize plugin `deep-link`: something else"
        ));
    }
}
