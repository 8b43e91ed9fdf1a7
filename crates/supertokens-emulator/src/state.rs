//! The in-memory state: users, sessions, counters, and the token rules (minting,
//! rotation with theft detection, verification).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Config;

#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) password_hash: String,
    pub(crate) time_joined: i64,
}

#[derive(Debug)]
pub(crate) struct SessionRow {
    pub(crate) handle: String,
    pub(crate) user_id: String,
    /// Hash of the refresh token in use.
    pub(crate) current: String,
    /// Hash of the one before, usable until the newest access token is first seen.
    pub(crate) previous: Option<String>,
    pub(crate) previous_usable: bool,
    /// Hashes of every older token of this session (reuse = theft).
    pub(crate) retired: HashSet<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Db {
    pub(crate) users: HashMap<String, UserRow>,
    pub(crate) sessions: HashMap<String, SessionRow>,
}

/// Request counters (`GET /_emulator/stats`).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) refreshes: AtomicU64,
    pub(crate) signins: AtomicU64,
    pub(crate) signouts: AtomicU64,
    pub(crate) thefts: AtomicU64,
    pub(crate) sessioninfo: AtomicU64,
    /// Requests still to be answered as a captive portal would (see `captive_portal`).
    pub(crate) captive: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) db: Mutex<Db>,
    pub(crate) key: (EncodingKey, DecodingKey),
    pub(crate) stats: Stats,
}

impl Shared {
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) type AppState = Arc<Shared>;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) sub: String,
    #[serde(rename = "sessionHandle")]
    pub(crate) session_handle: String,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    #[serde(rename = "refreshTokenHash1")]
    pub(crate) refresh_token_hash1: String,
    #[serde(
        rename = "parentRefreshTokenHash1",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) parent_refresh_token_hash1: Option<String>,
    #[serde(rename = "tId")]
    pub(crate) tenant: String,
    pub(crate) email: String,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn new_refresh_token() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// `401 unauthorised`, clearing the client's tokens as SuperTokens does in header mode.
pub(crate) fn unauthorised(text: &str) -> Response {
    let mut r = message(StatusCode::UNAUTHORIZED, text);
    clear_tokens(r.headers_mut());
    r
}

pub(crate) fn clear_tokens(h: &mut HeaderMap) {
    h.insert("front-token", HeaderValue::from_static("remove"));
    h.insert("st-access-token", HeaderValue::from_static(""));
    h.insert("st-refresh-token", HeaderValue::from_static(""));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("front-token, st-access-token, st-refresh-token"),
    );
}

pub(crate) fn user_json(u: &UserRow) -> Value {
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
    pub(crate) fn issue(
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

    pub(crate) fn create_session(&self, db: &mut Db, user: &UserRow) -> (HeaderMap, String) {
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
    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        check_database: bool,
    ) -> Result<Claims, Response> {
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

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
