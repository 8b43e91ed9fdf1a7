//! Starting and stopping the emulator: the accept loop, connection handling and faults.
//!
//! The accept loop is ours (not `axum::serve`) so that an injected `drop` fault can close a
//! connection without answering, the way a broken network does.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::Mail;
use crate::api::{self, AdminUserParams, Shared, insert_user};
use crate::clock::Clock;
use crate::config::{Config, JwtSigning};
use crate::db::{Db, MailRow};
use crate::error::{ApiError, ApiVersion};
use crate::es256::Es256Key;
use crate::faults::{Action, Faults};
use crate::jwt::Keys;
use crate::mail::templates::ParsedTemplates;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Entry point: `Emulator::start(config).await` runs a server in the current Tokio runtime.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Opens the database, binds the port (0 = any free port) and starts serving.
    pub async fn start(config: Config) -> Result<EmulatorHandle, StartError> {
        if config.jwt_secret.len() < 32 {
            return Err(StartError::Config(
                "the JWT secret must be at least 32 characters".into(),
            ));
        }
        if config.is_embedded() {
            check_embedded(&config)?;
        }
        check_opaque_keys(&config)?;
        if url::Url::parse(&config.site_url).is_err() {
            return Err(StartError::Config(format!(
                "site URL {:?} is not a URL",
                config.site_url
            )));
        }
        let secret = config.is_embedded().then_some(config.jwt_secret.as_str());
        let db = Db::open(config.db.as_deref(), secret)?;
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let url = format!("http://{local}");
        let external_url = match &config.external_url {
            Some(external) => {
                url::Url::parse(external)
                    .map_err(|e| StartError::Config(format!("external URL {external:?}: {e}")))?;
                external.trim_end_matches('/').to_owned()
            }
            None => url.clone(),
        };
        let templates = ParsedTemplates::parse(&config.mail_templates)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let signing_key = match &config.jwt_signing {
            JwtSigning::Hs256 => None,
            JwtSigning::Es256(Some(key)) => Some(key.clone()),
            JwtSigning::Es256(None) => Some(Es256Key::generate()),
        };
        let keys = Keys::with_signing_key(&config.jwt_secret, signing_key.as_ref())
            .with_opaque_key(config.publishable_key.as_deref(), "anon")
            .with_opaque_key(config.secret_key.as_deref(), "service_role");
        let anon_key = keys.api_key("anon");
        let service_role_key = keys.api_key("service_role");
        let shared = Arc::new(Shared {
            config,
            db,
            clock: Clock::default(),
            faults: Faults::default(),
            issued: Default::default(),
            keys,
            external_url,
            templates,
            stats: api::Stats::default(),
            storage: Default::default(),
            allowed_hosts: vec![
                format!("127.0.0.1:{}", local.port()),
                format!("localhost:{}", local.port()),
            ],
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, shared.clone(), shutdown_rx));
        tracing::info!(%url, "gotrue-emulator listening");
        Ok(EmulatorHandle {
            url,
            addr: local,
            anon_key,
            service_role_key,
            shared,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        })
    }
}

/// An embedded server must be the install's own: its own strong secret, on loopback.
fn check_embedded(config: &Config) -> Result<(), StartError> {
    if config.jwt_secret.len() < 64 || config.jwt_secret == crate::config::DEFAULT_JWT_SECRET {
        return Err(StartError::Config(
            "an embedded server needs its own random JWT secret (new_jwt_secret)".into(),
        ));
    }
    if config.host != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
        return Err(StartError::Config(
            "an embedded server listens on 127.0.0.1 only".into(),
        ));
    }
    // Its keys come from its own secret: the public demo keys, and any secret key at all
    // (the admin API is not served), are refused.
    if config.secret_key.is_some() {
        return Err(StartError::Config(
            "an embedded server has no secret key".into(),
        ));
    }
    if config.publishable_key.as_deref() == Some(crate::DEMO_PUBLISHABLE_KEY) {
        return Err(StartError::Config(
            "an embedded server needs its own publishable key (publishable_key_for)".into(),
        ));
    }
    Ok(())
}

/// Supabase's non-JWT keys are recognisable by their prefix; a JWT, or the same key for
/// both roles, would be read as the wrong kind of key.
fn check_opaque_keys(config: &Config) -> Result<(), StartError> {
    let bad = |key: &Option<String>, prefix: &str| {
        key.as_deref()
            .is_some_and(|k| !k.starts_with(prefix) || k.len() < prefix.len() + 16)
    };
    if bad(&config.publishable_key, "sb_publishable_") {
        return Err(StartError::Config(
            "a publishable key is sb_publishable_ and at least 16 more characters".into(),
        ));
    }
    if bad(&config.secret_key, "sb_secret_") {
        return Err(StartError::Config(
            "a secret key is sb_secret_ and at least 16 more characters".into(),
        ));
    }
    Ok(())
}

/// A user to create with [`EmulatorHandle::create_user`]. Its `Debug` hides the password.
#[derive(Clone, Default)]
pub struct NewUser {
    pub email: String,
    /// Checked against the password rules, like the admin API does.
    pub password: Option<String>,
    /// Confirmed at once (the admin API's `email_confirm`).
    pub email_confirmed: bool,
    pub user_metadata: Option<serde_json::Value>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("email_confirmed", &self.email_confirmed)
            .finish_non_exhaustive()
    }
}

impl NewUser {
    /// A confirmed user who signs in with `password`.
    pub fn confirmed(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            password: Some(password.into()),
            email_confirmed: true,
            user_metadata: None,
        }
    }
}

/// Why the emulator refused something asked through its Rust API: the status and GoTrue
/// error code the HTTP API would have answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} (HTTP {status}): {message}")]
pub struct AdminError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status.as_u16(),
            code: e.code.into_owned(),
            message: e.msg,
        }
    }
}

/// A running emulator. Dropping it stops the server. Its `Debug` shows the URL only (the
/// keys and the state hold secrets).
pub struct EmulatorHandle {
    url: String,
    addr: SocketAddr,
    anon_key: String,
    service_role_key: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The base URL, e.g. `http://127.0.0.1:9999` (GoTrue routes at the root; the same
    /// routes are also served under `/auth/v1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A JWT with role `anon`, signed with the configured secret (Supabase's anon key).
    pub fn anon_key(&self) -> &str {
        &self.anon_key
    }

    /// Supabase's publishable key (`sb_publishable_…`), when configured: accepted wherever
    /// [`EmulatorHandle::anon_key`] is. The embedded server always has one.
    pub fn publishable_key(&self) -> Option<&str> {
        self.shared.config.publishable_key.as_deref()
    }

    /// Supabase's secret key (`sb_secret_…`), when configured: accepted wherever
    /// [`EmulatorHandle::service_role_key`] is.
    pub fn secret_key(&self) -> Option<&str> {
        self.shared.config.secret_key.as_deref()
    }

    /// A JWT with role `service_role` (Supabase's service key): admin routes accept it.
    pub fn service_role_key(&self) -> &str {
        &self.service_role_key
    }

    /// What `GET /.well-known/jwks.json` serves: `{"keys":[]}` in HS256 mode, the public
    /// ES256 key in ES256 mode.
    pub fn jwks(&self) -> serde_json::Value {
        self.shared.keys.jwks()
    }

    /// The `kid` of the ES256 signing key (`None` in HS256 mode).
    pub fn signing_kid(&self) -> Option<&str> {
        self.shared.keys.kid()
    }

    /// The emulator's clock, for in-process tests that want to move time.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Creates a user in process, as `POST /admin/users` would (no HTTP, no admin key).
    /// Returns the new user's id.
    pub async fn create_user(&self, user: NewUser) -> Result<String, AdminError> {
        let params = AdminUserParams {
            email: Some(user.email),
            password: user.password,
            email_confirm: Some(user.email_confirmed),
            user_metadata: user.user_metadata,
            ..AdminUserParams::default()
        };
        let json = insert_user(&self.shared, params).await?;
        Ok(json["id"].as_str().unwrap_or_default().to_owned())
    }

    /// The mail the emulator "sent" to `to` (every address when `None`), oldest first:
    /// codes and links, read in process.
    pub fn mail_for(&self, to: Option<&str>) -> Result<Vec<Mail>, AdminError> {
        let conn = self.shared.db.lock();
        MailRow::list(&conn, to).map_err(|e| AdminError::from(ApiError::from(e)))
    }

    /// Stops accepting, closes open connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The error a service returns to make hyper close the connection without an answer.
#[derive(Debug)]
struct DroppedByFault;

impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedByFault {}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let router = api::router(shared.clone());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        continue;
                    }
                };
                let router = router.clone();
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                        let router = router.clone();
                        let shared = shared.clone();
                        async move {
                            request.extensions_mut().insert(ConnectInfo(peer));
                            let method = request.method().as_str().to_owned();
                            let mut strip = Vec::new();
                            if let Some(fault) = shared.faults.take(&method, request.uri().path()) {
                                tracing::info!(path = request.uri().path(), "injecting fault");
                                tokio::time::sleep(fault.delay()).await;
                                match fault.action(ApiVersion::from_headers(request.headers())) {
                                    Action::Drop => return Err(DroppedByFault),
                                    Action::Respond(response) => return Ok(response),
                                    Action::Continue => {}
                                    Action::Strip(fields) => strip = fields,
                                }
                            }
                            let response = router.oneshot(request.map(axum::body::Body::new)).await;
                            let response = response.unwrap_or_else(|never| match never {});
                            if strip.is_empty() {
                                return Ok(response);
                            }
                            Ok(strip_fields(response, &strip).await)
                        }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    if let Err(err) = builder.serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(error = %err, "connection ended");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// The handler's answer with `fields` taken out of its JSON object (a fault's `strip`).
async fn strip_fields(
    response: axum::response::Response,
    fields: &[String],
) -> axum::response::Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut object)) => {
            for field in fields {
                object.remove(field);
            }
            serde_json::to_vec(&object).unwrap_or_default()
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}
