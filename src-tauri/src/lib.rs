//! The Tessera app: its windows (from `tauri.conf.json`), the plugins it runs — the auth
//! integration is `tauri-plugin-tessera` — the embedded-server choice (`setup.rs`, cargo
//! feature `embedded-server`, on by default) and its log (`logging.rs`).
//! See ARCHITECTURE.md.

mod logging;
#[cfg(feature = "embedded-server")]
mod setup;
mod webview;

// A release build is a production app: the UI from the embedded assets through the app's
// own protocol, the production CSP, nothing of a dev build. `scripts/bench` (and the Tauri
// CLI's `tauri build`) pass `--features custom-protocol`.
#[cfg(all(not(debug_assertions), not(feature = "custom-protocol")))]
compile_error!("a release build of the app needs `--features custom-protocol`");

/// The app's entry point (desktop `main`, and the mobile entry point).
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let log = logging::init();
    let embedded_off = embedded_turned_off();

    let builder = tauri::Builder::default();
    // A second instance started with a URL hands it to the running one and exits (before
    // any other plugin starts: this one goes first). A phone starts one instance of an
    // app and hands links to it itself: the plugin is desktop-only (Cargo.toml).
    #[cfg(desktop)]
    let builder = builder.plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
        use tauri::Manager;
        if let Some(window) = app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.set_focus();
        }
    }));
    let builder = builder
        .plugin(logging::plugin(log))
        .plugin(webview::plugin())
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_store::Builder::default().build())
        .plugin(tauri_plugin_opener::init())
        .plugin(tessera_plugin(embedded_off));
    let builder = builder.setup(move |_app| {
        // Here rather than where it is decided: the log file is open by now.
        if cfg!(feature = "embedded-server") && embedded_off {
            tracing::info!("the embedded server is turned off (TESSERA_EMBEDDED)");
        }
        Ok(())
    });
    if let Err(e) = builder.run(tauri::generate_context!()) {
        #[cfg(desktop)]
        if is_failed_handover(&e.to_string()) {
            start_again_as_first_instance();
        }
        tracing::error!("Tessera could not start: {e}");
        std::process::exit(1);
    }
}

/// The auth plugin, with the embedded demo server when it is compiled in (cargo feature
/// `embedded-server`) and not turned off (`TESSERA_EMBEDDED=off`). Without it, a first
/// start with no server configured opens Settings.
#[cfg_attr(not(feature = "embedded-server"), allow(unused_variables))]
fn tessera_plugin<R: tauri::Runtime>(
    embedded_off: bool,
) -> tauri::plugin::TauriPlugin<R, Option<tauri_plugin_tessera::Config>> {
    let builder = tauri_plugin_tessera::Builder::new().with_preferences();
    #[cfg(feature = "embedded-server")]
    let builder = if embedded_off {
        builder
    } else {
        builder.embedded_server(setup::start_embedded)
    };
    builder.build()
}

/// `TESSERA_EMBEDDED=off` (or `0`, `false`, `no`, any case): no embedded server.
fn embedded_turned_off() -> bool {
    std::env::var("TESSERA_EMBEDDED").is_ok_and(|v| {
        ["off", "0", "false", "no"]
            .iter()
            .any(|off| v.trim().eq_ignore_ascii_case(off))
    })
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
    // "<owner>:<attempt>". On Unix the owner is this pid (exec keeps it), so only this
    // very process's restarts count: a program it starts later (a browser opening a link)
    // inherits the variable with another pid and gets its own three attempts. Elsewhere
    // the restart is a child process, so the count is carried as it is ("0:<attempt>").
    const ATTEMPT: &str = "TESSERA_HANDOVER_ATTEMPT";
    let owner = if cfg!(unix) { std::process::id() } else { 0 };
    let attempt: u32 = std::env::var(ATTEMPT)
        .ok()
        .and_then(|v| {
            let (who, n) = v.split_once(':')?;
            (who.parse::<u32>().ok()? == owner).then(|| n.parse().ok())?
        })
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
        .env(ATTEMPT, format!("{owner}:{}", attempt + 1));
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
    /// The webview's policy: nothing but the app's own files and its IPC; no plugins, no
    /// <base> rewrite, no form posts, no frames, not framed; prototypes frozen.
    #[test]
    fn the_webview_policy_is_locked_down() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).unwrap();
        let security = &conf["app"]["security"];
        assert_eq!(security["freezePrototype"], true);
        let csp = security["csp"].as_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        // The page may reach the IPC and the data proxy (`supabase://`), nothing else.
        assert!(
            csp.contains(
                "connect-src ipc: http://ipc.localhost supabase: http://supabase.localhost;"
            ),
            "{csp}"
        );
        assert!(
            security.get("devCsp").is_none(),
            "one policy for every build"
        );
    }

    /// The wall-clock timer on macOS (`DISPATCH_WALLTIME_NOW`, crates/wall-timer) needs
    /// macOS 10.14; Tauri's default minimum is 10.13.
    #[test]
    fn the_macos_minimum_has_wall_clock_timers() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).unwrap();
        let minimum = conf["bundle"]["macOS"]["minimumSystemVersion"]
            .as_str()
            .unwrap();
        let (major, minor) = minimum.split_once('.').unwrap();
        let version = (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap());
        assert!(version >= (10, 14), "{minimum}");
    }

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
