//! Token responses come from the server (or whatever answers in its place): any body, any
//! receipt time and any margin must give either a typed error or session times within
//! their bounds (lifetime clamped, refresh between receipt and expiry), and never a panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use auth_core::backend::TokenResponse;
use auth_core::expiry::{MAX_TOKEN_LIFETIME_SECS, expiry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let received = UNIX_EPOCH
        + Duration::from_secs(u64::from(u32::from_be_bytes([
            head[0], head[1], head[2], head[3],
        ])));
    let margin = Duration::from_secs(u64::from(u16::from_be_bytes([head[4], head[5]])));
    let jitter = u64::from(u16::from_be_bytes([head[6], head[7]]));
    let Ok(response) = serde_json::from_slice::<TokenResponse>(body) else {
        return;
    };
    let _ = format!("{response:?}");
    if let Ok(e) = expiry(
        response.expires_in,
        response.expires_at,
        received,
        margin,
        jitter,
    ) {
        assert!((1..=MAX_TOKEN_LIFETIME_SECS).contains(&e.expires_in));
        assert!(e.refresh_at >= received && e.refresh_at <= e.expires_at);
        assert_eq!(
            e.expires_at.duration_since(received).ok(),
            Some(Duration::from_secs(e.expires_in.unsigned_abs()))
        );
    } else {
        assert!(response.expires_in <= 0);
    }
});
