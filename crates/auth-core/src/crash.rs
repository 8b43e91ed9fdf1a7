//! Crash points for the crash run: with the `crash-points` feature, a process started with
//! `TESSERA_CRASH_AT=<step>` kills itself with SIGKILL when it reaches that step — no
//! destructor, no flush, as a power cut or the OOM killer would. Without the feature the
//! calls compile to nothing.

/// The steps a crash can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    SignInAfterResponse,
    SignInAfterPersist,
    RefreshAfterLock,
    RefreshAfterResponse,
    RefreshAfterPersist,
    SignOutAfterQueue,
    SignOutAfterLocalRemove,
    SignOutAfterServer,
}

impl CrashPoint {
    /// Every step (for the crash run, which tries each).
    pub const ALL: [CrashPoint; 8] = [
        Self::SignInAfterResponse,
        Self::SignInAfterPersist,
        Self::RefreshAfterLock,
        Self::RefreshAfterResponse,
        Self::RefreshAfterPersist,
        Self::SignOutAfterQueue,
        Self::SignOutAfterLocalRemove,
        Self::SignOutAfterServer,
    ];

    /// The name `TESSERA_CRASH_AT` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SignInAfterResponse => "sign_in:after_response",
            Self::SignInAfterPersist => "sign_in:after_persist",
            Self::RefreshAfterLock => "refresh:after_lock",
            Self::RefreshAfterResponse => "refresh:after_response",
            Self::RefreshAfterPersist => "refresh:after_persist",
            Self::SignOutAfterQueue => "sign_out:after_queue",
            Self::SignOutAfterLocalRemove => "sign_out:after_local_remove",
            Self::SignOutAfterServer => "sign_out:after_server",
        }
    }
}

/// Every step's name (for tests that iterate over them).
pub const STEPS: [&str; 8] = {
    let mut names = [""; 8];
    let mut i = 0;
    while i < 8 {
        names[i] = CrashPoint::ALL[i].name();
        i += 1;
    }
    names
};

#[cfg(all(feature = "crash-points", target_os = "linux"))]
pub(crate) fn point(step: CrashPoint) {
    if std::env::var("TESSERA_CRASH_AT").is_ok_and(|at| at == step.name()) {
        use nix::sys::signal::{Signal, raise};
        let _ = raise(Signal::SIGKILL);
    }
}

#[cfg(not(all(feature = "crash-points", target_os = "linux")))]
#[inline(always)]
pub(crate) fn point(_step: CrashPoint) {}
