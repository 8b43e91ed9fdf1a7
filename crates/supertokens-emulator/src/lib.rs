//! A SuperTokens backend as a Tessera client sees one: the email-password recipe and
//! header-mode sessions of the frontend-driver interface (supertokens-node's API layer
//! with the core behind it), in memory.
//!
//! - `POST /auth/signup`, `POST /auth/signin` — `{"formFields": [{id: "email"}, {id:
//!   "password"}]}` → `{"status": "OK", "user": {…}}` (or `WRONG_CREDENTIALS_ERROR`,
//!   `FIELD_ERROR`, with HTTP 200 as SuperTokens answers them), a new session in the
//!   `st-access-token`, `st-refresh-token` and `front-token` headers;
//! - `POST /auth/session/refresh` — `Authorization: Bearer <refresh token>`: rotation with
//!   theft detection (the previous token stays usable until the new access token is first
//!   used; any older one revokes the session: `401 token theft detected`);
//! - `POST /auth/signout` — needs a valid session; clears the tokens (`front-token: remove`);
//! - app endpoints Tessera documents (a real backend adds them with a few lines):
//!   `GET /sessioninfo` (`verifySession`, with `checkDatabase` when blacklisting is on) →
//!   `{sessionHandle, userId, email}`, and `POST /auth/sessions/revoke` `{"scope":
//!   "global"|"others"}` (`revokeAllSessionsForUser` / `revokeSession` per handle);
//! - `/_emulator/…` — users, sessions, stats, revoke a user's sessions, and a captive
//!   portal (the next requests answered `401` with HTML), for tests.
//!
//! Access tokens are HS256 JWTs here (SuperTokens signs RS256 with rotating keys; a client
//! never verifies them). Expired access token → `401 try refresh token`; a session that is
//! gone → `401 unauthorised` with `front-token: remove`.

// Handlers bail out with a ready `Response`, the axum idiom; it is bigger than clippy likes.
#![allow(clippy::result_large_err)]

mod handlers;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use jsonwebtoken::{DecodingKey, EncodingKey};

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub access_token_validity: Duration,
    /// `verifySession({checkDatabase: true})` on the app endpoints: a revoked session's
    /// access token is refused at once (blacklisting). Off: accepted until it expires.
    pub check_database: bool,
    pub bcrypt_cost: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 3567,
            access_token_validity: Duration::from_secs(3600),
            check_database: true,
            bcrypt_cost: 10,
        }
    }
}

impl Config {
    pub fn for_tests() -> Self {
        Self {
            port: 0,
            bcrypt_cost: 4,
            ..Self::default()
        }
    }
}

use handlers::*;
use state::*;

pub fn router(cfg: Config) -> Router {
    let mut secret = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut secret);
    let state = Arc::new(Shared {
        cfg,
        db: Mutex::default(),
        key: (
            EncodingKey::from_secret(&secret),
            DecodingKey::from_secret(&secret),
        ),
        stats: Stats::default(),
    });
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/signin", post(signin))
        .route("/auth/session/refresh", post(refresh))
        .route("/auth/signout", post(signout))
        .route("/auth/sessions/revoke", post(revoke_sessions))
        .route("/sessioninfo", get(sessioninfo))
        .route("/_emulator/sessions", get(emulator_sessions))
        .route("/_emulator/users", post(emulator_create_user))
        .route("/_emulator/revoke-user", post(emulator_revoke_user))
        .route(
            "/_emulator/stats",
            get(emulator_stats).delete(emulator_reset_stats),
        )
        .route("/_emulator/captive-portal", post(emulator_captive_portal))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            captive_portal,
        ))
        .with_state(state)
}

/// A running emulator; stops when dropped.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// The API domain (`apiBasePath` is `/auth`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(cfg: Config) -> std::io::Result<Handle> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
    let addr = listener.local_addr()?;
    let app = router(cfg);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Handle { addr, task })
}
