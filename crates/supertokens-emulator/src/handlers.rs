//! The routes: the frontend-driver interface, the two app endpoints, and `/_emulator/*`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::*;

#[derive(Debug, Deserialize)]
pub(crate) struct FormField {
    pub(crate) id: String,
    pub(crate) value: Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FormBody {
    #[serde(rename = "formFields")]
    pub(crate) form_fields: Vec<FormField>,
}

pub(crate) fn field(body: &FormBody, id: &str) -> String {
    body.form_fields
        .iter()
        .find(|f| f.id == id)
        .and_then(|f| f.value.as_str())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn field_error(id: &str, error: &str) -> Response {
    Json(json!({"status": "FIELD_ERROR", "formFields": [{"id": id, "error": error}]}))
        .into_response()
}

pub(crate) fn body_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes)
        .map_err(|_| message(StatusCode::BAD_REQUEST, "Please provide a JSON body"))
}

/// A new user row, the password hashed on the blocking pool.
pub(crate) async fn new_user(
    state: &Shared,
    email: &str,
    password: String,
) -> Result<UserRow, Response> {
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

pub(crate) async fn signup(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
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

pub(crate) async fn signin(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
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

pub(crate) async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Response {
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

pub(crate) async fn signout(State(state): State<AppState>, headers: HeaderMap) -> Response {
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

pub(crate) async fn sessioninfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.stats.sessioninfo.fetch_add(1, Ordering::SeqCst);
    match state.verify(&headers, state.cfg.check_database) {
        Ok(c) => Json(json!({
            "sessionHandle": c.session_handle, "userId": c.sub, "email": c.email,
        }))
        .into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn revoke_sessions(
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

pub(crate) async fn emulator_sessions(
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

pub(crate) async fn emulator_create_user(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Response {
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
pub(crate) async fn emulator_revoke_user(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let user = body["user_id"].as_str().unwrap_or_default();
    let mut db = state.db();
    let before = db.sessions.len();
    db.sessions.retain(|_, s| s.user_id != user);
    Json(json!({"revoked": before - db.sessions.len()}))
}

pub(crate) async fn emulator_stats(State(state): State<AppState>) -> Json<Value> {
    let s = &state.stats;
    Json(json!({
        "refreshes": s.refreshes.load(Ordering::SeqCst),
        "signins": s.signins.load(Ordering::SeqCst),
        "signouts": s.signouts.load(Ordering::SeqCst),
        "thefts_detected": s.thefts.load(Ordering::SeqCst),
        "sessioninfo": s.sessioninfo.load(Ordering::SeqCst),
    }))
}

pub(crate) async fn emulator_reset_stats(State(state): State<AppState>) -> StatusCode {
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

/// `POST /_emulator/captive-portal {"times": n}`: the next `n` requests outside
/// `/_emulator` are answered `401` with an HTML page, as a proxy or captive portal in front
/// of the backend would, without SuperTokens' JSON body.
pub(crate) async fn emulator_captive_portal(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let times = body["times"].as_u64().unwrap_or(1);
    state.stats.captive.store(times, Ordering::SeqCst);
    Json(json!({ "times": times }))
}

/// Middleware answering the requests `emulator_captive_portal` asked for.
pub(crate) async fn captive_portal(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let hit = !request.uri().path().starts_with("/_emulator")
        && state
            .stats
            .captive
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if hit {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><body>Please sign in to the Wi-Fi</body></html>",
        )
            .into_response();
    }
    next.run(request).await
}
