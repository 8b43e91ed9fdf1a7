//! Sleep until a **wall-clock** time, counting the time the machine spent asleep.
//!
//! Tokio's timers (and every "sleep for a duration") run on a monotonic clock that stops
//! while the machine is suspended on Linux, macOS and Windows: a one-hour sleep started
//! before a two-hour suspend ends an hour *after* the resume. A token that expires at
//! 10:00 must be refreshed at 10:00 by the wall clock, so [`sleep_until`] waits on the
//! platform's wall-clock timer instead:
//!
//! | platform | timer | after a suspend | wall clock set |
//! |---|---|---|---|
//! | Linux, Android | `timerfd` on `CLOCK_REALTIME`, absolute, `TFD_TIMER_CANCEL_ON_SET` | fires at resume if the time has passed | wakes early |
//! | macOS, iOS | libdispatch `after` a `DISPATCH_WALLTIME` time | fires at resume if the time has passed | follows the clock |
//! | Windows | absolute waitable timer (a due time in UTC), not waking the machine | signalled at resume if the time has passed | follows the clock |
//!
//! It may return early (the wall clock was set); callers compare the time and sleep again.
//! Elsewhere it returns [`std::io::ErrorKind::Unsupported`] and the caller falls back to
//! a monotonic sleep. Dropping the future cancels the wait (on Windows it ends the
//! waiting thread; on Apple platforms the queued wake-up fires later into nothing).
//!
//! This is the workspace's only crate allowed `unsafe` (the Windows module's Win32 calls,
//! each with its reason); the rest forbid it.

use std::io;
use std::time::{Duration, SystemTime};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux::sleep_until as platform_sleep;

#[cfg(target_vendor = "apple")]
mod apple;
#[cfg(target_vendor = "apple")]
use apple::sleep_until as platform_sleep;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows::sleep_until as platform_sleep;

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    windows
)))]
async fn platform_sleep(_deadline: SystemTime) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no wall-clock timer on this platform",
    ))
}

/// The longest single wait given to a platform timer; a further deadline is reached in
/// several. It keeps every timer in the range it handles: a 32-bit `time_t` (32-bit
/// Android) wraps in 2038, libdispatch takes wall times after 2116 for "forever", and
/// stored deadlines may say 9999. One wake a day costs nothing.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Completes at (or soon after) the wall-clock `deadline`, also when the machine slept
/// through it; possibly earlier when the wall clock is set. A deadline in the past
/// completes at once.
pub async fn sleep_until(deadline: SystemTime) -> io::Result<()> {
    loop {
        let now = SystemTime::now();
        if deadline <= now {
            return Ok(());
        }
        let step = deadline.min(now + LONGEST_WAIT);
        platform_sleep(step).await?;
        if step == deadline {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn wakes_at_a_wall_clock_deadline() {
        let start = Instant::now();
        sleep_until(SystemTime::now() + Duration::from_millis(150))
            .await
            .unwrap();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(140), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_returns_at_once() {
        let start = Instant::now();
        sleep_until(SystemTime::now() - Duration::from_secs(60))
            .await
            .unwrap();
        sleep_until(std::time::UNIX_EPOCH).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    /// Many sleeps started and dropped (a rescheduling engine does this) leave nothing
    /// waiting that keeps a later sleep from working.
    #[tokio::test]
    async fn dropped_sleeps_are_cancelled() {
        for _ in 0..50 {
            let far = sleep_until(SystemTime::now() + Duration::from_secs(3600));
            let woke = tokio::time::timeout(Duration::from_millis(5), far).await;
            assert!(woke.is_err(), "an hour's sleep ended early");
        }
        let start = Instant::now();
        sleep_until(SystemTime::now() + Duration::from_millis(50))
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(40));
    }

    /// A deadline too far for the platform's timer (year 9999) still sleeps rather than
    /// failing or firing at once.
    #[tokio::test]
    async fn a_far_deadline_sleeps() {
        let far = std::time::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        let woke = tokio::time::timeout(Duration::from_millis(50), sleep_until(far)).await;
        assert!(woke.is_err(), "a sleep to the year 9999 ended: {woke:?}");
    }
}
