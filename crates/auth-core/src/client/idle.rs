//! Idle sign-out: one timer for the whole app, in the engine. Every window (and any other
//! front end) reports activity with [`AuthClient::activity`]; when none came for the
//! configured time, the engine signs out locally (`SIGNED_OUT`, reason `idle`), with the
//! revocation delivered or queued like any local sign-out. The deadline is a due time of
//! the background task (no polling) and follows the wall clock, so time asleep counts as
//! idle.

use super::*;

#[derive(Debug)]
pub(super) struct Idle {
    timeout: Option<Duration>,
    last_activity: SystemTime,
}

impl Idle {
    pub(super) fn new(now: SystemTime) -> Self {
        Self {
            timeout: None,
            last_activity: now,
        }
    }
}

impl AuthClient {
    /// Signs out locally after `timeout` without [`AuthClient::activity`] (`None` or zero:
    /// never). Setting it counts as activity.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        let now = self.inner.clock.now();
        {
            let mut idle = lock(&self.inner.idle);
            idle.timeout = timeout.filter(|t| !t.is_zero());
            idle.last_activity = now;
        }
        self.inner.reschedule();
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        lock(&self.inner.idle).timeout
    }

    /// The person did something (in any window): the idle timer starts again. Cheap; the
    /// background task reads it when the old deadline comes.
    pub fn activity(&self) {
        lock(&self.inner.idle).last_activity = self.inner.clock.now();
    }

    /// When the session is signed out for being idle, if a timeout is set.
    pub(super) fn idle_deadline(&self) -> Option<SystemTime> {
        let idle = lock(&self.inner.idle);
        idle.timeout.map(|t| idle.last_activity + t)
    }

    /// Signs out if the idle deadline has passed.
    pub(super) async fn sign_out_if_idle(&self, now: SystemTime) {
        if self.current().is_none() || self.idle_deadline().is_none_or(|at| now < at) {
            return;
        }
        tracing::info!("signing out: no activity for the idle time-out");
        if let Err(e) = self
            .sign_out_because(SignOutScope::Local, SignOutReason::Idle)
            .await
        {
            tracing::warn!(code = e.code(), "the idle sign-out failed");
        }
    }
}
