//! Crash points for the crash run (issue 5): with the `crash-points` feature, a process
//! started with `TESSERA_CRASH_AT=<step>` kills itself with SIGKILL when it reaches that
//! step — no destructor, no flush, as a power cut or the OOM killer would. Without the
//! feature the calls compile to nothing.
//!
//! Steps: `sign_in:after_response`, `sign_in:after_persist`, `refresh:after_lock`,
//! `refresh:after_response`, `refresh:after_persist`, `sign_out:after_queue`,
//! `sign_out:after_local_remove`, `sign_out:after_server`.

/// Every step a crash can be asked for (for tests that iterate over them).
pub const STEPS: &[&str] = &[
    "sign_in:after_response",
    "sign_in:after_persist",
    "refresh:after_lock",
    "refresh:after_response",
    "refresh:after_persist",
    "sign_out:after_queue",
    "sign_out:after_local_remove",
    "sign_out:after_server",
];

#[cfg(all(feature = "crash-points", target_os = "linux"))]
pub(crate) fn point(step: &str) {
    debug_assert!(STEPS.contains(&step), "unknown crash point {step}");
    if std::env::var("TESSERA_CRASH_AT").is_ok_and(|at| at == step) {
        use nix::sys::signal::{Signal, raise};
        let _ = raise(Signal::SIGKILL);
    }
}

#[cfg(not(all(feature = "crash-points", target_os = "linux")))]
#[inline(always)]
pub(crate) fn point(_step: &str) {}
