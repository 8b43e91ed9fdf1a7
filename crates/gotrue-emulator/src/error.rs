//! GoTrue's error responses.
//!
//! Handlers return [`ApiError`]. Its body shape depends on the request's
//! `X-Supabase-Api-Version` header, which [`versioned_errors`] reads: without it (or with a
//! date before 2024-01-01) the body is `{"code": <status>, "error_code": …, "msg": …}`; from
//! `2024-01-01` on it is `{"code": "<error_code>", "message": …}` and the response echoes the
//! version header. Every error carries the `x-sb-error-code` header.

use std::borrow::Cow;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub const API_VERSION_HEADER: &str = "x-supabase-api-version";
pub const ERROR_CODE_HEADER: &str = "x-sb-error-code";
const API_VERSION_2024: &str = "2024-01-01";

/// Which error body shape a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    Initial,
    V20240101,
}

impl ApiVersion {
    /// GoTrue's rule: any parseable date on or after 2024-01-01 selects the 2024 shape;
    /// anything else (absent, older, unparseable) the initial one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(value) = headers
            .get(API_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
        else {
            return Self::Initial;
        };
        match chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
            Ok(date) if date >= chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default() => {
                Self::V20240101
            }
            _ => Self::Initial,
        }
    }
}

/// An error answered the way GoTrue answers it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub msg: String,
    /// Reasons for a `weak_password` error (`length`, `characters`, `pwned`).
    pub weak_password: Option<Vec<&'static str>>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        msg: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            msg: msg.into(),
            weak_password: None,
        }
    }

    pub fn bad_request(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, msg)
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        Self::bad_request("validation_failed", msg)
    }

    pub fn unprocessable(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg)
    }

    pub fn forbidden(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, msg)
    }

    pub fn not_found(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, msg)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        )
    }

    pub fn weak_password(msg: impl Into<String>, reasons: Vec<&'static str>) -> Self {
        Self {
            weak_password: Some(reasons),
            ..Self::unprocessable("weak_password", msg)
        }
    }

    /// The default error code GoTrue uses for a bare status.
    pub fn code_for_status(status: StatusCode) -> &'static str {
        match status.as_u16() {
            429 => "over_request_rate_limit",
            500..=599 => "unexpected_failure",
            _ => "unknown",
        }
    }

    /// The body and headers for the given API version.
    pub fn render(&self, version: ApiVersion) -> Response {
        let mut body = Map::new();
        match version {
            ApiVersion::Initial => {
                body.insert("code".into(), json!(self.status.as_u16()));
                body.insert("error_code".into(), json!(self.code));
                body.insert("msg".into(), json!(self.msg));
                if self.status.is_server_error() {
                    body.insert("error_id".into(), json!(uuid::Uuid::new_v4().to_string()));
                }
            }
            ApiVersion::V20240101 => {
                body.insert("code".into(), json!(self.code));
                body.insert("message".into(), json!(self.msg));
            }
        }
        if let Some(reasons) = &self.weak_password {
            body.insert("weak_password".into(), json!({ "reasons": reasons }));
        }
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        // GoTrue's weak-password path skips the header in the 2024 shape.
        if !(self.weak_password.is_some() && version == ApiVersion::V20240101)
            && let Ok(value) = HeaderValue::from_str(&self.code)
        {
            headers.insert(ERROR_CODE_HEADER, value);
        }
        if version == ApiVersion::V20240101 {
            headers.insert(
                API_VERSION_HEADER,
                HeaderValue::from_static(API_VERSION_2024),
            );
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.msg)
    }
}

impl std::error::Error for ApiError {}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        tracing::error!(error = %err, "database error");
        Self::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(ApiVersion::Initial);
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: re-renders error bodies in the shape the request's API version asks for.
pub async fn versioned_errors(request: Request, next: Next) -> Response {
    let version = ApiVersion::from_headers(request.headers());
    let response = next.run(request).await;
    if version == ApiVersion::Initial {
        return response;
    }
    match response.extensions().get::<ApiError>() {
        Some(err) => err.render(version),
        None => response,
    }
}

/// Fallback for unknown routes, as GoTrue's router (chi) answers them: plain text, no
/// error code.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// Answer for a known route called with the wrong method: chi's bare 405, no body.
pub async fn method_not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            API_VERSION_HEADER,
            HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    #[test]
    fn version_rules() {
        assert_eq!(
            ApiVersion::from_headers(&HeaderMap::new()),
            ApiVersion::Initial
        );
        assert_eq!(
            ApiVersion::from_headers(&headers("2024-01-01")),
            ApiVersion::V20240101
        );
        assert_eq!(
            ApiVersion::from_headers(&headers("2025-06-30")),
            ApiVersion::V20240101
        );
        assert_eq!(
            ApiVersion::from_headers(&headers("2023-12-31")),
            ApiVersion::Initial
        );
        assert_eq!(
            ApiVersion::from_headers(&headers("garbage")),
            ApiVersion::Initial
        );
    }
}
