//! GoTrue's contract, as scenarios that run against any GoTrue.
//!
//! Each scenario is one behaviour of Supabase Auth that Tessera relies on (or that a user
//! meets), written against HTTP only: the requests a client sends, the answers, the mail.
//! The same scenarios run
//!
//! - in `cargo test` against the emulator (`tests/emulator.rs`: a fresh in-process
//!   emulator per scenario, with its profile's configuration), and
//! - by hand against a real GoTrue (`gotrue-contract --profile confirm=http://…`), its
//!   mail read from an SMTP sink this crate runs — which is how `docs/fidelity.md` was
//!   measured.
//!
//! A scenario that needs the emulator's test routes (its clock, faults or session list)
//! says so and is skipped against a real server; one that needs time to pass back-dates
//! rows through `psql` when given the real server's database.

pub mod env;
pub mod scenarios;
pub mod smtp;
pub mod target;

use std::future::Future;
use std::pin::Pin;

pub use env::Env;
pub use target::{Profile, Target};

/// A scenario's body.
pub type Body = fn(Env) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// One behaviour of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// The server configuration it needs.
    pub profile: Profile,
    pub run: Body,
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Its assertion, as the panic message gave it.
    Failed(String),
    /// Why it could not run on this target.
    Skipped(String),
}

/// Runs one scenario against `target`, catching its failure.
pub async fn run(scenario: &Scenario, target: Target) -> Outcome {
    let body = scenario.run;
    let env = Env::new(target);
    match tokio::spawn(async move { body(env).await }).await {
        Ok(()) => Outcome::Passed,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".to_owned());
            match message.strip_prefix("SKIP: ") {
                Some(why) => Outcome::Skipped(why.to_owned()),
                None => Outcome::Failed(shorten(&message)),
            }
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// A failure message cut to a readable length (answers can hold whole QR codes).
fn shorten(message: &str) -> String {
    const MAX: usize = 700;
    if message.len() <= MAX {
        return message.to_owned();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}
