//! The session engine against the GoTrue emulator over HTTP. Each test pins down one
//! invariant of DESIGN.md or one bug users hit in other clients.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod flows;
mod refresh;
mod session_end;
mod stored;
