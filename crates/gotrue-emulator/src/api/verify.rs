//! `POST /verify` (code or token hash → session) and `GET /verify` (the emailed link →
//! 303 redirect with tokens in the fragment, or `?code=` for a PKCE flow).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::form_urlencoded;

use super::signup::confirm_email;
use super::user::set_email;
use super::{AppState, Body, Client, session_json, start_session};
use crate::db::{FlowStateRow, OneTimeTokenRow, UserRow};
use crate::error::ApiError;
use crate::mail::go_query_escape;
use crate::redirect;
use crate::tokens;

#[derive(Debug, Deserialize)]
pub struct VerifyParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    redirect_to: Option<String>,
}

/// Which stored token types a verification `type` may consume.
fn token_types(kind: &str) -> Result<&'static [&'static str], ApiError> {
    Ok(match kind {
        "signup" => &["confirmation"],
        "invite" => &["invite"],
        "recovery" => &["recovery"],
        "magiclink" => &["magiclink", "confirmation"],
        "email" => &["confirmation", "magiclink"],
        "email_change" => &["email_change", "email_change_current"],
        "sms" | "phone_change" => {
            return Err(ApiError::unprocessable(
                "phone_provider_disabled",
                "Phone logins are disabled",
            ));
        }
        _ => return Err(ApiError::validation("Unsupported verification type")),
    })
}

fn otp_expired(by_hash: bool) -> ApiError {
    ApiError::forbidden(
        "otp_expired",
        if by_hash {
            "Email link is invalid or has expired"
        } else {
            "Token has expired or is invalid"
        },
    )
}

/// The answer to the first of the two confirmations of a secure email change (GoTrue's
/// `singleConfirmationAccepted`).
pub const SINGLE_CONFIRMATION_ACCEPTED: &str =
    "Confirmation link accepted. Please proceed to confirm link sent to the other email";

/// What a used token did.
enum Consumed {
    /// Confirmed: the user, and the consumed token (whose flow state, if any, continues a
    /// PKCE sign-in).
    Done(Box<(UserRow, OneTimeTokenRow)>),
    /// One of the two mails of a secure email change: the other one is still to be used.
    /// No session; the address is unchanged.
    HalfOfEmailChange,
}

/// Finds, checks and consumes the token, then applies what it confirms.
fn consume(
    state: &AppState,
    conn: &Connection,
    kind: &str,
    hash: &str,
    by_hash: bool,
) -> Result<Consumed, ApiError> {
    let types = token_types(kind)?;
    let token =
        OneTimeTokenRow::find_by_hash(conn, hash, types)?.ok_or_else(|| otp_expired(by_hash))?;
    let now = state.now();
    let lifetime = i64::try_from(state.config.otp_exp.as_micros()).unwrap_or(i64::MAX);
    if now > token.created_at.saturating_add(lifetime) {
        OneTimeTokenRow::delete(conn, &token.id)?;
        return Err(otp_expired(by_hash));
    }
    let mut user = UserRow::find(conn, &token.user_id)?.ok_or_else(|| otp_expired(by_hash))?;
    if user.is_banned(now) {
        return Err(ApiError::forbidden("user_banned", "User is banned"));
    }
    OneTimeTokenRow::delete(conn, &token.id)?;
    match token.token_type.as_str() {
        kind @ ("email_change" | "email_change_current") => {
            // Secure email change: both mails' tokens are needed, in either order.
            let other = if kind == "email_change" {
                "email_change_current"
            } else {
                "email_change"
            };
            if OneTimeTokenRow::exists_for_user(conn, &user.id, other)? {
                return Ok(Consumed::HalfOfEmailChange);
            }
            let new_email = if kind == "email_change" {
                token.relates_to.clone()
            } else {
                user.email_change
                    .clone()
                    .ok_or_else(|| otp_expired(by_hash))?
            };
            if UserRow::find_by_email(conn, &new_email)?.is_some_and(|u| u.id != user.id) {
                return Err(ApiError::unprocessable(
                    "email_exists",
                    "A user with this email address has already been registered",
                ));
            }
            set_email(conn, &mut user, &new_email, now)?;
        }
        _ => confirm_email(conn, &mut user, now)?,
    }
    Ok(Consumed::Done(Box::new((user, token))))
}

pub async fn verify_post(
    State(state): State<AppState>,
    client: Client,
    Body(params): Body<VerifyParams>,
) -> Result<Json<Value>, ApiError> {
    let kind = params.kind.clone().unwrap_or_default();
    let token = params.token.as_deref().filter(|s| !s.is_empty());
    let token_hash = params.token_hash.as_deref().filter(|s| !s.is_empty());
    let (hash, by_hash) = match (token, token_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Verify requires either a token or a token hash",
            ));
        }
        (None, None) => {
            return Err(ApiError::validation(
                "Verify requires either a token or a token hash",
            ));
        }
        (None, Some(hash)) => {
            let extra = [&params.email, &params.phone, &params.redirect_to]
                .iter()
                .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()));
            if extra {
                return Err(ApiError::validation(
                    "Only the token_hash and type should be provided",
                ));
            }
            (hash.to_owned(), true)
        }
        (Some(code), None) => {
            if params.phone.as_deref().is_some_and(|p| !p.is_empty()) {
                return Err(ApiError::unprocessable(
                    "phone_provider_disabled",
                    "Phone logins are disabled",
                ));
            }
            let email = params
                .email
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ApiError::validation(
                        "Only an email address or phone number should be provided on verify",
                    )
                })?;
            (
                tokens::token_hash(&email.trim().to_lowercase(), code),
                false,
            )
        }
    };
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let mut user = match consume(&state, &tx, &kind, &hash, by_hash)? {
        Consumed::Done(done) => done.0,
        Consumed::HalfOfEmailChange => {
            tx.commit()?;
            // GoTrue's exact body: `code` is the status as a string.
            return Ok(Json(serde_json::json!({
                "msg": SINGLE_CONFIRMATION_ACCEPTED,
                "code": "200",
            })));
        }
    };
    let (session, refresh) = start_session(&state, &tx, &mut user, "otp", None, &client)?;
    let body = session_json(&state, &tx, &user, &session, &refresh.token, Map::new())?;
    tx.commit()?;
    Ok(Json(body))
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Sets query parameters on a URL the way GoTrue's redirects do (`u.Query()`, `q.Set`,
/// `u.RawQuery = q.Encode()`): the existing parameters are kept, a set one replaces any of
/// its name, and the whole query is written again sorted by name with Go's escaping — so
/// `tessera://auth/callback?flow=F` gains a code as `…?code=C&flow=F`.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let (without_fragment, fragment) = match base.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (base, None),
    };
    let (path, existing) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, q),
        None => (without_fragment, ""),
    };
    let mut params: Vec<(String, String)> = form_urlencoded::parse(existing.as_bytes())
        .into_owned()
        .filter(|(k, _)| !pairs.iter().any(|(set, _)| set == k))
        .collect();
    params.extend(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // A stable sort: values of one name keep their order, as in Go.
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let query = params
        .iter()
        .map(|(k, v)| format!("{}={}", go_query_escape(k), go_query_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    let sep = if query.is_empty() { "" } else { "?" };
    match fragment {
        Some(f) => format!("{path}{sep}{query}#{f}"),
        None => format!("{path}{sep}{query}"),
    }
}

/// Replaces the URL's fragment with the given parameters (sorted by key, like Go's encoder).
pub fn with_fragment(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let fragment = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", go_query_escape(k), go_query_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    let base = base.split('#').next().unwrap_or(base);
    format!("{base}#{fragment}")
}

/// GoTrue's `oauthErrorMap`: the OAuth error class of the statuses it has one for.
pub fn oauth_error_class(status: u16) -> Option<&'static str> {
    match status {
        400 => Some("invalid_request"),
        401 => Some("unauthorized_client"),
        403 => Some("access_denied"),
        500 => Some("server_error"),
        503 => Some("temporarily_unavailable"),
        _ => None,
    }
}

/// The error redirect GoTrue sends (`prepErrorRedirectURL`): parameters in the fragment,
/// and in the query for PKCE; `error` only for a status `oauthErrorMap` knows.
pub fn error_redirect(target: &str, err: &ApiError, pkce: bool) -> String {
    let mut pairs = vec![
        ("error_code", &*err.code),
        ("error_description", err.msg.as_str()),
    ];
    if let Some(class) = oauth_error_class(err.status.as_u16()) {
        pairs.push(("error", class));
    }
    let target = if pkce {
        with_query(target, &pairs)
    } else {
        target.to_owned()
    };
    let mut fragment_pairs = pairs.to_vec();
    fragment_pairs.push(("sb", ""));
    with_fragment(&target, &fragment_pairs)
}

/// GoTrue's redirect with a message (`prepRedirectURL`): `message=` in the fragment (with
/// `sb`), and in the query too for a PKCE flow.
fn message_redirect(target: &str, message: &str, pkce: bool) -> String {
    let target = if pkce {
        with_query(target, &[("message", message)])
    } else {
        with_query(target, &[])
    };
    with_fragment(&target, &[("message", message), ("sb", "")])
}

pub async fn verify_get(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    client: Client,
) -> Response {
    let redirect_to = redirect::for_request(&state.config, &headers, &query);
    let token = query.get("token").cloned().unwrap_or_default();
    let kind = query.get("type").cloned().unwrap_or_default();
    let pkce = token.starts_with("pkce_");
    match verify_link(&state, &client, &kind, &token, &redirect_to) {
        Ok(location) => see_other(&location),
        Err(err) => see_other(&error_redirect(&redirect_to, &err, pkce)),
    }
}

fn verify_link(
    state: &AppState,
    client: &Client,
    kind: &str,
    token: &str,
    redirect_to: &str,
) -> Result<String, ApiError> {
    if token.is_empty() {
        return Err(ApiError::validation(
            "Verify requires a token or a token hash",
        ));
    }
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let (mut user, consumed) = match consume(state, &tx, kind, token, true)? {
        Consumed::Done(done) => *done,
        Consumed::HalfOfEmailChange => {
            tx.commit()?;
            return Ok(message_redirect(
                redirect_to,
                SINGLE_CONFIRMATION_ACCEPTED,
                token.starts_with("pkce_"),
            ));
        }
    };
    let flow = match consumed.flow_state_id.as_deref() {
        Some(id) if consumed.token_hash.starts_with("pkce_") => FlowStateRow::find(&tx, id)?,
        _ => None,
    };
    let location = match flow {
        Some(mut flow) => {
            flow.user_id = Some(user.id.clone());
            flow.auth_code_issued_at = Some(state.now());
            flow.save(&tx)?;
            let target = flow
                .redirect_to
                .clone()
                .unwrap_or_else(|| redirect_to.to_owned());
            with_query(&target, &[("code", &flow.auth_code)])
        }
        None => {
            let (session, refresh) = start_session(state, &tx, &mut user, "otp", None, client)?;
            let (access, expires_at) = super::access_token(state, &user, &session);
            let expires_in = (expires_at - state.clock.now_secs()).to_string();
            let expires_at = expires_at.to_string();
            with_fragment(
                redirect_to,
                &[
                    ("access_token", &access),
                    ("expires_at", &expires_at),
                    ("expires_in", &expires_in),
                    ("refresh_token", &refresh.token),
                    ("token_type", "bearer"),
                    ("type", kind),
                    ("sb", ""),
                ],
            )
        }
    };
    tx.commit()?;
    Ok(location)
}
