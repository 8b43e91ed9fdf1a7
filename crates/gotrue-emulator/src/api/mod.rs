//! The HTTP API: the route table and the state every handler shares. Extractors are in
//! `extract.rs`, the session helpers in `session.rs`, input rules in `validate.rs`, and
//! one module per GoTrue area holds the handlers.

mod admin;
mod emulator;
mod external;
mod extract;
mod functions;
mod guard;
mod meta;
mod mfa;
mod multipart;
mod otp;
mod rest;
mod session;
mod signup;
mod storage;
mod token;
mod user;
mod validate;
mod verify;

pub(crate) use admin::{AdminUserParams, insert_user};
pub use extract::{Admin, AuthUser, Body, Client, OptionalBody};
pub use session::{access_token, session_json, start_session};
pub use validate::*;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::error::{self};
use crate::faults::Faults;
use crate::jwt::Keys;
use crate::mail::{MailKind, Outgoing};

/// GoTrue's request body limit.
const MAX_BODY: usize = 1024 * 1024;

/// Everything a handler can reach.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub db: Db,
    pub clock: Clock,
    pub faults: Faults,
    pub keys: Keys,
    /// Base of links in mails and of OAuth redirects (no trailing slash).
    pub external_url: String,
    /// The mail templates, parsed at start.
    pub templates: crate::mail::templates::ParsedTemplates,
    /// Request counters for `GET /_emulator/stats`.
    pub stats: Stats,
    /// Every access and refresh token issued, for `GET /_emulator/issued-tokens` (the
    /// secrets scans look for them in what clients wrote). Not kept in embedded mode.
    pub issued: std::sync::Mutex<Vec<String>>,
    /// The `Host` values served in embedded mode (`127.0.0.1:<port>`, `localhost:<port>`).
    pub allowed_hosts: Vec<String>,
    /// The Storage stand-in's objects (test server only).
    pub storage: std::sync::Mutex<storage::Storage>,
}

impl Shared {
    fn record_issued(&self, tokens: [&str; 2]) {
        if self.config.is_embedded() {
            return;
        }
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.extend(tokens.iter().map(|t| (*t).to_owned()));
    }
}

/// How many requests of each kind the emulator answered (successful or not).
#[derive(Debug, Default)]
pub struct Stats {
    pub refresh: std::sync::atomic::AtomicU64,
    pub password: std::sync::atomic::AtomicU64,
    pub pkce: std::sync::atomic::AtomicU64,
    pub logout: std::sync::atomic::AtomicU64,
    pub user: std::sync::atomic::AtomicU64,
    /// Refresh requests that presented an already-used refresh token.
    pub reuse: std::sync::atomic::AtomicU64,
    /// PostgREST RPC calls that passed authentication.
    pub rpc: std::sync::atomic::AtomicU64,
    /// Edge Function stand-in calls that passed authentication.
    pub function: std::sync::atomic::AtomicU64,
    /// Storage stand-in requests that passed authentication.
    pub storage: std::sync::atomic::AtomicU64,
}

impl Stats {
    pub fn bump(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub type AppState = Arc<Shared>;

impl Shared {
    pub fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// `GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION` in microseconds; GoTrue raises anything
    /// under its default of 300 s to 300 s.
    pub fn flow_state_expiry(&self) -> i64 {
        let expiry = self
            .config
            .flow_state_expiry
            .max(std::time::Duration::from_secs(300));
        i64::try_from(expiry.as_micros()).unwrap_or(i64::MAX)
    }

    pub fn outgoing<'a>(
        &'a self,
        kind: MailKind,
        to: &'a str,
        redirect_to: &'a str,
        flow_state_id: Option<&'a str>,
    ) -> Outgoing<'a> {
        Outgoing {
            external_url: &self.external_url,
            site_url: &self.config.site_url,
            templates: &self.templates,
            kind,
            to,
            redirect_to,
            flow_state_id,
            max_frequency: self.config.smtp_max_frequency,
            now: self.now(),
        }
    }
}

/// The GoTrue routes, relative to the API root.
fn gotrue_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(meta::health))
        .route("/settings", get(meta::settings))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route("/signup", post(signup::signup))
        .route("/token", post(token::token))
        .route("/logout", post(user::logout))
        .route("/user", get(user::get_user).put(user::update_user))
        .route("/reauthenticate", get(otp::reauthenticate))
        .route("/otp", post(otp::otp))
        .route("/magiclink", post(otp::magiclink))
        .route("/recover", post(otp::recover))
        .route("/resend", post(otp::resend))
        .route("/verify", get(verify::verify_get).post(verify::verify_post))
        .route("/authorize", get(external::authorize))
        .route(
            "/callback",
            get(external::callback_get).post(external::callback_post),
        )
        .route("/factors", post(mfa::enroll))
        .route("/factors/{id}", axum::routing::delete(mfa::unenroll))
        .route("/factors/{id}/challenge", post(mfa::challenge))
        .route("/factors/{id}/verify", post(mfa::verify))
}

/// The admin API (`service_role`), and the test routes: a test server's only.
fn test_server_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/generate_link", post(admin::generate_link))
        .route(
            "/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route(
            "/admin/users/{id}",
            get(admin::get_user)
                .put(admin::update_user)
                .delete(admin::delete_user),
        )
        .route(
            "/_emulator/mail",
            get(emulator::mail).delete(emulator::clear_mail),
        )
        .route(
            "/_emulator/faults",
            get(emulator::list_faults)
                .post(emulator::add_fault)
                .delete(emulator::clear_faults),
        )
        .route("/_emulator/sessions", get(emulator::sessions))
        .route("/_emulator/issued-tokens", get(emulator::issued_tokens))
        .route(
            "/_emulator/stats",
            get(emulator::stats).delete(emulator::reset_stats),
        )
        .route(
            "/_emulator/time",
            get(emulator::time).post(emulator::advance_time),
        )
        .route(
            "/_emulator/oauth/{provider}/authorize",
            get(emulator::provider_page).post(emulator::provider_submit),
        )
}

/// Stand-ins for Supabase's Edge Functions and Storage, for a data proxy to talk to: a test
/// server's only.
fn standin_routes() -> Router<AppState> {
    use axum::extract::DefaultBodyLimit;
    let object = "/storage/v1/object";
    Router::new()
        .route(
            "/functions/v1/whoami",
            get(functions::whoami).post(functions::whoami),
        )
        .route(
            "/functions/v1/hello",
            get(functions::hello).post(functions::hello),
        )
        .route(
            &format!("{object}/{{bucket}}/{{*path}}"),
            get(storage::download)
                .post(storage::upload)
                .put(storage::upload)
                .layer(DefaultBodyLimit::max(storage::MAX_UPLOAD)),
        )
        .route(
            &format!("{object}/authenticated/{{bucket}}/{{*path}}"),
            get(storage::download),
        )
        .route(
            &format!("{object}/{{bucket}}"),
            axum::routing::delete(storage::remove),
        )
}

/// The whole application: served at the root and under `/auth/v1` (Supabase's gateway prefix).
///
/// In embedded mode the admin API, `/_emulator/*` and the Edge Function and Storage
/// stand-ins are not mounted (404), every matched route wants the install's API key, and
/// every request passes the `guard` checks.
pub fn router(state: AppState) -> Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    let embedded = state.config.is_embedded();
    let mut routes = gotrue_routes();
    if !embedded {
        routes = routes.merge(test_server_routes());
    }
    let mut app = Router::new()
        .merge(routes.clone())
        .nest("/auth/v1", routes)
        // PostgREST, for the SQL functions of Tessera's "Your devices" migration.
        .route("/rest/v1/rpc/{name}", axum::routing::post(rest::rpc));
    if embedded {
        app = app.route_layer(from_fn_with_state(state.clone(), guard::api_key));
    } else {
        app = app.merge(standin_routes());
    }
    app = app
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    if embedded {
        app = app
            .layer(from_fn(guard::json_only))
            .layer(from_fn_with_state(state.clone(), guard::host));
    }
    app.layer(from_fn(error::versioned_errors))
        .layer(from_fn(access_log))
        .with_state(state)
}

/// Logs method, path (never the query: it can carry token hashes), status and latency.
async fn access_log(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
