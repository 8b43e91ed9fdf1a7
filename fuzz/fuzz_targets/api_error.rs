//! Error bodies come from the server, a proxy or a captive portal: any status and body must
//! give a typed error with a stable, non-empty code, and never a panic.
#![no_main]

use auth_core::backend::gotrue::parse_error;
use libfuzzer_sys::fuzz_target;
use reqwest::StatusCode;

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 400 + u16::from_be_bytes([hi, lo]) % 200;
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    let error = parse_error(status, body);
    assert!(!error.code().is_empty());
    let _ = error.to_string();
    let _ = error.is_retryable();
    let _ = error.ends_session();
});
