//! The app's log: to stderr (a terminal, the test harness), and to a file in the
//! platform's log folder, because an installed app has no terminal (a Windows release
//! build has no console at all). `tracing-appender` starts a file a day and keeps the
//! last 7 (`tessera.YYYY-MM-DD.log`; no size cap: the app logs a few lines per sign-in).
//! The level comes from `TESSERA_LOG` (an `EnvFilter`, default `info`); in the file, other
//! crates (HTTP, TLS, windowing) stay at `info` even when it asks for more, so a debug
//! session leaves only Tessera's own detail on disk. A panic is logged too.
//!
//! Tokens never reach a log: they are typed secrets whose `Debug` and `Display` redact
//! (`auth_core::secret`), and the end-to-end secrets scan searches the log folder too.
//!
//! The folder (`app_log_dir`: `~/.local/share/<identifier>/logs` on Linux,
//! `~/Library/Logs/<identifier>` on macOS, `%LOCALAPPDATA%\<identifier>\logs` on Windows)
//! is known only once Tauri has the app's config, so the file layer starts empty and is
//! filled in by [`plugin`], registered right after single-instance: what the other
//! plugins and the app log at start is in the file.

use std::path::Path;

use tauri::plugin::TauriPlugin;
use tauri::{Manager, Runtime};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

type FileLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// How many daily files are kept.
const KEEP_DAYS: usize = 7;

/// Tessera's own crates: in the file at the level `TESSERA_LOG` asks for.
const OWN_CRATES: [&str; 4] = [
    "tessera_lib",
    "tauri_plugin_tessera",
    "auth_core",
    "gotrue_emulator",
];

/// The installed subscriber's file layer, empty until [`plugin`] opens the folder.
pub struct Log {
    file: reload::Handle<Option<FileLayer>, Registry>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").finish_non_exhaustive()
    }
}

/// Installs the global subscriber: stderr now, the log folder once the app is built.
pub fn init() -> Log {
    let (file, handle) = reload::Layer::new(None::<FileLayer>);
    // Registered with the subscriber now (a per-layer filter must be), around the
    // reloadable layer the folder's writer goes into later.
    let own = OWN_CRATES
        .iter()
        .fold(Targets::new().with_default(LevelFilter::INFO), |t, c| {
            t.with_target(*c, LevelFilter::TRACE)
        });
    let file = file.with_filter(own);
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(file)
        .with(EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with(stderr)
        .init();
    // An installed app has no stderr to show a panic on: the log file gets it too.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        previous(info);
    }));
    Log { file: handle }
}

impl Log {
    /// Also writes the log to daily files in `dir` (created, private to this user).
    fn to_folder(&self, dir: &Path) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", dir.display());
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            // Made private as it is made (the folders it creates on the way too).
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(err)?;
        let meta = std::fs::symlink_metadata(dir).map_err(err)?;
        if !meta.is_dir() {
            return Err(format!("{} is not a folder", dir.display()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(err)?;
            }
        }
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix("tessera")
            .filename_suffix("log")
            .max_log_files(KEEP_DAYS)
            .build(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let layer: FileLayer = Box::new(fmt::layer().with_writer(appender).with_ansi(false));
        self.file
            .modify(|file| *file = Some(layer))
            .map_err(|e| e.to_string())
    }
}

/// Opens the log folder when the app starts. Register it before the other plugins.
pub fn plugin<R: Runtime>(log: Log) -> TauriPlugin<R> {
    tauri::plugin::Builder::new("tessera-log")
        .setup(move |app, _api| {
            match app.path().app_log_dir() {
                Ok(dir) => match log.to_folder(&dir) {
                    Ok(()) => tracing::info!(folder = %dir.display(), "logging to a file"),
                    Err(e) => tracing::warn!("no log file: {e}"),
                },
                Err(e) => tracing::warn!("no log folder: {e}"),
            }
            Ok(())
        })
        .build()
}
