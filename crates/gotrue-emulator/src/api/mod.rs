//! The HTTP API: routes, shared state, request extractors and the session helpers every
//! sign-in path shares.

mod admin;
mod emulator;
mod external;
mod meta;
mod mfa;
mod otp;
mod rest;
mod signup;
mod token;
mod user;
mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Amr, Db, RefreshTokenRow, SessionRow, UserRow};
use crate::error::{self, ApiError};
use crate::faults::Faults;
use crate::jwt::{AccessClaims, JwtError, Keys, PkceMethod};
use crate::mail::{MailKind, Outgoing};
use crate::models;

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
    /// Request counters for `GET /_emulator/stats`.
    pub stats: Stats,
    /// Every access and refresh token issued, for `GET /_emulator/issued-tokens` (the
    /// secrets scans look for them in what clients wrote).
    pub issued: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    fn record_issued(&self, tokens: [&str; 2]) {
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

    pub fn outgoing<'a>(
        &'a self,
        kind: MailKind,
        to: &'a str,
        redirect_to: &'a str,
        flow_state_id: Option<&'a str>,
    ) -> Outgoing<'a> {
        Outgoing {
            external_url: &self.external_url,
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

/// The whole application: served at the root and under `/auth/v1` (Supabase's gateway prefix).
pub fn router(state: AppState) -> Router {
    let routes = gotrue_routes();
    Router::new()
        .merge(routes.clone())
        .nest("/auth/v1", routes)
        // PostgREST, for the SQL functions of Tessera's "Your devices" migration.
        .route("/rest/v1/rpc/{name}", axum::routing::post(rest::rpc))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(error::versioned_errors))
        .layer(axum::middleware::from_fn(access_log))
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

// ---------------------------------------------------------------------------------------
// extractors

/// A JSON body parsed GoTrue's way: empty, malformed or mistyped bodies are 400 `bad_json`,
/// bodies over 1 MiB are 413 `request_entity_too_large`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req).await?;
        if bytes.is_empty() {
            return Err(bad_json("EOF"));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| bad_json(&e.to_string()))
    }
}

/// Like [`Body`], but an empty body is `None` (for routes whose body is optional).
#[derive(Debug)]
pub struct OptionalBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Self(Some(v)))
            .map_err(|e| bad_json(&e.to_string()))
    }
}

async fn read_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_entity_too_large",
                "Request body too large",
            )
        })
}

fn bad_json(detail: &str) -> ApiError {
    ApiError::bad_request(
        "bad_json",
        format!("Could not parse request body as JSON: {detail}"),
    )
}

/// Who is calling: peer IP and user agent, recorded on sessions and MFA challenges.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self { ip, user_agent })
    }
}

fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a valid Bearer token",
        )
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim().to_owned())
}

fn verify_bearer(state: &Shared, token: &str) -> Result<crate::jwt::BearerClaims, ApiError> {
    state
        .keys
        .verify(token, state.clock.now_secs())
        .map_err(|e| {
            let detail = match e {
                JwtError::Expired => "token has invalid claims: token is expired".to_owned(),
                JwtError::Invalid(detail) => detail,
            };
            ApiError::forbidden(
                "bad_jwt",
                format!("invalid JWT: unable to parse or verify signature, {detail}"),
            )
        })
}

/// A request authenticated by a user's access token, checked as GoTrue's
/// `requireAuthentication` checks it: signature and expiry, then that the user and the
/// token's session still exist, then that the user is not banned.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRow,
    /// `None` only for tokens without a `session_id` claim.
    pub session: Option<SessionRow>,
    pub role: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let claims = verify_bearer(state, &token)?;
        let sub = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::forbidden("bad_jwt", "invalid claim: missing sub claim"))?;
        if uuid::Uuid::parse_str(&sub).is_err() {
            return Err(ApiError::bad_request(
                "bad_jwt",
                "invalid claim: sub claim must be a UUID",
            ));
        }
        let conn = state.db.lock();
        let user = UserRow::find(&conn, &sub)?.ok_or_else(|| {
            ApiError::forbidden(
                "user_not_found",
                "User from sub claim in JWT does not exist",
            )
        })?;
        let session = match claims.session_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(id) if id == uuid::Uuid::nil().to_string() => None,
            Some(id) => {
                if uuid::Uuid::parse_str(id).is_err() {
                    return Err(ApiError::forbidden(
                        "bad_jwt",
                        "invalid claim: session_id claim must be a UUID",
                    ));
                }
                Some(SessionRow::find(&conn, id)?.ok_or_else(|| {
                    ApiError::forbidden(
                        "session_not_found",
                        "Session from session_id claim in JWT does not exist",
                    )
                })?)
            }
        };
        if user.is_banned(state.now()) {
            return Err(ApiError::forbidden("user_banned", "User is banned"));
        }
        Ok(Self {
            user,
            session,
            role: claims.role.unwrap_or_default(),
        })
    }
}

/// A request whose bearer has an admin role (`service_role` by default).
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let claims = verify_bearer(state, &token)?;
        let role = claims.role.unwrap_or_default();
        if !state.config.is_admin_role(&role) {
            return Err(ApiError::forbidden("not_admin", "User not allowed"));
        }
        if let Some(id) = claims.session_id.filter(|s| !s.is_empty()) {
            let conn = state.db.lock();
            if SessionRow::find(&conn, &id)?.is_none() {
                return Err(ApiError::forbidden(
                    "session_not_found",
                    "Session from session_id claim in JWT does not exist",
                ));
            }
        }
        Ok(Self)
    }
}

// ---------------------------------------------------------------------------------------
// shared helpers

/// Starts a new session for `user` (every sign-in does) and marks the sign-in time.
pub fn start_session(
    state: &Shared,
    conn: &Connection,
    user: &mut UserRow,
    method: &str,
    provider: Option<&str>,
    client: &Client,
) -> Result<(SessionRow, RefreshTokenRow), ApiError> {
    let now = state.now();
    let session = SessionRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        aal: "aal1".into(),
        factor_id: None,
        amr: vec![Amr {
            method: method.to_owned(),
            timestamp: state.clock.now_secs(),
            provider: provider.map(str::to_owned),
        }],
        user_agent: client.user_agent.clone(),
        ip: Some(client.ip.clone()),
        created_at: now,
        updated_at: now,
        refreshed_at: None,
    };
    session.save(conn)?;
    let token = RefreshTokenRow::create(conn, &user.id, &session.id, None, now)?;
    user.last_sign_in_at = Some(now);
    user.updated_at = now;
    user.save(conn)?;
    Ok((session, token))
}

/// A signed access token for the session.
pub fn access_token(state: &Shared, user: &UserRow, session: &SessionRow) -> (String, i64) {
    let iat = state.clock.now_secs();
    let exp = iat + state.config.jwt_exp.as_secs() as i64;
    let claims = AccessClaims {
        iss: state.config.jwt_issuer.clone(),
        sub: user.id.clone(),
        aud: user.aud.clone(),
        exp,
        iat,
        email: user.email.clone().unwrap_or_default(),
        phone: user.phone.clone().unwrap_or_default(),
        app_metadata: user.app_metadata.clone(),
        user_metadata: user.user_metadata.clone(),
        role: user.role.clone(),
        aal: session.aal.clone(),
        amr: session.amr.clone(),
        session_id: session.id.clone(),
        is_anonymous: user.is_anonymous,
    };
    (state.keys.sign(&claims), exp)
}

/// The Session JSON every token-issuing route answers.
pub fn session_json(
    state: &Shared,
    conn: &Connection,
    user: &UserRow,
    session: &SessionRow,
    refresh_token: &str,
    extra: Map<String, Value>,
) -> Result<Value, ApiError> {
    let (access, expires_at) = access_token(state, user, session);
    state.record_issued([&access, refresh_token]);
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": expires_at - state.clock.now_secs(),
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": models::user_json(conn, user)?,
    });
    if let Some(map) = body.as_object_mut() {
        map.extend(extra);
    }
    Ok(body)
}

/// Validates an email address the way GoTrue does before using it; returns it lower-cased.
pub fn validate_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let invalid = || ApiError::validation("Unable to validate email address: invalid format");
    if email.len() > 255 {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    if !ok {
        return Err(invalid());
    }
    Ok(email.to_lowercase())
}

/// GoTrue's password policy: at least `min` characters, at most 72 bytes (bcrypt's limit).
pub fn check_password(state: &Shared, password: &str) -> Result<(), ApiError> {
    if password.len() > 72 {
        return Err(ApiError::validation(
            "Password cannot be longer than 72 characters",
        ));
    }
    let min = state.config.password_min_length;
    if password.chars().count() < min {
        return Err(ApiError::weak_password(
            format!("Password should be at least {min} characters."),
            vec!["length"],
        ));
    }
    Ok(())
}

/// bcrypt off the async workers.
pub async fn hash_password(state: &Shared, password: String) -> Result<String, ApiError> {
    let cost = state.config.bcrypt_cost;
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|_| ApiError::internal())
}

pub async fn password_matches(password: String, hash: Option<String>) -> bool {
    let Some(hash) = hash else {
        return false;
    };
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Checks optional PKCE parameters: both or neither, a known method, a well-formed challenge.
pub fn pkce_params(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<(String, PkceMethod)>, ApiError> {
    let challenge = challenge.filter(|s| !s.is_empty());
    let method = method.filter(|s| !s.is_empty());
    match (challenge, method) {
        (None, None) => Ok(None),
        (Some(challenge), Some(method)) => {
            let method = PkceMethod::parse(method)
                .ok_or_else(|| ApiError::validation("Invalid code_challenge_method"))?;
            let len_ok = (43..=128).contains(&challenge.len());
            let chars_ok = challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !len_ok || !chars_ok {
                return Err(ApiError::validation(
                    "code challenge has to be between 43 and 128 characters",
                ));
            }
            Ok(Some((challenge.to_owned(), method)))
        }
        _ => Err(ApiError::validation(
            "PKCE flow requires code_challenge_method and code_challenge",
        )),
    }
}

/// Creates a PKCE flow state for a sign-in that will finish with an auth code.
pub fn new_flow_state(
    state: &Shared,
    conn: &Connection,
    user_id: Option<&str>,
    pkce: &(String, PkceMethod),
    provider: &str,
    method: &str,
    redirect_to: Option<&str>,
) -> rusqlite::Result<crate::db::FlowStateRow> {
    let flow = crate::db::FlowStateRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.map(str::to_owned),
        auth_code: uuid::Uuid::new_v4().to_string(),
        code_challenge: pkce.0.clone(),
        code_challenge_method: pkce.1.as_str().to_owned(),
        provider_type: provider.to_owned(),
        authentication_method: method.to_owned(),
        redirect_to: redirect_to.map(str::to_owned),
        provider_access_token: None,
        provider_refresh_token: None,
        created_at: state.now(),
        auth_code_issued_at: None,
    };
    flow.save(conn)?;
    Ok(flow)
}

/// What a request that sends a link carries: optional PKCE parameters and the
/// `redirect_to` GoTrue would use (the requested one if allowed, else the site URL).
pub fn link_params(
    state: &Shared,
    headers: &axum::http::HeaderMap,
    query: &std::collections::HashMap<String, String>,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<(Option<(String, PkceMethod)>, String), ApiError> {
    let pkce = pkce_params(challenge, method)?;
    let redirect_to =
        crate::redirect::resolve(&state.config, requested_redirect(headers, query).as_deref());
    Ok((pkce, redirect_to))
}

/// A required, valid email address.
pub fn required_email(email: Option<&str>, missing: &str) -> Result<String, ApiError> {
    let email = email
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::validation(missing))?;
    validate_email(email)
}

/// `redirect_to` from the query (GoTrue also reads a `redirect_to` header).
pub fn requested_redirect(
    headers: &axum::http::HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Option<String> {
    query
        .get("redirect_to")
        .cloned()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            headers
                .get("redirect_to")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
}
