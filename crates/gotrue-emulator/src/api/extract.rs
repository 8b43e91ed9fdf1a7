//! Request extractors: JSON bodies GoTrue's way, the client's address and agent, the
//! bearer's user (GoTrue's `requireAuthentication`) and the admin role.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::db::{SessionRow, UserRow};
use crate::error::ApiError;
use crate::jwt::JwtError;

/// GoTrue's request body limit.
use super::{AppState, MAX_BODY, Shared};

/// A JSON body parsed GoTrue's way: empty, malformed or mistyped bodies are 400 `bad_json`,
/// bodies over 1 MiB are 413 `request_entity_too_large`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req).await?;
        if bytes.is_empty() {
            return Err(bad_json("EOF"));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| bad_json(&e.to_string()))
    }
}

/// Like [`Body`], but an empty body is `None` (for routes whose body is optional).
#[derive(Debug)]
pub struct OptionalBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Self(Some(v)))
            .map_err(|e| bad_json(&e.to_string()))
    }
}

async fn read_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_entity_too_large",
                "Request body too large",
            )
        })
}

fn bad_json(detail: &str) -> ApiError {
    ApiError::bad_request(
        "bad_json",
        format!("Could not parse request body as JSON: {detail}"),
    )
}

/// Who is calling: peer IP and user agent, recorded on sessions and MFA challenges.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self { ip, user_agent })
    }
}

fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a valid Bearer token",
        )
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim().to_owned())
}

fn verify_bearer(state: &Shared, token: &str) -> Result<crate::jwt::BearerClaims, ApiError> {
    state
        .keys
        .verify(token, state.clock.now_secs())
        .map_err(|e| {
            let detail = match e {
                JwtError::Expired => "token has invalid claims: token is expired".to_owned(),
                JwtError::Invalid(detail) => detail,
            };
            ApiError::forbidden(
                "bad_jwt",
                format!("invalid JWT: unable to parse or verify signature, {detail}"),
            )
        })
}

/// A request authenticated by a user's access token, checked as GoTrue's
/// `requireAuthentication` checks it: signature and expiry, then that the user and the
/// token's session still exist, then that the user is not banned.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRow,
    /// `None` only for tokens without a `session_id` claim.
    pub session: Option<SessionRow>,
    pub role: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let claims = verify_bearer(state, &token)?;
        let sub = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::forbidden("bad_jwt", "invalid claim: missing sub claim"))?;
        if uuid::Uuid::parse_str(&sub).is_err() {
            return Err(ApiError::bad_request(
                "bad_jwt",
                "invalid claim: sub claim must be a UUID",
            ));
        }
        let conn = state.db.lock();
        let user_not_found = || {
            ApiError::forbidden(
                "user_not_found",
                "User from sub claim in JWT does not exist",
            )
        };
        // GoTrue finds a soft-deleted user by id; it is the session check (its sessions
        // went with the deletion) that refuses the token.
        let user = UserRow::find_any(&conn, &sub)?.ok_or_else(user_not_found)?;
        let session = match claims.session_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(id) if id == uuid::Uuid::nil().to_string() => None,
            Some(id) => {
                if uuid::Uuid::parse_str(id).is_err() {
                    return Err(ApiError::forbidden(
                        "bad_jwt",
                        "invalid claim: session_id claim must be a UUID",
                    ));
                }
                Some(SessionRow::find(&conn, id)?.ok_or_else(|| {
                    ApiError::forbidden(
                        "session_not_found",
                        "Session from session_id claim in JWT does not exist",
                    )
                })?)
            }
        };
        if user.deleted_at.is_some() {
            return Err(user_not_found());
        }
        if user.is_banned(state.now()) {
            return Err(ApiError::forbidden("user_banned", "User is banned"));
        }
        Ok(Self {
            user,
            session,
            role: claims.role.unwrap_or_default(),
        })
    }
}

/// A request whose bearer has an admin role (`service_role` by default).
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let claims = verify_bearer(state, &token)?;
        let role = claims.role.unwrap_or_default();
        if !state.config.is_admin_role(&role) {
            return Err(ApiError::forbidden("not_admin", "User not allowed"));
        }
        if let Some(id) = claims.session_id.filter(|s| !s.is_empty()) {
            let conn = state.db.lock();
            if SessionRow::find(&conn, &id)?.is_none() {
                return Err(ApiError::forbidden(
                    "session_not_found",
                    "Session from session_id claim in JWT does not exist",
                ));
            }
        }
        Ok(Self)
    }
}
