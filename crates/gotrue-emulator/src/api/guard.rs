//! What only the embedded mode adds in front of the routes: the server is the user's own,
//! reachable by the app alone, not by another origin of the browser.
//!
//! - [`host`] (every request): only `127.0.0.1:<port>` and `localhost:<port>` are served,
//!   so a web page that re-binds its own name to 127.0.0.1 (DNS rebinding) gets 421.
//! - [`json_only`] (every request): a request with a body must say `application/json`, so
//!   the "simple" requests a page may send cross-origin without a preflight (`text/plain`,
//!   forms) get 415.
//! - [`api_key`] (matched routes only, so an unknown path is still a plain 404): the
//!   gateway's key check, with the install's own secret; the public demo keys fail it.
//!
//! CORS needs nothing: no route or layer ever writes an `Access-Control-*` header, so a
//! browser lets no other origin read an answer, and a preflight is not granted.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

/// 421 unless the request names this server as the app does.
pub async fn host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ours = |h: &str| {
        let h = h.to_ascii_lowercase();
        state.allowed_hosts.contains(&h)
    };
    // Every name the request gives must be ours: the Host header (one that is not text
    // is refused, not skipped) and the authority of an absolute-form target.
    let host = request.headers().get(header::HOST).map(|v| v.to_str());
    let authority = request.uri().authority().map(|a| a.to_string());
    let allowed = match (host, authority) {
        (Some(Ok(h)), a) => ours(h) && a.as_deref().is_none_or(ours),
        (Some(Err(_)), _) => false,
        (None, Some(a)) => ours(&a),
        (None, None) => false,
    };
    if !allowed {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "request_not_allowed",
            "This server only answers requests for its loopback address",
        )
        .into_response();
    }
    next.run(request).await
}

/// 415 for a body that is not declared JSON (every route with a body takes JSON).
pub async fn json_only(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("invalid"));
    let has_body = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|n| n.trim() != "0")
        && (headers.contains_key(header::CONTENT_LENGTH)
            || headers.contains_key(header::TRANSFER_ENCODING));
    let ok = match content_type {
        Some(t) => is_json(t),
        None => !has_body,
    };
    if !ok {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_json",
            "Request body must be JSON (Content-Type: application/json)",
        )
        .into_response();
    }
    next.run(request).await
}

/// `application/json`, with parameters (`; charset=utf-8`) or none.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The API gateway's key check: in the `apikey` header, a key signed with this install's
/// secret or the install's publishable key (`sb_publishable_…`, derived from the secret).
/// `GET /verify` is open, as on Supabase: the user's browser opens mailed links.
pub async fn api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = request.method() == Method::GET && (path == "/verify" || path == "/auth/v1/verify");
    if open {
        return next.run(request).await;
    }
    let key = request
        .headers()
        .get("apikey")
        .and_then(|v| v.to_str().ok());
    let message = match key {
        None => "No API key found in request",
        Some(key) if state.keys.verify(key, state.clock.now_secs()).is_err() => "Invalid API key",
        Some(_) => return next.run(request).await,
    };
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "message": message,
            "hint": "Double check your Supabase `anon` or `service_role` API key."
        })),
    )
        .into_response()
}
