//! Linux and Android: a `timerfd` on `CLOCK_REALTIME`, armed at the absolute deadline.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub(crate) async fn sleep_until(deadline: SystemTime) -> io::Result<()> {
    let since_epoch = deadline.duration_since(UNIX_EPOCH).unwrap_or_default();
    let timer = TimerFd::new(
        ClockId::CLOCK_REALTIME,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    // Absolute: it fires when the wall clock reaches the deadline, also right after a
    // resume. CANCEL_ON_SET: it also wakes when the clock is set (NTP step, by hand).
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(since_epoch)),
        TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
    )?;
    // `AsyncFd::new` is deprecated because a `T` that does not own its descriptor could
    // close it while registered. `Timer` owns its `TimerFd`, and `AsyncFd` deregisters
    // before dropping it, so this use is sound; the replacement (`register`) is `unsafe`.
    #[allow(deprecated)]
    let fd = AsyncFd::new(Timer(timer))?;
    // Readable when the deadline passes, or when the wall clock is set (a read would say
    // ECANCELED); either way the caller looks at the time again.
    let _guard = fd.readable().await?;
    Ok(())
}
