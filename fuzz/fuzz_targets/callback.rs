//! Deep links come from anywhere on the machine: the parser must never panic, and what it
//! accepts must be one of the documented shapes with bounded, token-like fields.
#![no_main]

use auth_core::callback::{Callback, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(callback) = parse(input, "tessera://auth") {
        assert!(
            input.to_ascii_lowercase().starts_with("tessera://auth"),
            "accepted a foreign link: {input:?}"
        );
        assert!(!input.chars().any(char::is_control), "{input:?}");
        match callback {
            Callback::Code { flow, code } => assert!(!flow.is_empty() && !code.is_empty()),
            Callback::Error { code, .. } => assert!(!code.is_empty()),
            Callback::TokenHash { kind, .. } => assert!(!kind.is_empty()),
            Callback::SignedOut { state } => assert!(!state.is_empty()),
        }
    }
});
