//! Emulator-only routes under `/_emulator/` (a client of real Supabase never needs them):
//! captured mail, fault injection, the session list, the clock and the fake OAuth provider.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::verify::with_query;
use super::{AppState, Body, validate_email};
use crate::clock::rfc3339;
use crate::config::OAUTH_PROVIDERS;
use crate::db::{FlowStateRow, MailRow, OAuthGrantRow, SessionRow};
use crate::error::ApiError;
use crate::faults::Fault;
use crate::tokens;

pub async fn mail(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<MailRow>>, ApiError> {
    let conn = state.db.lock();
    Ok(Json(MailRow::list(
        &conn,
        query.get("to").map(String::as_str),
    )?))
}

pub async fn clear_mail(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    MailRow::clear(&state.db.lock())?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_faults(State(state): State<AppState>) -> Json<Vec<Fault>> {
    Json(state.faults.list())
}

pub async fn add_fault(
    State(state): State<AppState>,
    Body(fault): Body<Fault>,
) -> Result<(StatusCode, Json<Fault>), ApiError> {
    fault.validate().map_err(ApiError::validation)?;
    state.faults.add(fault.clone());
    Ok((StatusCode::CREATED, Json(fault)))
}

pub async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

/// The sessions that exist (optionally for one user): for tests to check revocations.
pub async fn sessions(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let conn = state.db.lock();
    let rows = match query.get("user_id") {
        Some(user_id) => SessionRow::for_user(&conn, user_id)?,
        None => SessionRow::all(&conn)?,
    };
    Ok(Json(
        rows.iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "user_id": s.user_id,
                    "created_at": rfc3339(s.created_at),
                    "updated_at": rfc3339(s.updated_at),
                    "refreshed_at": s.refreshed_at.map(rfc3339),
                    "aal": s.aal,
                    "user_agent": s.user_agent,
                    "ip": s.ip,
                })
            })
            .collect(),
    ))
}

/// Every access and refresh token issued since start (emulator-only: the secrets scans
/// search what clients wrote for them).
pub async fn issued_tokens(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(
        state
            .issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    )
}

/// Request counters (answered requests, successful or not; authenticated routes count
/// only requests that passed authentication).
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    use std::sync::atomic::Ordering::SeqCst;
    let s = &state.stats;
    Json(json!({
        "refresh_token_grants": s.refresh.load(SeqCst),
        "password_grants": s.password.load(SeqCst),
        "pkce_grants": s.pkce.load(SeqCst),
        "logouts": s.logout.load(SeqCst),
        "user_requests": s.user.load(SeqCst),
        "refresh_token_reuses": s.reuse.load(SeqCst),
        "rpc_calls": s.rpc.load(SeqCst),
        "function_calls": s.function.load(SeqCst),
        "storage_requests": s.storage.load(SeqCst),
        "faults_injected": state.faults.injected(),
    }))
}

pub async fn reset_stats(State(state): State<AppState>) -> StatusCode {
    use std::sync::atomic::Ordering::SeqCst;
    let s = &state.stats;
    for c in [
        &s.refresh,
        &s.password,
        &s.pkce,
        &s.logout,
        &s.user,
        &s.reuse,
        &s.rpc,
        &s.function,
        &s.storage,
    ] {
        c.store(0, SeqCst);
    }
    state.faults.reset_injected();
    StatusCode::NO_CONTENT
}

fn time_json(state: &AppState) -> Json<Value> {
    Json(json!({
        "now": state.clock.now_secs(),
        "now_ms": state.clock.now().timestamp_millis(),
        "offset_ms": state.clock.offset_ms(),
    }))
}

pub async fn time(State(state): State<AppState>) -> Json<Value> {
    time_json(&state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceParams {
    #[serde(default)]
    advance_secs: i64,
    #[serde(default)]
    advance_ms: i64,
}

/// Moves the emulator's clock (tokens, sessions, flow states and codes all follow it).
pub async fn advance_time(
    State(state): State<AppState>,
    Body(params): Body<AdvanceParams>,
) -> Json<Value> {
    state.clock.advance_ms(
        params
            .advance_secs
            .saturating_mul(1000)
            .saturating_add(params.advance_ms),
    );
    time_json(&state)
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn known_provider(provider: &str) -> Result<(), ApiError> {
    if OAUTH_PROVIDERS.contains(&provider) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "oauth_provider_not_supported",
            format!("Unknown provider {provider}"),
        ))
    }
}

/// The fake provider's sign-in page: a form (POST) with the `state` and an `email` field.
pub async fn provider_page(
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    known_provider(&provider)?;
    let state = escape_html(query.get("state").map(String::as_str).unwrap_or_default());
    let name = escape_html(&provider);
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in with {name} (emulator)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input,button{{font-size:1rem;padding:.5rem;margin:.25rem 0;width:100%;box-sizing:border-box}}</style></head>
<body><h1>Sign in with {name}</h1>
<p>This is the GoTrue emulator's stand-in for {name}. Any address signs in (or creates) that account.</p>
<form method="post">
<input type="hidden" name="state" value="{state}">
<label for="email">Email</label>
<input type="email" id="email" name="email" required autofocus placeholder="you@example.com">
<button type="submit" name="decision" value="allow">Continue</button>
<button type="submit" name="decision" value="deny" formnovalidate>Cancel</button>
</form></body></html>"#
    );
    let mut response = Html(html).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The form was submitted: hand a provider code to GoTrue's `/callback`, like a real
/// provider, or report that the user cancelled.
pub async fn provider_submit(
    State(app): State<AppState>,
    Path(provider): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    known_provider(&provider)?;
    let flow_id = form.get("state").cloned().unwrap_or_default();
    let flow = {
        let conn = app.db.lock();
        FlowStateRow::find(&conn, &flow_id)?
    }
    .filter(|f| f.provider_type == provider && f.user_id.is_none())
    .ok_or_else(|| ApiError::bad_request("bad_oauth_state", "OAuth state parameter is invalid"))?;
    let callback = format!("{}/callback", app.external_url);
    let location = if form.get("decision").map(String::as_str) == Some("deny") {
        with_query(
            &callback,
            &[
                ("error", "access_denied"),
                ("error_description", "The user cancelled the sign-in"),
                ("state", &flow.id),
            ],
        )
    } else {
        let email = validate_email(form.get("email").map(String::as_str).unwrap_or_default())?;
        let code = tokens::random_token(24);
        let conn = app.db.lock();
        OAuthGrantRow {
            code: code.clone(),
            flow_state_id: flow.id.clone(),
            provider,
            email,
        }
        .insert(&conn, app.now())?;
        with_query(&callback, &[("code", &code), ("state", &flow.id)])
    };
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}
