//! Deep links come from anywhere on the machine: the parser must never panic, and what it
//! accepts must be one of the documented shapes with bounded, token-like fields, and an
//! email link must name a flow.
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
            // An email link is accepted only with the flow id of a sign-in of this app
            // (a forged confirm link carries none).
            Callback::TokenHash { kind, flow, .. } => {
                assert!(!kind.is_empty() && !flow.is_empty(), "{input:?}")
            }
            // GoTrue's message redirect names the flow it belongs to.
            Callback::Message { flow } => assert!(!flow.is_empty(), "{input:?}"),
            Callback::SignedOut => {}
        }
    }
});
