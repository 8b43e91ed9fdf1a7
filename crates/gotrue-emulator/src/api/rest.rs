//! The two PostgREST RPC calls of Tessera's "Your devices" migration
//! (`supabase/migrations/*_tessera_your_devices.sql`), served the way a Supabase project
//! serves them once the migration ran: `POST /rest/v1/rpc/tessera_list_sessions` and
//! `POST /rest/v1/rpc/tessera_revoke_session` with `{"session_id": "<uuid>"}`.
//!
//! Like PostgREST (and unlike GoTrue), only the JWT's signature and expiry are checked —
//! a token of a session that was revoked keeps working here until it expires. The SQL
//! functions are granted to `authenticated` only, so the anon key is refused. Errors
//! have PostgREST's shape: `{"code", "details", "hint", "message"}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{AppState, Stats, functions};
use crate::db::SessionRow;
use crate::jwt::JwtError;

pub const LIST_SESSIONS: &str = "tessera_list_sessions";
pub const REVOKE_SESSION: &str = "tessera_revoke_session";

fn pg_error(status: StatusCode, code: &str, message: &str, details: Option<&str>) -> Response {
    (
        status,
        Json(json!({"code": code, "details": details, "hint": null, "message": message})),
    )
        .into_response()
}

/// `timestamptz` as PostgREST renders it.
fn timestamptz(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// `timestamp without time zone` (GoTrue's `refreshed_at`) as PostgREST renders it.
fn timestamp(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

pub async fn rpc(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The Supabase gateway wants an API key before PostgREST sees the request.
    if headers.get("apikey").is_none() {
        return functions::no_api_key();
    }
    let bearer = functions::gateway_bearer(&headers).unwrap_or_default();
    let claims = match state.keys.verify(bearer, state.clock.now_secs()) {
        Ok(claims) => claims,
        Err(JwtError::Expired) => {
            return pg_error(StatusCode::UNAUTHORIZED, "PGRST303", "JWT expired", None);
        }
        Err(JwtError::Invalid(why)) => {
            return pg_error(StatusCode::UNAUTHORIZED, "PGRST301", &why, None);
        }
    };
    let args: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return pg_error(
                    StatusCode::BAD_REQUEST,
                    "PGRST102",
                    "Empty or invalid json",
                    None,
                );
            }
        }
    };
    let keys: Vec<&str> = args
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let expected: &[&str] = match name.as_str() {
        LIST_SESSIONS => &[],
        REVOKE_SESSION => &["session_id"],
        _ => &["\u{0}"], // no such function
    };
    if keys.len() != expected.len() || keys.iter().any(|k| !expected.contains(k)) {
        let params = if keys.is_empty() {
            "without parameters".to_owned()
        } else {
            format!("with parameters {}", keys.join(", "))
        };
        return pg_error(
            StatusCode::NOT_FOUND,
            "PGRST202",
            &format!(
                "Could not find the function public.{name}({}) in the schema cache",
                keys.join(", ")
            ),
            Some(&format!(
                "Searched for the function public.{name} {params} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."
            )),
        );
    }
    // Granted to `authenticated` only (anon gets 401, other roles 403, as PostgREST maps
    // `42501`), and `auth.uid()` is the `sub` claim.
    let role = claims.role.as_deref().unwrap_or("anon");
    let (Some(user_id), "authenticated") = (claims.sub.as_deref(), role) else {
        let status = if role == "anon" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        return pg_error(
            status,
            "42501",
            &format!("permission denied for function {name}"),
            None,
        );
    };
    Stats::bump(&state.stats.rpc);
    let conn = state.db.lock();
    match name.as_str() {
        LIST_SESSIONS => {
            let current = claims.session_id.as_deref().unwrap_or_default();
            let mut rows = match SessionRow::for_user(&conn, user_id) {
                Ok(rows) => rows,
                Err(e) => {
                    return pg_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "XX000",
                        &e.to_string(),
                        None,
                    );
                }
            };
            rows.sort_by_key(|s| {
                std::cmp::Reverse(s.refreshed_at.unwrap_or(s.updated_at).max(s.created_at))
            });
            let out: Vec<Value> = rows
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "created_at": timestamptz(s.created_at),
                        "updated_at": timestamptz(s.updated_at),
                        "refreshed_at": s.refreshed_at.map(timestamp),
                        "user_agent": s.user_agent,
                        "ip": s.ip,
                        "aal": s.aal,
                        "is_current": s.id == current,
                    })
                })
                .collect();
            Json(out).into_response()
        }
        _ => {
            let Some(id) = args["session_id"]
                .as_str()
                .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            else {
                return pg_error(
                    StatusCode::BAD_REQUEST,
                    "22P02",
                    &format!("invalid input syntax for type uuid: {}", args["session_id"]),
                    None,
                );
            };
            let owned = match SessionRow::find(&conn, id) {
                Ok(row) => row.is_some_and(|s| s.user_id == user_id),
                Err(e) => {
                    return pg_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "XX000",
                        &e.to_string(),
                        None,
                    );
                }
            };
            if owned && let Err(e) = SessionRow::delete(&conn, id) {
                return pg_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "XX000",
                    &e.to_string(),
                    None,
                );
            }
            Json(json!(owned)).into_response()
        }
    }
}
