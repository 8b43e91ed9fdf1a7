//! What every sign-in path shares: starting a session, minting its access token, and
//! the Session JSON.

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::db::{RefreshTokenRow, SessionRow, UserRow};
use crate::error::ApiError;
use crate::jwt::AccessClaims;
use crate::models;
use crate::models::Amr;

/// GoTrue's request body limit.
use super::{Client, Shared};

/// Starts a new session for `user` (every sign-in does) and marks the sign-in time.
pub fn start_session(
    state: &Shared,
    conn: &Connection,
    user: &mut UserRow,
    method: &str,
    provider: Option<&str>,
    client: &Client,
) -> Result<(SessionRow, RefreshTokenRow), ApiError> {
    let now = state.now();
    let session = SessionRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        aal: "aal1".into(),
        factor_id: None,
        amr: vec![Amr {
            method: method.to_owned(),
            timestamp: state.clock.now_secs(),
            provider: provider.map(str::to_owned),
        }],
        user_agent: client.user_agent.clone(),
        ip: Some(client.ip.clone()),
        created_at: now,
        updated_at: now,
        refreshed_at: None,
    };
    session.save(conn)?;
    let token = RefreshTokenRow::create(conn, &user.id, &session.id, None, now)?;
    user.last_sign_in_at = Some(now);
    user.updated_at = now;
    user.save(conn)?;
    Ok((session, token))
}

/// A signed access token for the session.
pub fn access_token(state: &Shared, user: &UserRow, session: &SessionRow) -> (String, i64) {
    let iat = state.clock.now_secs();
    let exp = iat + state.config.jwt_exp.as_secs() as i64;
    // Newest first, by whole seconds; claims of the same second keep their order (oldest
    // first), as GoTrue's sort of its claim rows leaves them.
    let mut amr = session.amr.clone();
    amr.sort_by_key(|a| std::cmp::Reverse(a.timestamp));
    let claims = AccessClaims {
        iss: state.config.jwt_issuer.clone(),
        sub: user.id.clone(),
        aud: user.aud.clone(),
        exp,
        iat,
        email: user.email.clone().unwrap_or_default(),
        phone: user.phone.clone().unwrap_or_default(),
        app_metadata: user.app_metadata.clone(),
        user_metadata: user.user_metadata.clone(),
        role: user.role.clone(),
        aal: session.aal.clone(),
        amr,
        session_id: session.id.clone(),
        is_anonymous: user.is_anonymous,
    };
    (state.keys.sign(&claims), exp)
}

/// The Session JSON every token-issuing route answers.
pub fn session_json(
    state: &Shared,
    conn: &Connection,
    user: &UserRow,
    session: &SessionRow,
    refresh_token: &str,
    extra: Map<String, Value>,
) -> Result<Value, ApiError> {
    let (access, expires_at) = access_token(state, user, session);
    state.record_issued([&access, refresh_token]);
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": expires_at - state.clock.now_secs(),
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": models::user_json(conn, user)?,
    });
    if let Some(map) = body.as_object_mut() {
        map.extend(extra);
    }
    Ok(body)
}
