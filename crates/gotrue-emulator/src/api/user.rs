//! `POST /logout`, `GET /user`, `PUT /user`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::{
    AppState, AuthUser, Body, check_password, hash_password, link_params, new_flow_state,
    password_matches, validate_email,
};
use crate::db::{FactorRow, IdentityRow, OneTimeTokenRow, SessionRow, UserRow};
use crate::error::ApiError;
use crate::mail::{self, MailKind};
use crate::models::{self, merge_metadata};
use crate::tokens;

/// Deletes the caller's session (`local`), all of the user's sessions (`global`, the
/// default) or all but the caller's (`others`). Refresh tokens go with their sessions.
pub async fn logout(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    auth: AuthUser,
) -> Result<StatusCode, ApiError> {
    super::Stats::bump(&state.stats.logout);
    #[derive(PartialEq)]
    enum Scope {
        Global,
        Local,
        Others,
    }
    let scope = match query.get("scope").map(String::as_str) {
        None | Some("") | Some("global") => Scope::Global,
        Some("local") => Scope::Local,
        Some("others") => Scope::Others,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "Unsupported logout scope {other:?}"
            )));
        }
    };
    let conn = state.db.lock();
    match (&auth.session, scope) {
        (Some(session), Scope::Local) => SessionRow::delete(&conn, &session.id)?,
        (Some(session), Scope::Others) => {
            SessionRow::delete_others(&conn, &auth.user.id, &session.id)?
        }
        // A token without a session id always logs out everywhere.
        _ => SessionRow::delete_all_for_user(&conn, &auth.user.id)?,
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_user(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Value>, ApiError> {
    super::Stats::bump(&state.stats.user);
    let conn = state.db.lock();
    Ok(Json(models::user_json(&conn, &auth.user)?))
}

#[derive(Debug, Deserialize)]
pub struct UpdateParams {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    nonce: Option<String>,
    data: Option<Value>,
    app_metadata: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    auth: AuthUser,
    Body(params): Body<UpdateParams>,
) -> Result<Json<Value>, ApiError> {
    if params.app_metadata.is_some() && !state.config.is_admin_role(&auth.role) {
        return Err(ApiError::forbidden(
            "not_admin",
            "Updating app_metadata requires admin privileges",
        ));
    }
    if params.phone.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::unprocessable(
            "phone_provider_disabled",
            "Phone logins are disabled",
        ));
    }
    let new_email = match params.email.as_deref().filter(|e| !e.is_empty()) {
        Some(email) => Some(validate_email(email)?),
        None => None,
    };
    let new_email = new_email.filter(|e| auth.user.email.as_deref() != Some(e.as_str()));
    let password = params.password.clone().filter(|p| !p.is_empty());

    let changes_credentials = password.is_some() || new_email.is_some();
    if changes_credentials {
        let conn = state.db.lock();
        let has_verified_factor = FactorRow::for_user(&conn, &auth.user.id)?
            .iter()
            .any(|f| f.status == "verified");
        let aal2 = auth.session.as_ref().is_some_and(|s| s.aal == "aal2");
        if has_verified_factor && !aal2 {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "insufficient_aal",
                "AAL2 session is required to update email or password when MFA is enabled.",
            ));
        }
    }

    let password_hash = match &password {
        Some(password) => {
            if auth.user.is_anonymous && auth.user.email.is_none() && new_email.is_none() {
                return Err(ApiError::unprocessable(
                    "validation_failed",
                    "Updating password of an anonymous user without an email or phone is not allowed",
                ));
            }
            check_password(&state, password)?;
            if password_matches(password.clone(), auth.user.encrypted_password.clone()).await {
                return Err(ApiError::unprocessable(
                    "same_password",
                    "New password should be different from the old password.",
                ));
            }
            Some(hash_password(&state, password.clone()).await?)
        }
        None => None,
    };
    let (pkce, redirect_to) = link_params(
        &state,
        &headers,
        &query,
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;

    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let now = state.now();
    let mut user = UserRow::find(&tx, &auth.user.id)?.ok_or_else(|| {
        ApiError::forbidden(
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    })?;

    // GoTrue reads the nonce only when the project requires reauthentication for a
    // password change, and then only in a session more than a day old.
    let day_micros = 24 * 3600 * 1_000_000;
    if params.password.is_some()
        && state.config.update_password_require_reauthentication
        && auth
            .session
            .as_ref()
            .is_none_or(|s| now > s.created_at + day_micros)
    {
        let nonce = params.nonce.as_deref().unwrap_or_default();
        if nonce.is_empty() {
            return Err(ApiError::bad_request(
                "reauthentication_needed",
                "Password update requires reauthentication",
            ));
        }
        let address = user.email.clone().unwrap_or_default();
        let hash = tokens::token_hash(&address, nonce);
        match OneTimeTokenRow::find_by_hash(&tx, &hash, &["reauthentication"])? {
            Some(t) if t.user_id == user.id => OneTimeTokenRow::delete(&tx, &t.id)?,
            _ => {
                return Err(ApiError::unprocessable(
                    "reauthentication_not_valid",
                    "Nonce has expired or is invalid",
                ));
            }
        }
    }

    if let Some(data) = &params.data {
        merge_metadata(&mut user.user_metadata, data);
    }
    if let Some(app) = &params.app_metadata {
        merge_metadata(&mut user.app_metadata, app);
    }

    if let Some(email) = &new_email {
        if UserRow::find_by_email(&tx, email)?.is_some_and(|u| u.id != user.id) {
            return Err(ApiError::unprocessable(
                "email_exists",
                "A user with this email address has already been registered",
            ));
        }
        if state.config.autoconfirm {
            set_email(&tx, &mut user, email, now)?;
        } else {
            let flow = match &pkce {
                Some(pkce) => Some(new_flow_state(
                    &state,
                    &tx,
                    Some(&user.id),
                    pkce,
                    "email_change",
                    "email_change",
                    Some(&redirect_to),
                )?),
                None => None,
            };
            let flow_id = flow.as_ref().map(|f| f.id.as_str());
            send_email_change(&state, &tx, &mut user, email, &redirect_to, flow_id)?;
        }
    }

    if let Some(hash) = password_hash {
        user.encrypted_password = Some(hash);
        // A password change ends every other session of the user and voids pending links.
        match &auth.session {
            Some(session) => SessionRow::delete_others(&tx, &user.id, &session.id)?,
            None => SessionRow::delete_all_for_user(&tx, &user.id)?,
        }
        OneTimeTokenRow::delete_for_user(&tx, &user.id)?;
    }

    user.updated_at = now;
    user.save(&tx)?;
    let body = models::user_json(&tx, &user)?;
    tx.commit()?;
    Ok(Json(body))
}

/// Records `new_email` as the pending change and mails its confirmation: to the new
/// address, and — with secure email change, when the user has an address — to the current
/// one too, each with its own code and link (`type=email_change` both; GoTrue's
/// `sendEmailChange`). The change is made once every mailed token is used.
pub fn send_email_change(
    state: &AppState,
    conn: &rusqlite::Connection,
    user: &mut UserRow,
    new_email: &str,
    redirect_to: &str,
    flow_state_id: Option<&str>,
) -> Result<(), ApiError> {
    user.email_change = Some(new_email.to_owned());
    let current = user.email.clone().filter(|e| !e.is_empty());
    match current {
        Some(current) if state.config.secure_email_change => {
            let out = state.outgoing(
                MailKind::EmailChangeCurrent,
                &current,
                redirect_to,
                flow_state_id,
            );
            mail::send(conn, user, &out)?;
        }
        // Not (or no longer) confirmed from the current address.
        _ => OneTimeTokenRow::delete_of_type(conn, &user.id, "email_change_current")?,
    }
    let out = state.outgoing(MailKind::EmailChange, new_email, redirect_to, flow_state_id);
    mail::send(conn, user, &out)
}

/// Makes `email` the user's confirmed address (email change confirmed, or autoconfirm).
pub fn set_email(
    conn: &rusqlite::Connection,
    user: &mut UserRow,
    email: &str,
    now: i64,
) -> rusqlite::Result<()> {
    user.email = Some(email.to_owned());
    user.email_change = None;
    user.email_change_sent_at = None;
    user.email_confirmed_at = Some(now);
    user.updated_at = now;
    let had_email_identity = IdentityRow::for_user(conn, &user.id)?
        .into_iter()
        .find(|i| i.provider == "email");
    match had_email_identity {
        Some(mut identity) => {
            merge_metadata(
                &mut identity.identity_data,
                &serde_json::json!({ "email": email, "email_verified": true }),
            );
            identity.email = Some(email.to_owned());
            identity.updated_at = now;
            identity.save(conn)?;
        }
        None => {
            user.save(conn)?;
            super::signup::add_email_identity(conn, user, email, now)?;
        }
    }
    if user.is_anonymous {
        // An anonymous user who gains a confirmed email becomes a permanent user.
        user.is_anonymous = false;
        user.app_metadata = serde_json::json!({ "provider": "email", "providers": ["email"] });
    }
    user.save(conn)
}
