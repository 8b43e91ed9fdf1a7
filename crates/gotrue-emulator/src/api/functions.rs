//! Stand-ins for two Edge Functions behind Supabase's functions gateway (test server only).
//!
//! - `GET`/`POST /functions/v1/whoami`, with `verify_jwt` on (the default): the gateway
//!   wants the `apikey` header, then a bearer **JWT** checked as the other services check
//!   it — signature (HS256 or ES256, whichever the emulator signs with), expiry against the
//!   emulator's clock, a `role` claim — and the function answers the verified claims. The
//!   legacy anon key is a valid JWT (role `anon`). Unlike the REST, Storage and GraphQL
//!   routes, the functions route does not swap a publishable key sent as the bearer for the
//!   anon JWT: `Bearer sb_publishable_…` is refused as hosted Supabase refuses it,
//!   `401 {"code":"UNAUTHORIZED_INVALID_JWT_FORMAT","message":"Invalid JWT"}`
//!   (supabase/supabase#45993). Other errors are 401 `{"code": 401, "message": …}`; an
//!   expired token says `JWT expired`.
//! - `GET`/`POST /functions/v1/hello`, with `verify_jwt` off — how Supabase's docs tell a
//!   function to take signed-out callers with the new keys: it reads the `apikey` header
//!   itself (a publishable or anon key) and answers `{"hello": <role>}`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Stats};
use crate::jwt::{BearerClaims, JwtError};

/// Supabase's gateway answer to a request without an API key.
pub fn no_api_key() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "message": "No API key found in request",
            "hint": "No `apikey` request header or url param was found."
        })),
    )
        .into_response()
}

/// The bearer token of `Authorization: Bearer …`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Why a bearer was refused, for each stand-in to word its own way.
pub enum Refusal {
    Missing,
    Invalid,
    Expired,
}

/// The bearer Supabase's gateway hands REST, Storage and GraphQL (its `LUA_AUTH_EXPR`,
/// supabase/supabase `docker/volumes/api/kong-entrypoint.sh`): the request's own
/// `Authorization`, unless it is missing or carries an `sb_` key — then the key in `apikey`
/// (which the gateway swaps for the JWT of its role).
pub fn gateway_bearer(headers: &HeaderMap) -> Option<&str> {
    match bearer(headers) {
        Some(token) if !token.starts_with("sb_") => Some(token),
        _ => headers.get("apikey").and_then(|v| v.to_str().ok()),
    }
}

/// Checks a bearer JWT: signature, expiry (emulator clock) and a `role` claim.
pub fn verify(state: &AppState, token: Option<&str>) -> Result<(BearerClaims, Value), Refusal> {
    let token = token.ok_or(Refusal::Missing)?;
    match state.keys.verify_claims(token, state.clock.now_secs()) {
        Ok((claims, _)) if claims.role.as_deref().is_none_or(str::is_empty) => {
            Err(Refusal::Invalid)
        }
        Ok(verified) => Ok(verified),
        Err(JwtError::Expired) => Err(Refusal::Expired),
        Err(JwtError::Invalid(_)) => Err(Refusal::Invalid),
    }
}

pub async fn whoami(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    if headers.get("apikey").is_none() {
        return no_api_key();
    }
    if bearer(&headers).is_some_and(|t| t.split('.').count() != 3) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "UNAUTHORIZED_INVALID_JWT_FORMAT", "message": "Invalid JWT"})),
        )
            .into_response();
    }
    let message = match verify(&state, bearer(&headers)) {
        Ok((_, claims)) => {
            Stats::bump(&state.stats.function);
            return Json(json!({"claims": claims, "method": method.as_str()})).into_response();
        }
        Err(Refusal::Missing) => "Missing authorization header",
        Err(Refusal::Invalid) => "Invalid JWT",
        Err(Refusal::Expired) => "JWT expired",
    };
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 401, "message": message})),
    )
        .into_response()
}

/// The function with `verify_jwt` off: the caller's key, read from `apikey`, decides.
pub async fn hello(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let key = headers.get("apikey").and_then(|v| v.to_str().ok());
    let Some(key) = key else {
        return no_api_key();
    };
    match state.keys.verify_claims(key, state.clock.now_secs()) {
        Ok((claims, _)) if claims.sub.is_none() => {
            Stats::bump(&state.stats.function);
            Json(json!({"hello": claims.role.unwrap_or_default()})).into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Invalid API key"})),
        )
            .into_response(),
    }
}
