//! A lock shared by every process that uses the same stored session (the app and
//! `authctl`), so that two processes never refresh the same token twice.
//!
//! It is an advisory file lock (`flock`/`LockFileEx` through `std::fs::File::lock`) on a
//! file that holds nothing secret. The OS drops it when the holder exits, even on a crash.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::AuthError;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct ProcessLock {
    path: PathBuf,
}

/// Held while it lives.
#[derive(Debug)]
pub struct ProcessLockGuard {
    _file: File,
}

impl ProcessLock {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Waits (off the async workers) for the lock, at most `timeout`.
    pub async fn acquire(&self, timeout: Duration) -> Result<ProcessLockGuard, AuthError> {
        let path = self.path.clone();
        let task = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok(file)
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(file))) => Ok(ProcessLockGuard { _file: file }),
            Ok(Ok(Err(e))) => Err(AuthError::Storage(StoreError::Failed(format!(
                "session lock: {e}"
            )))),
            Ok(Err(e)) => Err(AuthError::Storage(StoreError::Failed(format!(
                "session lock: {e}"
            )))),
            Err(_) => Err(AuthError::Storage(StoreError::Timeout(timeout))),
        }
    }
}
