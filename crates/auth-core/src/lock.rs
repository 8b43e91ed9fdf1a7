//! A lock shared by every process that uses the same stored session (the app and
//! `authctl`), so that two processes never refresh the same token twice.
//!
//! It is an advisory file lock (`flock`/`LockFileEx` through `std::fs::File::lock`) on a
//! file that holds nothing secret. The OS drops it when the holder exits, even on a crash.

use std::fs::{File, OpenOptions, TryLockError};
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

    /// Waits for the lock, at most `timeout`. The wait is `try_lock` with a short
    /// back-off on the async side: no thread is ever parked in `flock`, so a time-out
    /// leaves nothing behind that could take the lock later.
    pub async fn acquire(&self, timeout: Duration) -> Result<ProcessLockGuard, AuthError> {
        let failed = |e: std::io::Error| {
            AuthError::Storage(StoreError::Failed(format!("session lock: {e}")))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let path = self.path.clone();
        let open = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        });
        let file = tokio::time::timeout_at(deadline, open)
            .await
            .map_err(|_| AuthError::Storage(StoreError::Timeout(timeout)))?
            .map_err(|e| failed(std::io::Error::other(e)))?
            .map_err(failed)?;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ProcessLockGuard { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(failed(e)),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(AuthError::Storage(StoreError::Timeout(timeout)));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}
