//! macOS and iOS: libdispatch runs a closure `after` a `DISPATCH_WALLTIME` time.
//!
//! A walltime is counted on the wall clock (`gettimeofday`), which goes on while the
//! machine sleeps, unlike the default dispatch clock (`mach_absolute_time`), which stops.
//! `dispatch_time(DISPATCH_WALLTIME_NOW, delta)` is the same as `dispatch_walltime(NULL,
//! delta)` (dispatch/time.h) and is what `WALLTIME_NOW.time(delta)` calls — no `unsafe`.

use std::io;
use std::time::SystemTime;

use dispatch2::{DispatchQoS, DispatchQueue, DispatchTime, GlobalQueueIdentifier};

pub(crate) async fn sleep_until(deadline: SystemTime) -> io::Result<()> {
    let delta = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    // Nanoseconds from now; a deadline beyond i64 nanoseconds (292 years) is clamped.
    let nanos = i64::try_from(delta.as_nanos()).unwrap_or(i64::MAX);
    let when = DispatchTime::WALLTIME_NOW.time(nanos);
    let (wake, woken) = tokio::sync::oneshot::channel::<()>();
    DispatchQueue::global_queue(GlobalQueueIdentifier::QualityOfService(
        DispatchQoS::Utility,
    ))
    .after(when, move || {
        // Nobody listens any more when the sleep was dropped: nothing to do then.
        let _ = wake.send(());
    })
    .map_err(|e| io::Error::other(format!("dispatch_after: {e:?}")))?;
    // The sender is only dropped by the closure, after it has sent.
    let _ = woken.await;
    Ok(())
}
