//! Input rules every handler shares: email, password, PKCE parameters, flow states,
//! link parameters and redirect targets.

use rusqlite::Connection;

use crate::error::ApiError;
use crate::tokens::PkceMethod;

/// GoTrue's request body limit.
use super::Shared;

/// Validates an email address the way GoTrue does before using it; returns it lower-cased.
pub fn validate_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let invalid = || ApiError::validation("Unable to validate email address: invalid format");
    if email.len() > 255 {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    if !ok {
        return Err(invalid());
    }
    Ok(email.to_lowercase())
}

/// GoTrue's password policy: at least `min` characters, at most 72 bytes (bcrypt's limit).
pub fn check_password(state: &Shared, password: &str) -> Result<(), ApiError> {
    if password.len() > 72 {
        return Err(ApiError::validation(
            "Password cannot be longer than 72 characters",
        ));
    }
    let min = state.config.password_min_length;
    if password.chars().count() < min {
        return Err(ApiError::weak_password(
            format!("Password should be at least {min} characters."),
            vec!["length"],
        ));
    }
    Ok(())
}

/// bcrypt off the async workers.
pub async fn hash_password(state: &Shared, password: String) -> Result<String, ApiError> {
    let cost = state.config.bcrypt_cost;
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|_| ApiError::internal())
}

pub async fn password_matches(password: String, hash: Option<String>) -> bool {
    let Some(hash) = hash else {
        return false;
    };
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Checks optional PKCE parameters: both or neither, a known method, a well-formed challenge.
pub fn pkce_params(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<(String, PkceMethod)>, ApiError> {
    let challenge = challenge.filter(|s| !s.is_empty());
    let method = method.filter(|s| !s.is_empty());
    match (challenge, method) {
        (None, None) => Ok(None),
        (Some(challenge), Some(method)) => {
            let method = PkceMethod::parse(method)
                .ok_or_else(|| ApiError::validation("Invalid code_challenge_method"))?;
            let len_ok = (43..=128).contains(&challenge.len());
            let chars_ok = challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !len_ok || !chars_ok {
                return Err(ApiError::validation(
                    "code challenge has to be between 43 and 128 characters",
                ));
            }
            Ok(Some((challenge.to_owned(), method)))
        }
        _ => Err(ApiError::validation(
            "PKCE flow requires code_challenge_method and code_challenge",
        )),
    }
}

/// Creates a PKCE flow state for a sign-in that will finish with an auth code.
pub fn new_flow_state(
    state: &Shared,
    conn: &Connection,
    user_id: Option<&str>,
    pkce: &(String, PkceMethod),
    provider: &str,
    method: &str,
    redirect_to: Option<&str>,
) -> rusqlite::Result<crate::db::FlowStateRow> {
    let flow = crate::db::FlowStateRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.map(str::to_owned),
        auth_code: uuid::Uuid::new_v4().to_string(),
        code_challenge: pkce.0.clone(),
        code_challenge_method: pkce.1.as_str().to_owned(),
        provider_type: provider.to_owned(),
        authentication_method: method.to_owned(),
        redirect_to: redirect_to.map(str::to_owned),
        provider_access_token: None,
        provider_refresh_token: None,
        created_at: state.now(),
        auth_code_issued_at: None,
    };
    flow.save(conn)?;
    Ok(flow)
}

/// What a request that sends a link carries: optional PKCE parameters and the
/// `redirect_to` GoTrue would use (the requested one if allowed, else the site URL).
pub fn link_params(
    state: &Shared,
    headers: &axum::http::HeaderMap,
    query: &std::collections::HashMap<String, String>,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<(Option<(String, PkceMethod)>, String), ApiError> {
    let pkce = pkce_params(challenge, method)?;
    let redirect_to = crate::redirect::for_request(&state.config, headers, query);
    Ok((pkce, redirect_to))
}

/// A required, valid email address.
pub fn required_email(email: Option<&str>, missing: &str) -> Result<String, ApiError> {
    let email = email
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::validation(missing))?;
    validate_email(email)
}
