//! `POST /signup`: email + password, or anonymous (neither email nor phone).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    AppState, Body, Client, check_password, hash_password, link_params, new_flow_state,
    session_json, start_session, validate_email,
};
use crate::db::{IdentityRow, UserRow};
use crate::error::ApiError;
use crate::mail::{self, MailKind};
use crate::models::{self, merge_metadata};

#[derive(Debug, Deserialize)]
pub struct SignupParams {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub async fn signup(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    client: Client,
    Body(params): Body<SignupParams>,
) -> Result<Json<Value>, ApiError> {
    if state.config.disable_signup {
        return Err(ApiError::unprocessable(
            "signup_disabled",
            "Signups not allowed for this instance",
        ));
    }
    let email = params.email.as_deref().filter(|s| !s.is_empty());
    let phone = params.phone.as_deref().filter(|s| !s.is_empty());
    let data = params
        .data
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    match (email, phone) {
        (None, None) => anonymous(&state, &client, data).map(Json),
        (Some(_), Some(_)) => Err(ApiError::validation(
            "Only an email address or phone number should be provided on signup.",
        )),
        (None, Some(_)) => Err(ApiError::bad_request(
            "phone_provider_disabled",
            "Phone signups are disabled",
        )),
        (Some(email), None) => {
            let email = validate_email(email)?;
            let password = params
                .password
                .clone()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::validation("Signup requires a valid password"))?;
            check_password(&state, &password)?;
            let (pkce, redirect_to) = link_params(
                &state,
                &headers,
                &query,
                params.code_challenge.as_deref(),
                params.code_challenge_method.as_deref(),
            )?;
            let hash = hash_password(&state, password).await?;
            with_email(&state, &client, &email, hash, data, pkce, &redirect_to).map(Json)
        }
    }
}

fn anonymous(state: &AppState, client: &Client, data: Value) -> Result<Value, ApiError> {
    if !state.config.anonymous_users {
        return Err(ApiError::unprocessable(
            "anonymous_provider_disabled",
            "Anonymous sign-ins are disabled",
        ));
    }
    let conn = state.db.lock();
    let mut user = UserRow::new(
        &state.config.jwt_aud,
        &state.config.jwt_default_group,
        state.now(),
    );
    user.is_anonymous = true;
    user.user_metadata = data;
    user.save(&conn)?;
    let (session, token) = start_session(state, &conn, &mut user, "anonymous", None, client)?;
    session_json(state, &conn, &user, &session, &token.token, Map::new())
}

/// Confirms the user's email and marks it verified in metadata and identity, as GoTrue does.
pub fn confirm_email(
    conn: &rusqlite::Connection,
    user: &mut UserRow,
    now: i64,
) -> rusqlite::Result<()> {
    if user.email_confirmed_at.is_none() {
        user.email_confirmed_at = Some(now);
    }
    merge_metadata(&mut user.user_metadata, &json!({ "email_verified": true }));
    user.updated_at = now;
    user.save(conn)?;
    for mut identity in IdentityRow::for_user(conn, &user.id)? {
        if identity.provider == "email" {
            merge_metadata(
                &mut identity.identity_data,
                &json!({ "email_verified": true }),
            );
            identity.updated_at = now;
            identity.save(conn)?;
        }
    }
    Ok(())
}

/// Adds the `email` identity GoTrue keeps for every email user.
pub fn add_email_identity(
    conn: &rusqlite::Connection,
    user: &UserRow,
    email: &str,
    now: i64,
) -> rusqlite::Result<()> {
    IdentityRow {
        id: uuid::Uuid::new_v4().to_string(),
        provider_id: user.id.clone(),
        user_id: user.id.clone(),
        provider: "email".into(),
        identity_data: json!({
            "email": email,
            "email_verified": user.email_confirmed_at.is_some(),
            "phone_verified": false,
            "sub": user.id,
        }),
        email: Some(email.to_owned()),
        last_sign_in_at: None,
        created_at: now,
        updated_at: now,
    }
    .save(conn)
}

/// Creates an unconfirmed email user as `/signup` (and `/otp`, which signs a new address
/// up) does: the email identity's data are GoTrue's claims (`sub`, `email`,
/// `email_verified`, `phone_verified`) with the sign-up's `data` beside them (never over
/// them), and the user's metadata start as a copy of that identity data.
pub fn signup_new_user(
    state: &AppState,
    conn: &rusqlite::Connection,
    email: &str,
    password_hash: Option<String>,
    data: Value,
) -> rusqlite::Result<UserRow> {
    let mut user = new_email_user(state, conn, email, password_hash, json!({}))?;
    let mut identity_data = json!({
        "email": email,
        "email_verified": false,
        "phone_verified": false,
        "sub": user.id,
    });
    if let (Some(claims), Some(extra)) = (identity_data.as_object_mut(), data.as_object()) {
        for (key, value) in extra {
            claims.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    for mut identity in IdentityRow::for_user(conn, &user.id)? {
        identity.identity_data = identity_data.clone();
        identity.save(conn)?;
    }
    user.user_metadata = identity_data;
    user.save(conn)?;
    Ok(user)
}

/// Creates an unconfirmed email user (shared with `/admin/users` and
/// `/admin/generate_link`): metadata as given.
pub fn new_email_user(
    state: &AppState,
    conn: &rusqlite::Connection,
    email: &str,
    password_hash: Option<String>,
    data: Value,
) -> rusqlite::Result<UserRow> {
    let now = state.now();
    let mut user = UserRow::new(&state.config.jwt_aud, &state.config.jwt_default_group, now);
    user.email = Some(email.to_owned());
    user.encrypted_password = password_hash;
    user.app_metadata = json!({ "provider": "email", "providers": ["email"] });
    user.user_metadata = data;
    user.save(conn)?;
    add_email_identity(conn, &user, email, now)?;
    Ok(user)
}

fn with_email(
    state: &AppState,
    client: &Client,
    email: &str,
    hash: String,
    data: Value,
    pkce: Option<(String, crate::tokens::PkceMethod)>,
    redirect_to: &str,
) -> Result<Value, ApiError> {
    let conn = state.db.lock();
    let now = state.now();
    let mut user = match UserRow::find_by_email(&conn, email)? {
        Some(existing) if existing.is_confirmed() => {
            if state.config.autoconfirm {
                return Err(ApiError::unprocessable(
                    "user_already_exists",
                    "User already registered",
                ));
            }
            // Confirmations on: answer a fake user so that the address's existence is not
            // revealed (clients detect this by the empty `identities`).
            let mut fake =
                UserRow::new(&state.config.jwt_aud, &state.config.jwt_default_group, now);
            fake.email = Some(email.to_owned());
            fake.app_metadata = json!({ "provider": "email", "providers": ["email"] });
            fake.user_metadata = json!({});
            fake.confirmation_sent_at = Some(now);
            return Ok(models::user_json_with(&fake, vec![], vec![]));
        }
        Some(existing) => existing,
        None => signup_new_user(state, &conn, email, Some(hash), data)?,
    };
    if state.config.autoconfirm {
        confirm_email(&conn, &mut user, now)?;
        let (session, token) = start_session(state, &conn, &mut user, "password", None, client)?;
        let mut body = session_json(state, &conn, &user, &session, &token.token, Map::new())?;
        // GoTrue answers with the user it confirmed in memory, not read back: without
        // `confirmed_at`, which the database computes.
        if let Some(user) = body["user"].as_object_mut() {
            user.remove("confirmed_at");
        }
        return Ok(body);
    }
    let flow = match &pkce {
        Some(pkce) => Some(new_flow_state(
            state,
            &conn,
            Some(&user.id),
            pkce,
            "email",
            "email/signup",
            Some(redirect_to),
        )?),
        None => None,
    };
    let out = state.outgoing(
        MailKind::Signup,
        email,
        redirect_to,
        flow.as_ref().map(|f| f.id.as_str()),
    );
    mail::send(&conn, &mut user, &out)?;
    user.save(&conn)?;
    Ok(models::user_json(&conn, &user)?)
}
