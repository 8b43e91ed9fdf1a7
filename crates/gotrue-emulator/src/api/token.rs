//! `POST /token?grant_type=password|refresh_token|pkce`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AppState, Body, Client, hash_password, password_matches, session_json, start_session};
use crate::db::{FlowStateRow, RefreshTokenRow, SessionRow, UserRow};
use crate::error::ApiError;
use crate::tokens::{self, PkceMethod};

#[derive(Debug, Deserialize)]
pub struct TokenParams {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    auth_code: Option<String>,
    code_verifier: Option<String>,
}

pub async fn token(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    client: Client,
    Body(params): Body<TokenParams>,
) -> Result<Json<Value>, ApiError> {
    let stats = &state.stats;
    match query.get("grant_type").map(String::as_str) {
        Some("password") => super::Stats::bump(&stats.password),
        Some("refresh_token") => super::Stats::bump(&stats.refresh),
        Some("pkce") => super::Stats::bump(&stats.pkce),
        _ => {}
    }
    match query.get("grant_type").map(String::as_str) {
        Some("password") => password_grant(&state, &client, params).await.map(Json),
        Some("refresh_token") => refresh_grant(&state, &client, params).map(Json),
        Some("pkce") => pkce_grant(&state, &client, params).map(Json),
        _ => Err(ApiError::bad_request(
            "invalid_credentials",
            "unsupported_grant_type",
        )),
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::bad_request("invalid_credentials", "Invalid login credentials")
}

async fn password_grant(
    state: &AppState,
    client: &Client,
    params: TokenParams,
) -> Result<Value, ApiError> {
    let email = params.email.as_deref().filter(|s| !s.is_empty());
    let phone = params.phone.as_deref().filter(|s| !s.is_empty());
    let email = match (email, phone) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Only an email address or phone number should be provided on login.",
            ));
        }
        (None, None) => return Err(ApiError::validation("missing email or phone")),
        (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                "phone_provider_disabled",
                "Phone logins are disabled",
            ));
        }
        (Some(email), None) => email.trim().to_lowercase(),
    };
    let password = params.password.unwrap_or_default();
    let user = {
        let conn = state.db.lock();
        UserRow::find_by_email(&conn, &email)?
    };
    let Some(user) = user.filter(|u| u.encrypted_password.is_some()) else {
        // Spend the time a real check would, so unknown addresses are not told apart by timing.
        let dummy = match DUMMY_HASH.get() {
            Some(hash) => hash.clone(),
            None => {
                let hash = hash_password(state, "not-a-real-password".to_owned()).await?;
                DUMMY_HASH.get_or_init(|| hash).clone()
            }
        };
        let _ = password_matches(password, Some(dummy)).await;
        return Err(invalid_credentials());
    };
    if user.is_banned(state.now()) {
        return Err(ApiError::bad_request("user_banned", "User is banned"));
    }
    if !password_matches(password, user.encrypted_password.clone()).await {
        return Err(invalid_credentials());
    }
    if user.email_confirmed_at.is_none() {
        return Err(ApiError::bad_request(
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let conn = state.db.lock();
    // Re-read: the user may have changed while the password was being checked.
    let mut user = UserRow::find(&conn, &user.id)?.ok_or_else(invalid_credentials)?;
    let (session, token) = start_session(state, &conn, &mut user, "password", None, client)?;
    session_json(state, &conn, &user, &session, &token.token, Map::new())
}

/// A bcrypt hash at the configured cost, used only to equalise timing.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn refresh_grant(
    state: &AppState,
    client: &Client,
    params: TokenParams,
) -> Result<Value, ApiError> {
    let presented = params.refresh_token.unwrap_or_default();
    if !tokens::refresh_token_format_ok(&presented) {
        return Err(ApiError::validation("Refresh token is not valid"));
    }
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let now = state.now();
    let not_found = || {
        ApiError::bad_request(
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        )
    };
    let token = RefreshTokenRow::find(&tx, &presented)?.ok_or_else(not_found)?;
    let user = UserRow::find(&tx, &token.user_id)?.ok_or_else(not_found)?;
    if user.is_banned(now) {
        return Err(ApiError::bad_request(
            "user_banned",
            "Invalid Refresh Token: User Banned",
        ));
    }
    let mut session = SessionRow::find(&tx, &token.session_id)?.ok_or_else(not_found)?;
    check_session_validity(state, &session, now)?;

    let reuse_window =
        i64::try_from(state.config.refresh_token_reuse_interval.as_micros()).unwrap_or(i64::MAX);
    let issued = if token.revoked {
        // A refresh token presented a second time: two clients raced, or one lost an answer.
        super::Stats::bump(&state.stats.reuse);
        let active = RefreshTokenRow::active_for_session(&tx, &session.id)?;
        match active {
            // The client lost the answer to its last refresh: hand it the live token again.
            Some(active)
                if active.parent.as_deref() == Some(token.token.as_str())
                    && !state.config.is_embedded() =>
            {
                active
            }
            // Embedded, the live token is stored as a digest and cannot be handed out
            // again: it is replaced by a fresh child of the replayed token.
            Some(active) if active.parent.as_deref() == Some(token.token.as_str()) => {
                RefreshTokenRow::revoke(&tx, active.id, now)?;
                RefreshTokenRow::create(&tx, &user.id, &session.id, Some(&token.token), now)?
            }
            // Inside the reuse interval (concurrent refreshes): a fresh child of this token.
            _ if now <= token.updated_at.saturating_add(reuse_window) => {
                RefreshTokenRow::create(&tx, &user.id, &session.id, Some(&token.token), now)?
            }
            _ => {
                if state.config.refresh_token_rotation {
                    RefreshTokenRow::revoke_family(&tx, &session.id, now)?;
                    tx.commit()?;
                }
                return Err(ApiError::bad_request(
                    "refresh_token_already_used",
                    "Invalid Refresh Token: Already Used",
                ));
            }
        }
    } else {
        RefreshTokenRow::revoke(&tx, token.id, now)?;
        RefreshTokenRow::create(&tx, &user.id, &session.id, Some(&token.token), now)?
    };
    session.refreshed_at = Some(now);
    session.updated_at = now;
    session.user_agent = client.user_agent.clone().or(session.user_agent);
    session.ip = Some(client.ip.clone());
    session.save(&tx)?;
    let body = session_json(state, &tx, &user, &session, &issued.token, Map::new())?;
    tx.commit()?;
    Ok(body)
}

/// Time-box and inactivity limits, enforced only here (at refresh), as GoTrue does.
fn check_session_validity(
    state: &AppState,
    session: &SessionRow,
    now: i64,
) -> Result<(), ApiError> {
    let micros = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    if let Some(timebox) = state.config.sessions_timebox.filter(|d| !d.is_zero())
        && now > session.created_at.saturating_add(micros(timebox))
    {
        return Err(ApiError::bad_request(
            "session_expired",
            "Invalid Refresh Token: Session Expired",
        ));
    }
    if let Some(timeout) = state
        .config
        .sessions_inactivity_timeout
        .filter(|d| !d.is_zero())
    {
        let last = session.refreshed_at.unwrap_or(session.created_at);
        if now > last.saturating_add(micros(timeout)) {
            return Err(ApiError::bad_request(
                "session_expired",
                "Invalid Refresh Token: Session Expired (Inactivity)",
            ));
        }
    }
    Ok(())
}

fn pkce_grant(state: &AppState, client: &Client, params: TokenParams) -> Result<Value, ApiError> {
    let code = params.auth_code.unwrap_or_default();
    let verifier = params.code_verifier.unwrap_or_default();
    if code.is_empty() || verifier.is_empty() {
        return Err(ApiError::validation(
            "invalid request: both auth code and code verifier should be non-empty",
        ));
    }
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let not_found = || {
        ApiError::not_found(
            "flow_state_not_found",
            "invalid flow state, no valid flow state found",
        )
    };
    let flow = FlowStateRow::find_by_auth_code(&tx, &code)?
        .filter(|f| f.user_id.is_some() && f.auth_code_issued_at.is_some())
        .ok_or_else(not_found)?;
    let now = state.now();
    if flow.is_expired(state.flow_state_expiry(), now) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "flow_state_expired",
            "invalid flow state, flow state has expired",
        ));
    }
    let method = PkceMethod::parse(&flow.code_challenge_method).ok_or_else(not_found)?;
    if flow.code_challenge.is_empty() || !method.verify(&flow.code_challenge, &verifier) {
        return Err(ApiError::bad_request(
            "bad_code_verifier",
            "code challenge does not match previously saved code verifier",
        ));
    }
    let user_id = flow.user_id.clone().unwrap_or_default();
    let mut user = UserRow::find(&tx, &user_id)?.ok_or_else(not_found)?;
    if user.is_banned(now) {
        return Err(ApiError::bad_request("user_banned", "User is banned"));
    }
    FlowStateRow::delete(&tx, &flow.id)?;
    let provider = (flow.authentication_method == "oauth").then_some(flow.provider_type.as_str());
    let (session, token) = start_session(
        state,
        &tx,
        &mut user,
        &flow.authentication_method,
        provider,
        client,
    )?;
    let mut extra = Map::new();
    if let Some(t) = flow
        .provider_access_token
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        extra.insert("provider_token".into(), json!(t));
    }
    if let Some(t) = flow
        .provider_refresh_token
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        extra.insert("provider_refresh_token".into(), json!(t));
    }
    let body = session_json(state, &tx, &user, &session, &token.token, extra)?;
    tx.commit()?;
    Ok(body)
}
