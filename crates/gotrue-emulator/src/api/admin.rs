//! Admin routes (service_role bearer): users and `generate_link`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::signup::{add_email_identity, confirm_email, new_email_user};
use super::{Admin, AppState, Body, OptionalBody, check_password, hash_password, validate_email};
use crate::db::{IdentityRow, SessionRow, UserRow};
use crate::duration::parse_go_duration;
use crate::error::ApiError;
use crate::mail::{self, MailKind};
use crate::models::{self, merge_metadata};
use crate::redirect;

fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "User not found")
}

fn email_exists() -> ApiError {
    ApiError::unprocessable(
        "email_exists",
        "A user with this email address has already been registered",
    )
}

pub async fn list_users(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let page: i64 = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page: i64 = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(50)
        .min(1000);
    let filter = query.get("filter").map(String::as_str).unwrap_or_default();
    let conn = state.db.lock();
    let total = UserRow::count(&conn, filter)?;
    let users = UserRow::list(&conn, filter, per_page, (page - 1) * per_page)?
        .iter()
        .map(|u| models::user_json(&conn, u))
        .collect::<Result<Vec<_>, _>>()?;
    let mut response = Json(json!({ "users": users, "aud": state.config.jwt_aud })).into_response();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("x-total-count", v);
    }
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!(
            "</admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "</admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        response.headers_mut().insert("link", v);
    }
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub struct AdminUserParams {
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) email_confirm: Option<bool>,
    pub(crate) user_metadata: Option<Value>,
    pub(crate) app_metadata: Option<Value>,
    pub(crate) role: Option<String>,
    pub(crate) ban_duration: Option<String>,
}

fn ban_until(state: &AppState, duration: &str) -> Result<Option<i64>, ApiError> {
    if duration == "none" {
        return Ok(None);
    }
    let d = parse_go_duration(duration)
        .map_err(|_| ApiError::validation("invalid format for ban duration"))?;
    Ok(Some(state.now().saturating_add(
        i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    )))
}

/// Checks and hashes a password when one is given.
async fn optional_password_hash(
    state: &AppState,
    password: Option<String>,
) -> Result<Option<String>, ApiError> {
    match password.filter(|p| !p.is_empty()) {
        Some(p) => {
            check_password(state, &p)?;
            Ok(Some(hash_password(state, p).await?))
        }
        None => Ok(None),
    }
}

/// The fields only an admin may set: app metadata (merged), role and ban.
fn apply_admin_fields(
    state: &AppState,
    user: &mut UserRow,
    params: &AdminUserParams,
) -> Result<(), ApiError> {
    if let Some(app) = &params.app_metadata {
        merge_metadata(&mut user.app_metadata, app);
    }
    if let Some(role) = params.role.clone().filter(|r| !r.is_empty()) {
        user.role = role;
    }
    if let Some(ban) = params.ban_duration.as_deref() {
        user.banned_until = ban_until(state, ban)?;
    }
    Ok(())
}

pub async fn create_user(
    State(state): State<AppState>,
    _admin: Admin,
    Body(params): Body<AdminUserParams>,
) -> Result<Json<Value>, ApiError> {
    insert_user(&state, params).await.map(Json)
}

/// `POST /admin/users` without the HTTP: also what [`crate::EmulatorHandle::create_user`]
/// calls in process. Answers the user's JSON.
pub(crate) async fn insert_user(
    state: &AppState,
    params: AdminUserParams,
) -> Result<Value, ApiError> {
    if params.phone.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::unprocessable(
            "phone_provider_disabled",
            "Phone logins are disabled",
        ));
    }
    let email = match params.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => validate_email(e)?,
        None => {
            return Err(ApiError::validation(
                "Unable to validate email address: invalid format",
            ));
        }
    };
    let hash = optional_password_hash(state, params.password.clone()).await?;
    let conn = state.db.lock();
    if UserRow::find_by_email(&conn, &email)?.is_some() {
        return Err(email_exists());
    }
    let now = state.now();
    let data = params
        .user_metadata
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut user = new_email_user(state, &conn, &email, hash, data)?;
    apply_admin_fields(state, &mut user, &params)?;
    user.save(&conn)?;
    if params.email_confirm == Some(true) {
        confirm_email(&conn, &mut user, now)?;
    }
    let mut body = models::user_json(&conn, &user)?;
    // GoTrue answers with the user as made in memory, without the `confirmed_at` that the
    // database computes.
    if let Some(map) = body.as_object_mut() {
        map.remove("confirmed_at");
    }
    Ok(body)
}

pub async fn get_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let conn = state.db.lock();
    let user = UserRow::find(&conn, &id)?.ok_or_else(user_not_found)?;
    Ok(Json(models::user_json(&conn, &user)?))
}

pub async fn update_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Body(params): Body<AdminUserParams>,
) -> Result<Json<Value>, ApiError> {
    let hash = optional_password_hash(&state, params.password.clone()).await?;
    let email = match params.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(validate_email(e)?),
        None => None,
    };
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let now = state.now();
    let mut user = UserRow::find(&tx, &id)?.ok_or_else(user_not_found)?;
    if let Some(email) = email.filter(|e| user.email.as_deref() != Some(e.as_str())) {
        if UserRow::find_by_email(&tx, &email)?.is_some() {
            return Err(email_exists());
        }
        let had_identity = IdentityRow::for_user(&tx, &user.id)?
            .iter()
            .any(|i| i.provider == "email");
        user.email = Some(email.clone());
        user.save(&tx)?;
        if !had_identity {
            add_email_identity(&tx, &user, &email, now)?;
        }
    }
    if let Some(hash) = hash {
        user.encrypted_password = Some(hash);
    }
    if let Some(data) = &params.user_metadata {
        merge_metadata(&mut user.user_metadata, data);
    }
    apply_admin_fields(&state, &mut user, &params)?;
    user.updated_at = now;
    user.save(&tx)?;
    if params.email_confirm == Some(true) {
        confirm_email(&tx, &mut user, now)?;
    }
    let body = models::user_json(&tx, &user)?;
    tx.commit()?;
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
pub struct DeleteParams {
    #[serde(default)]
    should_soft_delete: bool,
}

/// Hard delete removes the user with its sessions; soft delete signs the user out
/// everywhere, frees the address and keeps a tombstone row.
pub async fn delete_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    OptionalBody(params): OptionalBody<DeleteParams>,
) -> Result<Json<Value>, ApiError> {
    let soft = params.is_some_and(|p| p.should_soft_delete);
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let mut user = UserRow::find(&tx, &id)?.ok_or_else(user_not_found)?;
    if soft {
        SessionRow::delete_all_for_user(&tx, &user.id)?;
        IdentityRow::delete_for_user(&tx, &user.id)?;
        let now = state.now();
        user.email = None;
        user.phone = None;
        user.encrypted_password = None;
        user.deleted_at = Some(now);
        user.updated_at = now;
        user.save(&tx)?;
    } else {
        UserRow::delete(&tx, &user.id)?;
    }
    tx.commit()?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub struct GenerateLinkParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    new_email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    redirect_to: Option<String>,
}

/// Mints the link a mail would carry, without sending it.
pub async fn generate_link(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    Body(params): Body<GenerateLinkParams>,
) -> Result<Json<Value>, ApiError> {
    let kind = params.kind.clone().unwrap_or_default();
    let email = validate_email(params.email.as_deref().unwrap_or_default())?;
    let redirect_to = match params.redirect_to.as_deref().filter(|r| !r.is_empty()) {
        Some(requested) => redirect::resolve(&state.config, Some(requested), None),
        None => redirect::for_request(&state.config, &headers, &query),
    };
    let hash = optional_password_hash(&state, params.password.clone()).await?;
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let existing = UserRow::find_by_email(&tx, &email)?;
    let data = params
        .data
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let (mut user, mail_kind, address) = match kind.as_str() {
        "signup" => {
            let user = match existing {
                Some(u) if u.is_confirmed() => return Err(email_exists()),
                Some(u) => u,
                None => {
                    if hash.is_none() {
                        return Err(ApiError::validation("Signup requires a valid password"));
                    }
                    new_email_user(&state, &tx, &email, hash, data)?
                }
            };
            (user, MailKind::Signup, email.clone())
        }
        "invite" => {
            let user = match existing {
                Some(u) if u.is_confirmed() => return Err(email_exists()),
                Some(u) => u,
                None => new_email_user(&state, &tx, &email, None, data)?,
            };
            (user, MailKind::Invite, email.clone())
        }
        "magiclink" => (
            existing.ok_or_else(user_not_found)?,
            MailKind::Magiclink,
            email.clone(),
        ),
        "recovery" => (
            existing.ok_or_else(user_not_found)?,
            MailKind::Recovery,
            email.clone(),
        ),
        "email_change_current" | "email_change_new" => {
            let user = existing.ok_or_else(user_not_found)?;
            let new_email = validate_email(params.new_email.as_deref().unwrap_or_default())?;
            if UserRow::find_by_email(&tx, &new_email)?.is_some() {
                return Err(email_exists());
            }
            let mut user = user;
            user.email_change = Some(new_email.clone());
            (user, MailKind::EmailChange, new_email)
        }
        _ => {
            return Err(ApiError::validation(
                "Invalid email action link type requested: the type must be one of signup, invite, magiclink, recovery, email_change_current, email_change_new",
            ));
        }
    };
    if mail_kind == MailKind::Invite {
        user.invited_at = Some(state.now());
    }
    let out = state.outgoing(mail_kind, &address, &redirect_to, None);
    let issued = mail::issue_token(&tx, &user, &out)?;
    user.updated_at = state.now();
    user.save(&tx)?;
    let mut body = models::user_json(&tx, &user)?;
    if let Some(map) = body.as_object_mut() {
        map.insert("action_link".into(), json!(issued.action_link));
        map.insert("email_otp".into(), json!(issued.otp));
        map.insert("hashed_token".into(), json!(issued.token_hash));
        map.insert("verification_type".into(), json!(mail_kind.name()));
        map.insert("redirect_to".into(), json!(redirect_to));
    }
    tx.commit()?;
    Ok(Json(body))
}
