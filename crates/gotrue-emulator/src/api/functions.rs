//! A stand-in for one Edge Function behind Supabase's functions gateway with `verify_jwt`
//! on (test server only): `GET`/`POST /functions/v1/whoami` answers the verified claims.
//!
//! The gateway wants the `apikey` header, then a bearer JWT checked as the other services
//! check it: signature (HS256 or ES256, whichever the emulator signs with), expiry against
//! the emulator's clock, and a `role` claim. The anon key is a valid JWT (role `anon`).
//! Errors are 401 `{"code": 401, "message": …}`; an expired token says `JWT expired`.

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

/// Checks the bearer JWT: signature, expiry (emulator clock) and a `role` claim.
pub fn verify(state: &AppState, headers: &HeaderMap) -> Result<(BearerClaims, Value), Refusal> {
    let token = bearer(headers).ok_or(Refusal::Missing)?;
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
    let message = match verify(&state, &headers) {
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
