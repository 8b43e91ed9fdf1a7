//! macOS and iOS: libdispatch runs a closure `after` a `DISPATCH_WALLTIME` time.
//!
//! A walltime is counted on the wall clock (`gettimeofday`), which goes on while the
//! machine sleeps, unlike the default dispatch clock (`mach_absolute_time`), which stops.
//! `dispatch_time(DISPATCH_WALLTIME_NOW, delta)` is the same as `dispatch_walltime(NULL,
//! delta)` (dispatch/time.h) and is what `WALLTIME_NOW.time(delta)` calls — no `unsafe`.
//!
//! `dispatch_after` may run its work late by a tenth of the wait, at most 60 s (its
//! default leeway). So a wait longer than two minutes ends a minute early and a second,
//! short one (at most 12 s late) reaches the deadline. (`DISPATCH_WALLTIME_NOW` needs
//! macOS 10.14 / iOS 12: `tauri.conf.json` sets the macOS minimum to 10.15.)

use std::io;
use std::time::{Duration, SystemTime};

use dispatch2::{DispatchQoS, DispatchQueue, DispatchTime, GlobalQueueIdentifier};

/// The most `dispatch_after` lets a timer run late.
const MAX_LEEWAY: Duration = Duration::from_secs(60);

pub(crate) async fn sleep_until(deadline: SystemTime) -> io::Result<()> {
    loop {
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if remaining.is_zero() {
            return Ok(());
        }
        let wait = if remaining > 2 * MAX_LEEWAY {
            remaining - MAX_LEEWAY
        } else {
            remaining
        };
        wait_walltime(wait).await?;
        if wait == remaining {
            return Ok(());
        }
    }
}

/// One `dispatch_after` on the wall clock, `wait` from now (at most a day: lib.rs).
async fn wait_walltime(wait: Duration) -> io::Result<()> {
    let nanos = i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX);
    let when = DispatchTime::WALLTIME_NOW.time(nanos);
    let (wake, woken) = tokio::sync::oneshot::channel::<()>();
    DispatchQueue::global_queue(GlobalQueueIdentifier::QualityOfService(
        DispatchQoS::Utility,
    ))
    .after(when, move || {
        // Nobody listens any more when the sleep was dropped: nothing to do then (the
        // closure is freed once it has run, within a day).
        let _ = wake.send(());
    })
    .map_err(|e| io::Error::other(format!("dispatch_after: {e:?}")))?;
    // The sender is only dropped by the closure, after it has sent.
    let _ = woken.await;
    Ok(())
}
