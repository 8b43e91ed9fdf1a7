//! The app's folders, from Tauri's path resolver: where the engine keeps its lock files
//! and the signed-out marker. On a phone they are inside the app's sandbox (an Android app
//! has no `HOME` or `TMPDIR` up to Android 12, and the shared temp folder is not
//! writable); on a desktop they are what `authctl` computes too, so that both lock the
//! same files.

use std::path::PathBuf;

use auth_core::AppDirs;
use tauri::{AppHandle, Manager, Runtime};

/// The folders the engine's lock folder is chosen from ([`auth_core::lock_dir`]).
pub(crate) fn app_dirs<R: Runtime>(app: &AppHandle<R>) -> AppDirs {
    let path = app.path();
    // Tauri's resolver has no runtime folder on Android.
    #[cfg(not(target_os = "android"))]
    let runtime = path.runtime_dir().ok();
    #[cfg(target_os = "android")]
    let runtime = None;
    let app_cache = match path.app_cache_dir() {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!(error = %e, "the app's cache folder is unknown");
            None
        }
    };
    AppDirs { runtime, app_cache }
}

/// The engine's lock folder for this app.
pub(crate) fn lock_dir<R: Runtime>(app: &AppHandle<R>) -> PathBuf {
    auth_core::lock_dir(&app_dirs(app))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_engine_gets_the_folders_of_tauris_path_resolver() {
        let app = tauri::test::mock_app();
        let handle = app.handle();
        let dirs = app_dirs(handle);
        let cache = handle.path().app_cache_dir().unwrap();
        // The app's own folder, named by its identifier (not a shared `tessera` folder).
        assert!(cache.ends_with(&handle.config().identifier), "{cache:?}");
        assert_eq!(dirs.app_cache, Some(cache.clone()));
        #[cfg(not(target_os = "android"))]
        assert_eq!(dirs.runtime, handle.path().runtime_dir().ok());
        // Without a runtime folder (a phone, macOS, Windows) the locks are the app's own.
        let phone = AppDirs {
            runtime: None,
            ..dirs
        };
        if std::env::var_os("TESSERA_LOCK_DIR").is_none() {
            assert_eq!(auth_core::lock_dir(&phone), cache.join("locks"));
        }
    }
}
