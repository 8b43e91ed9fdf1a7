//! `POST /otp`, `POST /magiclink`, `POST /recover`, `POST /resend`, `GET /reauthenticate`:
//! the routes that send a code or link by mail.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::signup::{confirm_email, signup_new_user};
use super::{
    AppState, AuthUser, Body, link_params, new_flow_state, required_email, validate_email,
};
use crate::db::UserRow;
use crate::error::ApiError;
use crate::mail::{self, MailKind};
use crate::tokens::PkceMethod;

#[derive(Debug, Deserialize)]
pub struct OtpParams {
    email: Option<String>,
    phone: Option<String>,
    create_user: Option<bool>,
    data: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub async fn otp(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Body(params): Body<OtpParams>,
) -> Result<Json<Value>, ApiError> {
    let email = params.email.as_deref().filter(|s| !s.is_empty());
    let phone = params.phone.as_deref().filter(|s| !s.is_empty());
    match (email, phone) {
        (None, None) => Err(ApiError::validation("One of email or phone must be set")),
        (Some(_), Some(_)) => Err(ApiError::validation(
            "Only an email address or phone number should be provided",
        )),
        (None, Some(_)) => Err(ApiError::unprocessable(
            "phone_provider_disabled",
            "Phone logins are disabled",
        )),
        (Some(email), None) => {
            let email = validate_email(email)?;
            let (pkce, redirect_to) = link_params(
                &state,
                &headers,
                &query,
                params.code_challenge.as_deref(),
                params.code_challenge_method.as_deref(),
            )?;
            let data = params
                .data
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            send_magic_link(
                &state,
                &email,
                params.create_user.unwrap_or(true),
                data,
                pkce,
                &redirect_to,
            )?;
            Ok(Json(json!({})))
        }
    }
}

/// The legacy `/magiclink` route: email only, always allowed to create the user.
pub async fn magiclink(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Body(params): Body<OtpParams>,
) -> Result<Json<Value>, ApiError> {
    let email = required_email(
        params.email.as_deref(),
        "Password recovery requires an email",
    )?;
    let (pkce, redirect_to) = link_params(
        &state,
        &headers,
        &query,
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let data = params
        .data
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    send_magic_link(&state, &email, true, data, pkce, &redirect_to)?;
    Ok(Json(json!({})))
}

/// GoTrue's magic-link logic: an unknown (or unconfirmed) address is signed up first; with
/// autoconfirm on the user is confirmed and gets a magic link, otherwise the signup
/// confirmation mail doubles as the link.
fn send_magic_link(
    state: &AppState,
    email: &str,
    create_user: bool,
    data: Value,
    pkce: Option<(String, PkceMethod)>,
    redirect_to: &str,
) -> Result<(), ApiError> {
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let now = state.now();
    let existing = UserRow::find_by_email(&tx, email)?;
    let mut user = match existing {
        Some(user) => user,
        None if !create_user => {
            return Err(ApiError::unprocessable(
                "otp_disabled",
                "Signups not allowed for otp",
            ));
        }
        None if state.config.disable_signup => {
            return Err(ApiError::unprocessable(
                "signup_disabled",
                "Signups not allowed for this instance",
            ));
        }
        None => signup_new_user(state, &tx, email, None, data)?,
    };
    if user.is_banned(now) {
        return Err(ApiError::forbidden("user_banned", "User is banned"));
    }
    let kind = if user.is_confirmed() {
        MailKind::Magiclink
    } else if state.config.autoconfirm {
        confirm_email(&tx, &mut user, now)?;
        MailKind::Magiclink
    } else {
        MailKind::Signup
    };
    let method = if kind == MailKind::Signup {
        "email/signup"
    } else {
        "magiclink"
    };
    let flow = match &pkce {
        Some(pkce) => Some(new_flow_state(
            state,
            &tx,
            Some(&user.id),
            pkce,
            "email",
            method,
            Some(redirect_to),
        )?),
        None => None,
    };
    let out = state.outgoing(
        kind,
        email,
        redirect_to,
        flow.as_ref().map(|f| f.id.as_str()),
    );
    mail::send(&tx, &mut user, &out)?;
    user.save(&tx)?;
    tx.commit()?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct RecoverParams {
    email: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Sends a recovery link; answers `{}` whether or not the address is known.
pub async fn recover(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Body(params): Body<RecoverParams>,
) -> Result<Json<Value>, ApiError> {
    let email = required_email(
        params.email.as_deref(),
        "Password recovery requires an email",
    )?;
    let (pkce, redirect_to) = link_params(
        &state,
        &headers,
        &query,
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    if let Some(mut user) = UserRow::find_by_email(&tx, &email)? {
        let flow = match &pkce {
            Some(pkce) => Some(new_flow_state(
                &state,
                &tx,
                Some(&user.id),
                pkce,
                "email",
                "recovery",
                Some(&redirect_to),
            )?),
            None => None,
        };
        let out = state.outgoing(
            MailKind::Recovery,
            &email,
            &redirect_to,
            flow.as_ref().map(|f| f.id.as_str()),
        );
        mail::send(&tx, &mut user, &out)?;
        user.save(&tx)?;
    }
    tx.commit()?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct ResendParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Resends a signup confirmation or email-change mail; `{}` also when there is nothing to send.
pub async fn resend(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Body(params): Body<ResendParams>,
) -> Result<Json<Value>, ApiError> {
    let kind = params.kind.as_deref().unwrap_or_default();
    if !matches!(kind, "signup" | "email_change" | "sms" | "phone_change") {
        return Err(ApiError::validation(
            "Missing one of these types: signup, email_change, sms, phone_change",
        ));
    }
    if matches!(kind, "sms" | "phone_change")
        || params.phone.as_deref().is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::unprocessable(
            "phone_provider_disabled",
            "Phone logins are disabled",
        ));
    }
    let email = params
        .email
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::validation("An email address is required"))?;
    let email = validate_email(email)?;
    // GoTrue's resend is PKCE like the request it repeats: a new flow state per mail.
    let (pkce, redirect_to) = link_params(
        &state,
        &headers,
        &query,
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    if let Some(mut user) = UserRow::find_by_email(&tx, &email)? {
        let flow = |tx: &rusqlite::Connection, user: &UserRow, provider: &str, method: &str| {
            pkce.as_ref()
                .map(|pkce| {
                    new_flow_state(
                        &state,
                        tx,
                        Some(&user.id),
                        pkce,
                        provider,
                        method,
                        Some(&redirect_to),
                    )
                })
                .transpose()
        };
        match kind {
            "signup" if !user.is_confirmed() => {
                let flow = flow(&tx, &user, "email", "email/signup")?;
                let flow_id = flow.as_ref().map(|f| f.id.as_str());
                let out = state.outgoing(MailKind::Signup, &email, &redirect_to, flow_id);
                mail::send(&tx, &mut user, &out)?;
                user.save(&tx)?;
            }
            "email_change" => {
                if let Some(new_email) = user.email_change.clone() {
                    // Both mails again when the change is secure: a new code to each address.
                    let flow = flow(&tx, &user, "email_change", "email_change")?;
                    super::user::send_email_change(
                        &state,
                        &tx,
                        &mut user,
                        &new_email,
                        &redirect_to,
                        flow.as_ref().map(|f| f.id.as_str()),
                    )?;
                    user.save(&tx)?;
                }
            }
            _ => {}
        }
    }
    tx.commit()?;
    Ok(Json(json!({})))
}

/// Sends a nonce to the user's confirmed email, for `PUT /user` with `nonce`.
pub async fn reauthenticate(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let Some(email) = auth.user.email.clone() else {
        return Err(ApiError::validation(
            "Reauthentication requires the user to have an email or a phone number",
        ));
    };
    if auth.user.email_confirmed_at.is_none() {
        return Err(ApiError::unprocessable(
            "email_not_confirmed",
            "Please verify your email first.",
        ));
    }
    let conn = state.db.lock();
    let mut user = auth.user;
    let site = state.config.site_url.clone();
    let out = state.outgoing(MailKind::Reauthentication, &email, &site, None);
    mail::send(&conn, &mut user, &out)?;
    user.save(&conn)?;
    Ok(Json(json!({})))
}
