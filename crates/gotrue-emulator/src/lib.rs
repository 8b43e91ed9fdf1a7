//! A GoTrue (Supabase Auth) compatible server, for development and tests.
//!
//! The emulator speaks the same HTTP protocol as Supabase Auth — same routes, JSON bodies,
//! status codes, error codes and token rules — so a client written against it works against
//! a real Supabase project unchanged. It stores its state in SQLite (a file, or in memory) and
//! adds a few test-only routes under `/_emulator/` (captured mail, fault injection, a session
//! list, a controllable clock and a fake OAuth provider).
//!
//! An app can also embed it as the user's own server ([`Config::embedded`], [`Mode`]):
//! then none of the test routes exist and the server is closed to other origins.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gotrue_emulator::StartError> {
//! use gotrue_emulator::{Config, Emulator};
//!
//! let emulator = Emulator::start(Config::for_tests()).await?; // random port on 127.0.0.1
//! let base = emulator.url(); // e.g. "http://127.0.0.1:41234"
//! # let _ = base;
//! // ... talk to it over HTTP; it shuts down when `emulator` is dropped.
//! # Ok(())
//! # }
//! ```

mod api;
mod clock;
mod config;
mod db;
mod duration;
mod error;
mod es256;
mod faults;
mod jwt;
mod mail;
mod models;
mod redirect;
mod server;
mod tokens;

pub use clock::Clock;
pub use config::{
    Config, DEFAULT_JWT_SECRET, DEFAULT_PORT, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY, JwtSigning,
    Mode, new_jwt_secret, publishable_key_for,
};
pub use db::MailRow as Mail;
pub use duration::parse_go_duration;
pub use es256::Es256Key;
pub use mail::template::{Template, TemplateError, links as mail_links};
pub use mail::templates::{MailTemplate, MailTemplates};
pub use server::{AdminError, Emulator, EmulatorHandle, NewUser, StartError};
