//! The signed-out marker: a sign-out the user asked for is never undone by a restart.
//!
//! When the store cannot delete the session after a user's sign-out (a keyring refusing
//! writes), the session's id goes into a small file beside the lock files
//! (`<profile>.signed-out`, `0600`, not secret: a session id is no credential). A start
//! that finds the stored session named there removes it instead of restoring it, and the
//! revocation is owed again. Without a lock folder (one process, tests) the marker lives
//! in memory.

use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug)]
pub(super) struct SignedOutMarker {
    path: Option<PathBuf>,
    memory: Mutex<Vec<String>>,
}

impl SignedOutMarker {
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            memory: Mutex::new(Vec::new()),
        }
    }

    fn ids(&self) -> Vec<String> {
        match &self.path {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| s.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            None => self
                .memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    fn write(&self, ids: &[String]) {
        let Some(path) = &self.path else {
            *self.memory.lock().unwrap_or_else(|e| e.into_inner()) = ids.to_vec();
            return;
        };
        let result = if ids.is_empty() {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        } else {
            write_private(path, &ids.join("\n"))
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not update the signed-out marker");
        }
    }

    /// Whether the user signed `session_id` out.
    pub(super) fn holds(&self, session_id: &str) -> bool {
        !session_id.is_empty() && self.ids().iter().any(|m| m == session_id)
    }

    pub(super) fn add(&self, session_id: &str) {
        let mut ids = self.ids();
        if session_id.is_empty() || ids.iter().any(|m| m == session_id) {
            return;
        }
        ids.push(session_id.to_owned());
        self.write(&ids);
    }

    /// The stored copy is gone: the mark is no longer needed.
    pub(super) fn remove(&self, session_id: &str) {
        let ids = self.ids();
        if ids.iter().any(|m| m == session_id) {
            let left: Vec<String> = ids.into_iter().filter(|m| m != session_id).collect();
            self.write(&left);
        }
    }
}

/// Writes a small file readable by this user only (replaced whole, never half-written).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_kept_in_the_file_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("default.signed-out");
        let marker = SignedOutMarker::new(Some(path.clone()));
        marker.add("s1");
        marker.add("s2");
        // Another process (a restart) reads the same file.
        let again = SignedOutMarker::new(Some(path.clone()));
        assert!(again.holds("s1") && again.holds("s2") && !again.holds("s3"));
        again.remove("s1");
        again.remove("s2");
        assert!(!path.exists(), "no file is left when nothing is marked");
        let memory = SignedOutMarker::new(None);
        memory.add("s1");
        assert!(memory.holds("s1") && !memory.holds(""));
    }
}
