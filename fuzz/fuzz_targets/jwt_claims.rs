//! Access tokens arrive from the network and from storage: decoding their claims must
//! never panic, and only the compact three-part form is ever accepted.
#![no_main]

use auth_core::jwt::{MAX_TOKEN_LEN, decode_claims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if decode_claims(token).is_ok() {
        assert!(token.len() <= MAX_TOKEN_LEN);
        assert_eq!(token.split('.').count(), 3);
    }
});
