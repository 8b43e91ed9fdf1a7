//! The server `authctl server set` saved: `{url, anonKey}` in `authctl.json` in the user's
//! config folder (`$TESSERA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tessera`, else
//! `%APPDATA%\tessera`, else `~/.config/tessera`). The key is a project's public key, not
//! a secret; the file is still only the user's to read.

use std::io::Write;
use std::path::{Path, PathBuf};

use auth_core::AuthError;
use serde_json::{Value, json};

const FILE_NAME: &str = "authctl.json";

/// The saved server: the API root `probe` found and the key it was checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedServer {
    pub url: String,
    pub anon_key: String,
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where the saved server lives; `None` without a user folder (`TESSERA_CONFIG_DIR`,
/// `XDG_CONFIG_HOME`, `APPDATA` or `HOME`): never a shared folder such as `/tmp`, where
/// another user could plant a server of their own.
pub fn config_file() -> Option<PathBuf> {
    let dir = env_dir("TESSERA_CONFIG_DIR")
        .or_else(|| env_dir("XDG_CONFIG_HOME").map(|d| d.join("tessera")))
        .or_else(|| env_dir("APPDATA").map(|d| d.join("tessera")))
        .or_else(|| env_dir("HOME").map(|d| d.join(".config").join("tessera")))?;
    Some(dir.join(FILE_NAME))
}

/// [`config_file`], or the error that says how to give it one.
pub fn config_file_or_error() -> Result<PathBuf, AuthError> {
    config_file().ok_or_else(|| {
        AuthError::Config("no folder for authctl's settings: set HOME or TESSERA_CONFIG_DIR".into())
    })
}

fn config_error(path: &Path, what: &str, e: impl std::fmt::Display) -> AuthError {
    AuthError::Config(format!("{what} {}: {e}", path.display()))
}

/// The saved server, if any. A file that cannot be read is an error (not a silent switch
/// to another server); `authctl server forget` or `server set` replaces it.
pub fn load(path: &Path) -> Result<Option<SavedServer>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config_error(path, "cannot read", e)),
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        config_error(
            path,
            "cannot read the saved server (`authctl server forget` removes it) in",
            e,
        )
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| unreadable(&e))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::trim);
    match (field("url"), field("anonKey")) {
        (Some(url), Some(anon_key)) if !url.is_empty() => Ok(Some(SavedServer {
            url: url.to_owned(),
            anon_key: anon_key.to_owned(),
        })),
        _ => Err(unreadable(&"it has no url and anonKey")),
    }
}

/// Writes the saved server atomically: a temporary file next to it, then a rename.
pub fn save(path: &Path, server: &SavedServer) -> Result<(), AuthError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| config_error(dir, "cannot create", e))?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let value = json!({ "url": server.url, "anonKey": server.anon_key });
    let text = format!("{value:#}\n");
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(config_error(path, "cannot save", e));
    }
    Ok(())
}

/// Removes the saved server; whether there was one.
pub fn forget(path: &Path) -> Result<bool, AuthError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(config_error(path, "cannot remove", e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "authctl-saved-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("nested").join(FILE_NAME)
    }

    #[test]
    fn saves_loads_and_forgets() {
        let path = scratch();
        assert_eq!(load(&path).unwrap(), None);
        let server = SavedServer {
            url: "https://abc.supabase.co/auth/v1".into(),
            anon_key: "sb_publishable_abcd".into(),
        };
        save(&path, &server).unwrap();
        assert_eq!(load(&path).unwrap(), Some(server));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"anonKey\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        assert!(forget(&path).unwrap());
        assert!(!forget(&path).unwrap());
        assert_eq!(load(&path).unwrap(), None);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load(&path).unwrap_err().code(), "config_error");
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }
}
