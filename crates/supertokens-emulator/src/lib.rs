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
//! - `/_emulator/…` — users, sessions, stats, revoke a user's sessions, for tests.
//!
//! Access tokens are HS256 JWTs here (SuperTokens signs RS256 with rotating keys; a client
//! never verifies them). Expired access token → `401 try refresh token`; a session that is
//! gone → `401 unauthorised` with `front-token: remove`.

// Handlers bail out with a ready `Response`, the axum idiom; it is bigger than clippy likes.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

#[derive(Debug, Clone)]
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    time_joined: i64,
}

#[derive(Debug)]
struct SessionRow {
    handle: String,
    user_id: String,
    /// Hash of the refresh token in use.
    current: String,
    /// Hash of the one before, usable until the newest access token is first seen.
    previous: Option<String>,
    previous_usable: bool,
    /// Hashes of every older token of this session (reuse = theft).
    retired: HashSet<String>,
}

#[derive(Debug, Default)]
struct Db {
    users: HashMap<String, UserRow>,
    sessions: HashMap<String, SessionRow>,
}

/// Request counters (`GET /_emulator/stats`).
#[derive(Debug, Default)]
struct Stats {
    refreshes: AtomicU64,
    signins: AtomicU64,
    signouts: AtomicU64,
    thefts: AtomicU64,
    sessioninfo: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    cfg: Config,
    db: Mutex<Db>,
    key: (EncodingKey, DecodingKey),
    stats: Stats,
}

impl Shared {
    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type AppState = Arc<Shared>;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(rename = "sessionHandle")]
    session_handle: String,
    exp: i64,
    iat: i64,
    #[serde(rename = "refreshTokenHash1")]
    refresh_token_hash1: String,
    #[serde(
        rename = "parentRefreshTokenHash1",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    parent_refresh_token_hash1: Option<String>,
    #[serde(rename = "tId")]
    tenant: String,
    email: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_refresh_token() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// `401 unauthorised`, clearing the client's tokens as SuperTokens does in header mode.
fn unauthorised(text: &str) -> Response {
    let mut r = message(StatusCode::UNAUTHORIZED, text);
    clear_tokens(r.headers_mut());
    r
}

fn clear_tokens(h: &mut HeaderMap) {
    h.insert("front-token", HeaderValue::from_static("remove"));
    h.insert("st-access-token", HeaderValue::from_static(""));
    h.insert("st-refresh-token", HeaderValue::from_static(""));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("front-token, st-access-token, st-refresh-token"),
    );
}

fn user_json(u: &UserRow) -> Value {
    json!({
        "id": u.id,
        "isPrimaryUser": false,
        "tenantIds": ["public"],
        "emails": [u.email],
        "phoneNumbers": [],
        "thirdParty": [],
        "timeJoined": u.time_joined,
        "loginMethods": [{
            "recipeId": "emailpassword", "recipeUserId": u.id, "tenantIds": ["public"],
            "email": u.email, "timeJoined": u.time_joined, "verified": false
        }]
    })
}

impl Shared {
    /// Mints an access token and sets the three session headers.
    fn issue(
        &self,
        h: &mut HeaderMap,
        session: &SessionRow,
        email: &str,
        refresh: Option<&str>,
        parent: Option<String>,
    ) {
        let now = now_ms();
        let exp_ms = now + self.cfg.access_token_validity.as_millis() as i64;
        let claims = Claims {
            sub: session.user_id.clone(),
            session_handle: session.handle.clone(),
            exp: exp_ms / 1000,
            iat: now / 1000,
            refresh_token_hash1: session.current.clone(),
            parent_refresh_token_hash1: parent,
            tenant: "public".into(),
            email: email.to_owned(),
        };
        let access = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key.0)
            .unwrap_or_default();
        let payload = serde_json::to_value(&claims).unwrap_or(Value::Null);
        let front = base64::engine::general_purpose::STANDARD
            .encode(json!({"uid": session.user_id, "ate": exp_ms, "up": payload}).to_string());
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        h.insert("st-access-token", value(&access));
        if let Some(r) = refresh {
            h.insert("st-refresh-token", value(r));
        }
        h.insert("front-token", value(&front));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("front-token, st-access-token, st-refresh-token"),
        );
    }

    fn create_session(&self, db: &mut Db, user: &UserRow) -> (HeaderMap, String) {
        let refresh = new_refresh_token();
        let session = SessionRow {
            handle: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            current: hash(&refresh),
            previous: None,
            previous_usable: false,
            retired: HashSet::new(),
        };
        let mut h = HeaderMap::new();
        self.issue(&mut h, &session, &user.email, Some(&refresh), None);
        let handle = session.handle.clone();
        db.sessions.insert(handle.clone(), session);
        (h, handle)
    }

    /// `verifySession`: the access token's signature and expiry; the first use of a token
    /// minted by a refresh retires the parent; with `check_database`, the session must
    /// still exist.
    fn verify(&self, headers: &HeaderMap, check_database: bool) -> Result<Claims, Response> {
        let token = bearer(headers).ok_or_else(|| unauthorised("unauthorised"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key.1, &validation)
            .map_err(|_| unauthorised("unauthorised"))?
            .claims;
        if claims.exp * 1000 <= now_ms() {
            return Err(message(StatusCode::UNAUTHORIZED, "try refresh token"));
        }
        let mut db = self.db();
        if let Some(parent) = &claims.parent_refresh_token_hash1 {
            // First use after a refresh: the core finalises the rotation.
            match db.sessions.get_mut(&claims.session_handle) {
                Some(s) => {
                    if s.previous.as_ref() == Some(parent) {
                        s.previous_usable = false;
                    }
                }
                None => return Err(unauthorised("unauthorised")),
            }
        }
        if check_database && !db.sessions.contains_key(&claims.session_handle) {
            return Err(unauthorised("unauthorised"));
        }
        Ok(claims)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[derive(Debug, Deserialize)]
struct FormField {
    id: String,
    value: Value,
}

#[derive(Debug, Deserialize)]
struct FormBody {
    #[serde(rename = "formFields")]
    form_fields: Vec<FormField>,
}

fn field(body: &FormBody, id: &str) -> String {
    body.form_fields
        .iter()
        .find(|f| f.id == id)
        .and_then(|f| f.value.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn field_error(id: &str, error: &str) -> Response {
    Json(json!({"status": "FIELD_ERROR", "formFields": [{"id": id, "error": error}]}))
        .into_response()
}

fn body_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes)
        .map_err(|_| message(StatusCode::BAD_REQUEST, "Please provide a JSON body"))
}

/// A new user row, the password hashed on the blocking pool.
async fn new_user(state: &Shared, email: &str, password: String) -> Result<UserRow, Response> {
    let cost = state.cfg.bcrypt_cost;
    let Ok(Ok(password_hash)) =
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost)).await
    else {
        return Err(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not hash the password",
        ));
    };
    Ok(UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.to_owned(),
        password_hash,
        time_joined: now_ms(),
    })
}

async fn signup(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let body: FormBody = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let email = field(&body, "email").trim().to_ascii_lowercase();
    let password = field(&body, "password");
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return field_error("email", "Email is invalid");
    }
    if password.chars().count() < 8 || !password.chars().any(|c| c.is_ascii_digit()) {
        return field_error(
            "password",
            "Password must contain at least 8 characters, including a number",
        );
    }
    if state.db().users.contains_key(&email) {
        return field_error(
            "email",
            "This email already exists. Please sign in instead.",
        );
    }
    let user = match new_user(&state, &email, password).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut db = state.db();
    if db.users.contains_key(&email) {
        return field_error(
            "email",
            "This email already exists. Please sign in instead.",
        );
    }
    db.users.insert(email, user.clone());
    let (headers, _) = state.create_session(&mut db, &user);
    (
        headers,
        Json(json!({"status": "OK", "user": user_json(&user)})),
    )
        .into_response()
}

async fn signin(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let body: FormBody = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.stats.signins.fetch_add(1, Ordering::SeqCst);
    let email = field(&body, "email").trim().to_ascii_lowercase();
    let password = field(&body, "password");
    let user = state.db().users.get(&email).cloned();
    let Some(user) = user else {
        return Json(json!({"status": "WRONG_CREDENTIALS_ERROR"})).into_response();
    };
    let hash = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false);
    if !ok {
        return Json(json!({"status": "WRONG_CREDENTIALS_ERROR"})).into_response();
    }
    let (headers, _) = state.create_session(&mut state.db(), &user);
    (
        headers,
        Json(json!({"status": "OK", "user": user_json(&user)})),
    )
        .into_response()
}

async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.stats.refreshes.fetch_add(1, Ordering::SeqCst);
    let Some(token) = bearer(&headers) else {
        return unauthorised("unauthorised");
    };
    let presented = hash(token);
    let mut db = state.db();
    let found = db
        .sessions
        .values()
        .find(|s| {
            s.current == presented
                || s.previous.as_ref() == Some(&presented)
                || s.retired.contains(&presented)
        })
        .map(|s| s.handle.clone());
    let Some(handle) = found else {
        return unauthorised("unauthorised");
    };
    let Some(session) = db.sessions.get_mut(&handle) else {
        return unauthorised("unauthorised");
    };
    let usable_parent = session.previous.as_ref() == Some(&presented) && session.previous_usable;
    if session.current != presented && !usable_parent {
        // An old refresh token came back: someone else has a copy. Revoke the session.
        db.sessions.remove(&handle);
        state.stats.thefts.fetch_add(1, Ordering::SeqCst);
        return unauthorised("token theft detected");
    }
    let fresh = new_refresh_token();
    if session.current == presented {
        if let Some(old) = session.previous.take() {
            session.retired.insert(old);
        }
        session.previous = Some(presented.clone());
    } else {
        // The parent again (the answer to its refresh was lost): another child of it.
        let superseded = std::mem::take(&mut session.current);
        session.retired.insert(superseded);
    }
    session.previous_usable = true;
    session.current = hash(&fresh);
    let user_id = session.user_id.clone();
    let parent = session.previous.clone();
    let email = db
        .users
        .values()
        .find(|u| u.id == user_id)
        .map(|u| u.email.clone())
        .unwrap_or_default();
    let mut out = HeaderMap::new();
    if let Some(session) = db.sessions.get(&handle) {
        state.issue(&mut out, session, &email, Some(&fresh), parent);
    }
    (out, Json(json!({}))).into_response()
}

async fn signout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // The sign-out API requires a session (supertokens-node `sessionRequired: true`).
    let claims = match state.verify(&headers, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    state.stats.signouts.fetch_add(1, Ordering::SeqCst);
    state.db().sessions.remove(&claims.session_handle);
    let mut h = HeaderMap::new();
    clear_tokens(&mut h);
    (h, Json(json!({"status": "OK"}))).into_response()
}

async fn sessioninfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.stats.sessioninfo.fetch_add(1, Ordering::SeqCst);
    match state.verify(&headers, state.cfg.check_database) {
        Ok(c) => Json(json!({
            "sessionHandle": c.session_handle, "userId": c.sub, "email": c.email,
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn revoke_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let claims = match state.verify(&headers, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let scope = body["scope"].as_str().unwrap_or_default();
    if !matches!(scope, "global" | "others") {
        return message(StatusCode::BAD_REQUEST, "scope must be global or others");
    }
    let mut db = state.db();
    let before = db.sessions.len();
    db.sessions.retain(|handle, s| {
        s.user_id != claims.sub || (scope == "others" && *handle == claims.session_handle)
    });
    let revoked = before - db.sessions.len();
    let mut h = HeaderMap::new();
    if scope == "global" {
        clear_tokens(&mut h);
    }
    (h, Json(json!({"status": "OK", "revoked": revoked}))).into_response()
}

async fn emulator_sessions(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Vec<Value>> {
    let db = state.db();
    let mut rows: Vec<Value> = db
        .sessions
        .values()
        .filter(|s| q.get("user_id").is_none_or(|u| *u == s.user_id))
        .map(|s| json!({"handle": s.handle, "user_id": s.user_id}))
        .collect();
    rows.sort_by_key(|v| v["handle"].as_str().unwrap_or_default().to_owned());
    Json(rows)
}

async fn emulator_create_user(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    let email = body["email"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let password = body["password"].as_str().unwrap_or_default().to_owned();
    let user = match new_user(&state, &email, password).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    state.db().users.insert(email, user.clone());
    (StatusCode::CREATED, Json(user_json(&user))).into_response()
}

/// What a backend's `revokeAllSessionsForUser(userId)` does, from elsewhere.
async fn emulator_revoke_user(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let user = body["user_id"].as_str().unwrap_or_default();
    let mut db = state.db();
    let before = db.sessions.len();
    db.sessions.retain(|_, s| s.user_id != user);
    Json(json!({"revoked": before - db.sessions.len()}))
}

async fn emulator_stats(State(state): State<AppState>) -> Json<Value> {
    let s = &state.stats;
    Json(json!({
        "refreshes": s.refreshes.load(Ordering::SeqCst),
        "signins": s.signins.load(Ordering::SeqCst),
        "signouts": s.signouts.load(Ordering::SeqCst),
        "thefts_detected": s.thefts.load(Ordering::SeqCst),
        "sessioninfo": s.sessioninfo.load(Ordering::SeqCst),
    }))
}

async fn emulator_reset_stats(State(state): State<AppState>) -> StatusCode {
    let s = &state.stats;
    for c in [
        &s.refreshes,
        &s.signins,
        &s.signouts,
        &s.thefts,
        &s.sessioninfo,
    ] {
        c.store(0, Ordering::SeqCst);
    }
    StatusCode::NO_CONTENT
}

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
