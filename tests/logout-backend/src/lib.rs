//! An example app backend: the kind that keeps its own state per session (push tokens,
//! websockets, caches) and exposes the logout endpoint Tessera's logout hook calls.
//!
//! - `POST /api/auth/logout` with `Authorization: Bearer <access_token>`, no body: checks
//!   the token with the auth server (`GET /user`), drops the session's state, answers
//!   `{"success": true, "message": "Logged out"}` — or `401 UNAUTHORIZED` (no or invalid
//!   token), `502 SUPABASE_ERROR` (the auth server cannot be asked), `500 LOGOUT_ERROR`
//!   (the state could not be dropped), as `{"success": false, "error": {code, message}}`.
//! - `POST /api/devices` (bearer, `{"push_token": "…"}`): state to clean up later.
//! - `GET /api/devices`: the session ids that still have state (for tests).
//! - `POST /_test/fail-next` (`{"code": "LOGOUT_ERROR" | "SUPABASE_ERROR"}`) and
//!   `GET /_test/calls`: provoke and observe, for tests.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};

/// Where the backend checks tokens.
#[derive(Debug, Clone)]
pub struct Config {
    /// The auth server's root (GoTrue root or `https://<ref>.supabase.co/auth/v1`).
    pub auth_url: String,
    pub anon_key: String,
}

#[derive(Debug)]
struct Shared {
    cfg: Config,
    http: reqwest::Client,
    /// session id → push token
    state: Mutex<HashMap<String, String>>,
    fail_next: Mutex<VecDeque<String>>,
    calls: Mutex<Vec<Value>>,
}

type AppState = Arc<Shared>;

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"success": false, "error": {"code": code, "message": message}})),
    )
        .into_response()
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

/// Asks the auth server whether the token is live; returns its session id.
async fn check(state: &Shared, token: &str) -> Result<String, Response> {
    let resp = state
        .http
        .get(format!("{}/user", state.cfg.auth_url.trim_end_matches('/')))
        .header("apikey", &state.cfg.anon_key)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|_| {
            answer(
                StatusCode::BAD_GATEWAY,
                "SUPABASE_ERROR",
                "Could not reach the auth server",
            )
        })?;
    match resp.status().as_u16() {
        200 => {}
        401 | 403 => {
            return Err(answer(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Invalid or expired token",
            ));
        }
        _ => {
            return Err(answer(
                StatusCode::BAD_GATEWAY,
                "SUPABASE_ERROR",
                "The auth server failed",
            ));
        }
    }
    // The auth server vouched for the token: its claims can be read.
    let claims: Value = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Ok(claims["session_id"].as_str().unwrap_or_default().to_owned())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let record = |outcome: &str, session: &str| {
        state
            .calls
            .lock()
            .unwrap()
            .push(json!({"outcome": outcome, "session_id": session}));
    };
    let Some(token) = bearer(&headers) else {
        record("UNAUTHORIZED", "");
        return answer(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Missing bearer token",
        );
    };
    if let Some(code) = state.fail_next.lock().unwrap().pop_front() {
        record(&code, "");
        return match code.as_str() {
            "SUPABASE_ERROR" => answer(
                StatusCode::BAD_GATEWAY,
                "SUPABASE_ERROR",
                "Could not reach the auth server",
            ),
            _ => answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "LOGOUT_ERROR",
                "Could not clear the session's state",
            ),
        };
    }
    let session = match check(&state, token).await {
        Ok(session) => session,
        Err(response) => {
            record("UNAUTHORIZED_OR_SUPABASE", "");
            return response;
        }
    };
    state.state.lock().unwrap().remove(&session);
    record("ok", &session);
    Json(json!({"success": true, "message": "Logged out"})).into_response()
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return answer(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Missing bearer token",
        );
    };
    match check(&state, token).await {
        Ok(session) => {
            let push = body["push_token"].as_str().unwrap_or("none").to_owned();
            state.state.lock().unwrap().insert(session, push);
            Json(json!({"success": true})).into_response()
        }
        Err(response) => response,
    }
}

async fn devices(State(state): State<AppState>) -> Json<Vec<String>> {
    let mut ids: Vec<String> = state.state.lock().unwrap().keys().cloned().collect();
    ids.sort();
    Json(ids)
}

async fn fail_next(State(state): State<AppState>, Json(body): Json<Value>) -> StatusCode {
    let code = body["code"].as_str().unwrap_or("LOGOUT_ERROR").to_owned();
    state.fail_next.lock().unwrap().push_back(code);
    StatusCode::NO_CONTENT
}

async fn calls(State(state): State<AppState>) -> Json<Vec<Value>> {
    Json(state.calls.lock().unwrap().clone())
}

pub fn router(cfg: Config) -> Router {
    let state = Arc::new(Shared {
        cfg,
        http: reqwest::Client::new(),
        state: Mutex::default(),
        fail_next: Mutex::default(),
        calls: Mutex::default(),
    });
    Router::new()
        .route("/api/auth/logout", post(logout))
        .route("/api/devices", post(register).get(devices))
        .route("/_test/fail-next", post(fail_next))
        .route("/_test/calls", get(calls))
        .with_state(state)
}

/// A running backend; stops when dropped.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn logout_url(&self) -> String {
        format!("{}/api/auth/logout", self.url())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves on `addr` (port 0: any free port).
pub async fn start(cfg: Config, addr: SocketAddr) -> std::io::Result<Handle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(cfg);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Handle { addr, task })
}
