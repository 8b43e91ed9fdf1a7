//! When a session expires and when to refresh it, from the server's `expires_in` /
//! `expires_at`: values from the network, so they are clamped and every sum is checked —
//! no server answer can make the engine panic or schedule a refresh centuries away.

use std::time::{Duration, SystemTime};

use crate::clock::unix_secs;
use crate::error::AuthError;

/// The longest access-token lifetime believed (Supabase caps `jwt_expiry` at one week): a
/// longer `expires_in` only makes the engine refresh earlier than it had to.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// The largest clock difference a server's `expires_at` may show before it is ignored
/// (treated as absent): one year.
pub const MAX_SKEW_SECS: i64 = 365 * 24 * 3600;

/// The times of one session, derived from one token response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The lifetime in seconds, in `1..=MAX_TOKEN_LIFETIME_SECS`.
    pub expires_in: i64,
    /// The server's expiry instant (Unix seconds), if it sent a believable one.
    pub server_expires_at: Option<i64>,
    /// Receipt time + lifetime, by this device's clock.
    pub expires_at: SystemTime,
    /// When to refresh: before `expires_at` by the margin (at most a quarter of the
    /// lifetime) and the jitter; never before receipt.
    pub refresh_at: SystemTime,
}

/// Computes [`Expiry`]. `jitter_per_mille` (0..=1000) picks the jitter within a quarter of
/// the margin. A lifetime of zero or less, or a receipt time so far in the future that the
/// expiry cannot be represented, is an invalid answer.
pub fn expiry(
    expires_in: i64,
    server_expires_at: Option<i64>,
    received_at: SystemTime,
    margin: Duration,
    jitter_per_mille: u64,
) -> Result<Expiry, AuthError> {
    if expires_in <= 0 {
        return Err(AuthError::InvalidResponse(
            "a session without a positive lifetime".into(),
        ));
    }
    let expires_in = expires_in.min(MAX_TOKEN_LIFETIME_SECS);
    let lifetime = Duration::from_secs(expires_in.unsigned_abs());
    let expires_at = received_at
        .checked_add(lifetime)
        .ok_or_else(|| AuthError::InvalidResponse("an expiry out of range".into()))?;
    let margin = margin.min(lifetime / 4);
    let jitter_ms = u64::try_from(margin.as_millis() / 4)
        .unwrap_or(u64::MAX)
        .saturating_mul(jitter_per_mille.min(1000))
        / 1000;
    let refresh_at = expires_at
        .checked_sub(margin.saturating_add(Duration::from_millis(jitter_ms)))
        .unwrap_or(received_at)
        .max(received_at);
    let local = unix_secs(expires_at);
    let server_expires_at = server_expires_at.filter(|server| {
        server.saturating_sub(local).unsigned_abs() <= MAX_SKEW_SECS.unsigned_abs()
    });
    Ok(Expiry {
        expires_in,
        server_expires_at,
        expires_at,
        refresh_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_never_overflows() {
        let now = SystemTime::now();
        let margin = Duration::from_secs(90);
        let e = expiry(3600, Some(unix_secs(now) + 3605), now, margin, 500).unwrap();
        assert_eq!(e.expires_in, 3600);
        assert_eq!(e.server_expires_at, Some(unix_secs(now) + 3605));
        assert!(e.refresh_at < e.expires_at && e.refresh_at >= now);
        let e = expiry(i64::MAX, Some(i64::MIN), now, margin, 1000).unwrap();
        assert_eq!(e.expires_in, MAX_TOKEN_LIFETIME_SECS);
        assert_eq!(e.server_expires_at, None);
        let e = expiry(1, Some(i64::MAX), now, Duration::MAX, u64::MAX).unwrap();
        assert_eq!(e.server_expires_at, None);
        assert!(e.refresh_at >= now && e.refresh_at <= e.expires_at);
        assert!(expiry(0, None, now, margin, 0).is_err());
        assert!(expiry(i64::MIN, None, now, margin, 0).is_err());
    }
}
