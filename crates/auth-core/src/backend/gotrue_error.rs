//! GoTrue's error bodies, in every shape a GoTrue version (or a proxy in front of it)
//! answers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::error::AuthError;

/// Reads GoTrue's error bodies: `{code, message}` (2024-01-01), `{code, error_code, msg}`
/// (initial), or OAuth-style `{error, error_description}`; text is taken from `message` →
/// `msg` → `error_description` → `error`, as supabase-js does.
pub fn parse_error(status: StatusCode, body: &[u8]) -> AuthError {
    let status_u16 = status.as_u16();
    let parsed: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    let Some(v) = parsed else {
        return if status.is_server_error() || status_u16 == 429 {
            AuthError::Api {
                status: status_u16,
                code: format!("http_{status_u16}"),
                message: format!("HTTP {status}"),
            }
        } else {
            AuthError::InvalidResponse(format!("HTTP {status} without a GoTrue error body"))
        };
    };
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let code = text("code")
        .or_else(|| text("error_code"))
        .or_else(|| text("error"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if status.is_server_error() {
                "unexpected_failure".into()
            } else {
                "unknown".into()
            }
        });
    let message = ["message", "msg", "error_description", "error"]
        .iter()
        .find_map(|k| text(k))
        .unwrap_or("the auth server refused the request")
        .to_owned();
    // GoTrue before v2.164 answered refresh errors OAuth-style, `invalid_grant` with the
    // reason only in the text: read the definitive ones as today's codes.
    let code = if code == "invalid_grant" {
        legacy_refresh_code(&message).map_or(code, str::to_owned)
    } else {
        code
    };
    AuthError::Api {
        status: status_u16,
        code,
        message,
    }
}

/// The `error_code` today's GoTrue sends for an old `invalid_grant` refresh answer.
fn legacy_refresh_code(description: &str) -> Option<&'static str> {
    let reason = description.strip_prefix("Invalid Refresh Token: ")?;
    [
        ("Refresh Token Not Found", "refresh_token_not_found"),
        ("Already Used", "refresh_token_already_used"),
        ("Session Expired", "session_expired"),
        ("User Banned", "user_banned"),
    ]
    .iter()
    .find(|(text, _)| reason.starts_with(text))
    .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_error_shape() {
        let e = parse_error(
            StatusCode::BAD_REQUEST,
            br#"{"code":"refresh_token_not_found","message":"gone"}"#,
        );
        assert_eq!(e.code(), "refresh_token_not_found");
        assert_eq!(e.to_string(), "gone (refresh_token_not_found)");
        let e = parse_error(
            StatusCode::FORBIDDEN,
            br#"{"code":403,"error_code":"session_not_found","msg":"x"}"#,
        );
        assert_eq!(e.code(), "session_not_found");
        let e = parse_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"Invalid Refresh Token"}"#,
        );
        assert_eq!(e.code(), "invalid_grant");
        assert_eq!(e.to_string(), "Invalid Refresh Token (invalid_grant)");
        assert!(parse_error(StatusCode::BAD_GATEWAY, b"<html>").is_retryable());
        for (text, code) in [
            ("Refresh Token Not Found", "refresh_token_not_found"),
            ("Already Used", "refresh_token_already_used"),
            ("Session Expired (Inactivity)", "session_expired"),
        ] {
            let body = format!(
                r#"{{"error":"invalid_grant","error_description":"Invalid Refresh Token: {text}"}}"#
            );
            let e = parse_error(StatusCode::BAD_REQUEST, body.as_bytes());
            assert_eq!(e.code(), code);
            assert!(e.ends_session());
        }
        let e = parse_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"Invalid login credentials"}"#,
        );
        assert!(e.code() == "invalid_grant" && !e.ends_session());
        assert!(matches!(
            parse_error(StatusCode::NOT_FOUND, b"<html>"),
            AuthError::InvalidResponse(_)
        ));
    }
}
