//! Time, passed in so that the engine can be tested with a controllable clock.
//!
//! The engine schedules by **wall-clock deadlines**. Tokio's timers run on a monotonic
//! clock, which stops while the machine is suspended: a one-hour `sleep` started before a
//! two-hour suspend would fire an hour after resume, long after the token expired.
//! [`SystemClock`] instead waits on the platform's wall-clock timer (the `wall-timer`
//! crate: a `CLOCK_REALTIME` timerfd on Linux and Android, a `DISPATCH_WALLTIME` on macOS
//! and iOS, an absolute waitable timer on Windows), which fires at the first moment after
//! resume, and on Linux also wakes when the wall clock is set so the engine can recompute.
//! Where there is none it falls back to Tokio's sleep (the app also reports focus and
//! resume to the engine).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A boxed, sendable future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The engine's source of time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall-clock now.
    fn now(&self) -> SystemTime;
    /// Completes at (or soon after) the wall-clock `deadline`. It may also complete early
    /// (e.g. when the wall clock is set); callers re-check the time and sleep again.
    fn sleep_until(&self, deadline: SystemTime) -> Sleep;
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as a time, clamped to 1970..=9999 (stored values may be anything).
pub fn from_unix_secs(secs: i64) -> SystemTime {
    const YEAR_9999: i64 = 253_402_300_799;
    UNIX_EPOCH + Duration::from_secs(secs.clamp(0, YEAR_9999).unsigned_abs())
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: SystemTime) -> Sleep {
        Box::pin(async move {
            if let Err(e) = wall_timer::sleep_until(deadline).await {
                // No wall-clock timer (an unknown platform, or the OS refused one): a
                // monotonic sleep for what is left, which does not count suspended time —
                // the app's focus and resume events make the engine look again.
                tracing::debug!(error = %e, "no wall-clock timer; sleeping on the monotonic clock");
                let remaining = deadline
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                tokio::time::sleep(remaining).await;
            }
        })
    }
}

/// A clock that moves only when told to: for tests of expiry, back-off, suspend and clock
/// jumps.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
    tx: watch::Sender<SystemTime>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        let (tx, _) = watch::channel(start);
        Self {
            now: Mutex::new(start),
            tx,
        }
    }

    /// Starts at the real current time.
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Moves time forward (a suspend of that length looks the same).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
        self.tx.send_replace(*now);
    }

    /// Sets the wall clock (a jump, forward or back).
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.tx.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, deadline: SystemTime) -> Sleep {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_clock_wakes_at_a_wall_deadline() {
        let clock = SystemClock;
        let start = std::time::Instant::now();
        clock
            .sleep_until(SystemTime::now() + Duration::from_millis(80))
            .await;
        assert!(
            start.elapsed() >= Duration::from_millis(70),
            "{:?}",
            start.elapsed()
        );
        // A deadline in the past returns at once.
        clock
            .sleep_until(SystemTime::now() - Duration::from_secs(5))
            .await;
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced() {
        let clock = std::sync::Arc::new(ManualClock::starting_now());
        let deadline = clock.now() + Duration::from_secs(3600);
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep_until(deadline).await });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(7200));
        tokio::time::timeout(Duration::from_secs(1), sleeper)
            .await
            .unwrap()
            .unwrap();
    }
}
