//! The app backend's own logout endpoint, called on every sign-out before the auth
//! server's revocation (afterwards the access token may already be refused).
//!
//! The contract most app backends already have: `POST <url>` with
//! `Authorization: Bearer <access_token>` and no body, answering
//! `{"success": true, "message": "…"}`, or an error with a code — `UNAUTHORIZED` (the
//! token is no longer valid: nothing left to end), `LOGOUT_ERROR`, `SUPABASE_ERROR`, …
//! The code is read from `code`, `error.code` or a string `error`; the text from
//! `message` or `error.message`. A `401` without a body counts as `UNAUTHORIZED`.

use std::time::Duration;

use serde_json::Value;

use crate::error::AuthError;
use crate::secret::AccessToken;

/// A configured logout hook.
#[derive(Debug, Clone)]
pub struct LogoutHook {
    http: reqwest::Client,
    url: String,
}

impl LogoutHook {
    pub fn new(url: &str, timeout: Duration, user_agent: &str) -> Result<Self, AuthError> {
        let http = crate::http::http_client(url, "logout hook URL", timeout, user_agent)?;
        Ok(Self {
            http,
            url: url.to_owned(),
        })
    }

    /// Tells the backend this session ends. `Ok` when it confirmed.
    pub async fn call(&self, access_token: &AccessToken) -> Result<(), AuthError> {
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(|e| AuthError::LogoutHook {
                status: None,
                code: "UNREACHABLE".into(),
                message: if e.is_timeout() {
                    "it did not answer in time".into()
                } else {
                    "it cannot be reached".into()
                },
            })?;
        let status = resp.status().as_u16();
        let body: Value = resp
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        classify(status, &body)
    }
}

/// Reads the backend's answer.
pub fn classify(status: u16, body: &Value) -> Result<(), AuthError> {
    if (200..300).contains(&status) && body["success"] == true {
        return Ok(());
    }
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let code = text(&body["code"])
        .or_else(|| text(&body["error"]["code"]))
        .or_else(|| text(&body["error"]))
        .unwrap_or_else(|| match status {
            401 => "UNAUTHORIZED".into(),
            200..=299 => "UNEXPECTED_ANSWER".into(),
            _ => format!("HTTP_{status}"),
        });
    let message = text(&body["message"])
        .or_else(|| text(&body["error"]["message"]))
        .unwrap_or_else(|| format!("HTTP {status}"));
    Err(AuthError::LogoutHook {
        status: Some(status),
        code: code.to_ascii_uppercase(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_usual_answers() {
        assert!(classify(200, &json!({"success": true, "message": "Logged out"})).is_ok());
        let e = classify(401, &Value::Null).unwrap_err();
        assert_eq!(e.code(), "logout_hook_unauthorized");
        assert!(!e.is_retryable());
        let e = classify(
            500,
            &json!({"success": false, "error": {"code": "LOGOUT_ERROR", "message": "cache down"}}),
        )
        .unwrap_err();
        assert_eq!(e.code(), "logout_hook_logout_error");
        assert!(e.is_retryable() && e.to_string().contains("cache down"));
        let e = classify(
            502,
            &json!({"code": "SUPABASE_ERROR", "message": "auth down"}),
        )
        .unwrap_err();
        assert_eq!(e.code(), "logout_hook_supabase_error");
        let e = classify(200, &json!({"success": false, "error": "unauthorized"})).unwrap_err();
        assert_eq!(e.code(), "logout_hook_unauthorized");
        let e = classify(200, &Value::Null).unwrap_err();
        assert_eq!(
            e.code(),
            "logout_hook_failed",
            "a 200 that is not the contract"
        );
        assert!(e.is_retryable());
    }
}
