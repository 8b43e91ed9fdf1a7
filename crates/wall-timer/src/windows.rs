//! Windows: an absolute waitable timer.
//!
//! A positive due time given to `SetWaitableTimer` is an absolute UTC time (a FILETIME:
//! 100 ns intervals since 1601). Such a timer follows the system clock — when the clock
//! is set, the due time stays the same wall-clock moment — and a timer that came due
//! while the machine slept is signalled at resume (`fResume = FALSE`: it does not wake the
//! machine for it). A thread of ours waits on the timer and on a cancel event; dropping
//! the future sets the event, so an abandoned sleep does not keep a thread for hours.

#![allow(unsafe_code)]

use std::io;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_FAILED};
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateWaitableTimerExW, INFINITE, SYNCHRONIZATION_SYNCHRONIZE, SetEvent,
    SetWaitableTimer, TIMER_MODIFY_STATE, WaitForMultipleObjects,
};

/// 100 ns intervals from 1601-01-01 to 1970-01-01, both UTC.
const UNIX_EPOCH_AS_FILETIME: i64 = 116_444_736_000_000_000;

/// A kernel object handle we own; closed when dropped.
struct Handle(HANDLE);

// SAFETY: a kernel object handle is a process-wide value: it may be waited on, signalled
// and closed from any thread.
unsafe impl Send for Handle {}
// SAFETY: as above; the calls made through a shared `Handle` (wait, `SetEvent`) are
// thread-safe in the kernel.
unsafe impl Sync for Handle {}

impl Handle {
    /// Takes ownership of what a `Create…` call returned (null means it failed).
    fn owned(raw: HANDLE) -> io::Result<Self> {
        if raw.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(Self(raw))
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `self.0` came non-null from a `Create…` call, is owned by this value
        // alone and is closed only here, once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Sets the cancel event when the sleep is dropped (or has ended: then nobody waits).
struct CancelOnDrop(Arc<Handle>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // SAFETY: the event handle is open as long as this `Arc` holds it.
        unsafe { SetEvent((self.0).0) };
    }
}

/// A time since the Unix epoch as a FILETIME due time (positive: absolute), rounded up
/// (never a wake before the deadline) and clamped to what fits.
fn due_time(since_epoch: Duration) -> i64 {
    let ticks = i64::try_from(since_epoch.as_nanos().div_ceil(100)).unwrap_or(i64::MAX);
    UNIX_EPOCH_AS_FILETIME.saturating_add(ticks)
}

pub(crate) async fn sleep_until(deadline: SystemTime) -> io::Result<()> {
    // SAFETY: null security attributes (the default) and a null name (unnamed) are
    // allowed; flags 0 makes a synchronisation (auto-reset) timer; the rights are to set
    // it and to wait on it; no pointer is kept.
    let timer = Handle::owned(unsafe {
        CreateWaitableTimerExW(
            ptr::null(),
            ptr::null(),
            0,
            TIMER_MODIFY_STATE | SYNCHRONIZATION_SYNCHRONIZE,
        )
    })?;
    let due = due_time(deadline.duration_since(UNIX_EPOCH).unwrap_or_default());
    // SAFETY: `timer` is an open timer handle with TIMER_MODIFY_STATE; `&due` points to a
    // live i64 for the duration of the call (the API copies it); no period, no completion
    // routine and so no argument for one; FALSE: do not wake the machine.
    if unsafe { SetWaitableTimer(timer.0, &due, 0, None, ptr::null(), 0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: default security, manual reset (TRUE), not signalled (FALSE), unnamed.
    let cancel = Arc::new(Handle::owned(unsafe {
        CreateEventW(ptr::null(), 1, 0, ptr::null())
    })?);
    let cancel_on_drop = CancelOnDrop(cancel.clone());
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wall-timer".into())
        .spawn(move || {
            let handles: [HANDLE; 2] = [timer.0, cancel.0];
            // SAFETY: `handles` is an array of two open handles (the thread owns `timer`
            // and a clone of the event's `Arc` until it returns); wait for either.
            let woke = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, INFINITE) };
            let result = if woke == WAIT_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            };
            let _ = done.send(result);
            drop(timer);
            drop(cancel);
        })?;
    let result = finished
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the timer thread ended without a word")));
    drop(cancel_on_drop);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_filetimes() {
        assert_eq!(due_time(Duration::ZERO), UNIX_EPOCH_AS_FILETIME);
        assert_eq!(
            due_time(Duration::from_secs(1)),
            UNIX_EPOCH_AS_FILETIME + 10_000_000
        );
        // Rounded up: a wake is never before the deadline.
        assert_eq!(
            due_time(Duration::from_nanos(1)),
            UNIX_EPOCH_AS_FILETIME + 1
        );
        assert_eq!(due_time(Duration::MAX), i64::MAX);
    }
}
