//! The emulator's clock: wall-clock time plus an adjustable offset.
//!
//! Tests move the emulator's time forward (`POST /_emulator/time`) to expire access tokens,
//! sessions and flow states without waiting. Every time-dependent rule in the emulator reads
//! this clock, never `SystemTime` directly.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// Wall-clock time shifted by an offset that tests can advance.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The emulator's idea of "now".
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Now, as microseconds since the Unix epoch (the storage format).
    pub fn now_micros(&self) -> i64 {
        self.now().timestamp_micros()
    }

    /// Now, as whole seconds since the Unix epoch (the JWT format).
    pub fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves the clock forward (or back, with a negative value) by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// The current offset from the real wall clock, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

/// Renders a stored timestamp (microseconds) the way GoTrue renders times: RFC 3339 in UTC.
pub fn rfc3339(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now_secs();
        clock.advance_ms(3_600_000);
        let after = clock.now_secs();
        assert!(
            (3599..=3601).contains(&(after - before)),
            "{before} -> {after}"
        );
        assert_eq!(clock.offset_ms(), 3_600_000);
    }

    #[test]
    fn rfc3339_is_utc_with_fraction() {
        assert_eq!(
            rfc3339(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }
}
