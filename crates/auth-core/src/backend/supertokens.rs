//! SuperTokens as the auth backend, in header mode (no cookies): the frontend-driver
//! interface of the email-password recipe and the session recipe.
//!
//! - sign-in/sign-up: `POST <api>/auth/signin|signup` with `st-auth-mode: header`; tokens
//!   come in the `st-access-token` / `st-refresh-token` headers, expiry and user id in
//!   `front-token` (base64 JSON `{uid, ate, up}`; `remove` = the session ended);
//! - refresh: `POST <api>/auth/session/refresh` with the refresh token as bearer;
//! - sign-out `local`: `POST <api>/auth/signout` (needs a live session; the engine refreshes
//!   first when the access token has expired, as SuperTokens' SDKs do);
//! - `global` / `others`: SuperTokens has no frontend API for them, so the app backend
//!   exposes `POST <api>/auth/sessions/revoke` `{"scope": "global"|"others"}`, which calls
//!   `revokeAllSessionsForUser` / `revokeSession` for each other handle;
//! - validation: `GET <api>/sessioninfo` (the app's `verifySession`, ideally with
//!   `checkDatabase: true`), answering `{sessionHandle, userId, email}`.
//!
//! `401 unauthorised` and `token theft detected` end the session (reason `revoked`:
//! SuperTokens' `UNAUTHORISED` / onSessionExpired); `401 try refresh token` asks for a
//! refresh first. A `401` without SuperTokens' JSON body (a proxy, a captive portal) is a
//! transient failure, never a sign-out.

use std::time::Duration;

use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{AuthBackend, BackendKind, SignOutScope, SignUpResponse, TokenResponse};
use crate::error::AuthError;
use crate::secret::{AccessToken, Password, RefreshToken};

const FDI_VERSION: &str = "3.1";

/// A SuperTokens app backend (`url` is its API domain; `apiBasePath` `/auth`).
#[derive(Debug, Clone)]
pub struct SuperTokensApi {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl SuperTokensApi {
    pub fn new(url: &str, timeout: Duration, user_agent: &str) -> Result<Self, AuthError> {
        let http = crate::http::http_client(url, "SuperTokens API URL", timeout, user_agent)?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    fn transport(&self, e: &reqwest::Error) -> AuthError {
        if e.is_timeout() {
            AuthError::Timeout(self.timeout)
        } else {
            AuthError::Network(format!("{e}"))
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
        rid: &str,
    ) -> Result<(HeaderMap, Value), AuthError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("st-auth-mode", "header")
            .header("rid", rid)
            .header("fdi-version", FDI_VERSION);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| self.transport(&e))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok((headers, body));
        }
        let text = body["message"].as_str().unwrap_or_default();
        if status == 401 && body["message"].as_str().is_none() {
            // Not SuperTokens' answer: a proxy or a captive portal. Transient, never a
            // sign-out.
            return Err(AuthError::InvalidResponse(
                "HTTP 401 without SuperTokens' answer (a proxy or captive portal?)".into(),
            ));
        }
        let code = match (status, text) {
            (401, "try refresh token") => "try_refresh_token",
            (401, "token theft detected") => "token_theft_detected",
            (401, _) => "unauthorised",
            (403, _) => "invalid_claim",
            (s, _) if s >= 500 => "server_error",
            _ => "bad_request",
        };
        Err(AuthError::Api {
            status,
            code: code.into(),
            message: if text.is_empty() {
                format!("HTTP {status}")
            } else {
                text.to_owned()
            },
        })
    }

    /// Reads a new session out of the response headers.
    fn tokens(headers: &HeaderMap, user: Value) -> Result<TokenResponse, AuthError> {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let front = get("front-token");
        if front == "remove" {
            return Err(AuthError::Api {
                status: 401,
                code: "unauthorised".into(),
                message: "the session ended".into(),
            });
        }
        let (access, refresh) = (get("st-access-token"), get("st-refresh-token"));
        if access.is_empty() || refresh.is_empty() || front.is_empty() {
            return Err(AuthError::InvalidResponse(
                "no session tokens in the answer (a proxy may strip the st-* and front-token headers)"
                    .into(),
            ));
        }
        let front: Value = base64::engine::general_purpose::STANDARD
            .decode(front.as_bytes())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| AuthError::InvalidResponse("unreadable front-token".into()))?;
        let expires_at_ms = front["ate"]
            .as_i64()
            .ok_or_else(|| AuthError::InvalidResponse("front-token without ate".into()))?;
        // The lifetime from the token's own claims; the expiry instant from the server.
        let claims = crate::jwt::decode_claims(&access).unwrap_or_default();
        let expires_in = match (claims.exp, claims.iat) {
            (Some(exp), Some(iat)) if exp > iat => exp.saturating_sub(iat),
            _ => 3600,
        };
        Ok(TokenResponse {
            access_token: AccessToken::new(access),
            refresh_token: RefreshToken::new(refresh),
            expires_in,
            expires_at: Some(expires_at_ms / 1000),
            user,
        })
    }

    /// A SuperTokens user in the shape the engine keeps (GoTrue's).
    fn user(u: &Value) -> Value {
        let email = u["emails"][0]
            .as_str()
            .or_else(|| u["email"].as_str())
            .unwrap_or_default();
        json!({
            "id": u["id"].as_str().or_else(|| u["userId"].as_str()).unwrap_or_default(),
            "email": email,
            "app_metadata": {"provider": "email", "backend": "supertokens"},
            "user_metadata": {},
        })
    }

    async fn email_password(
        &self,
        path: &str,
        email: &str,
        password: &Password,
    ) -> Result<TokenResponse, AuthError> {
        let body = json!({"formFields": [
            {"id": "email", "value": email},
            {"id": "password", "value": password.expose_secret()},
        ]});
        let (headers, body) = self
            .call(
                reqwest::Method::POST,
                path,
                None,
                Some(body),
                "emailpassword",
            )
            .await?;
        match body["status"].as_str() {
            Some("OK") => Self::tokens(&headers, Self::user(&body["user"])),
            Some("WRONG_CREDENTIALS_ERROR") => Err(AuthError::Api {
                status: 400,
                code: "invalid_credentials".into(),
                message: "Invalid login credentials".into(),
            }),
            Some("FIELD_ERROR") => Err(AuthError::Api {
                status: 422,
                code: "validation_failed".into(),
                message: body["formFields"][0]["error"]
                    .as_str()
                    .unwrap_or("invalid input")
                    .to_owned(),
            }),
            other => Err(AuthError::Api {
                status: 400,
                code: other.unwrap_or("unexpected_answer").to_ascii_lowercase(),
                message: "the sign-in was refused".into(),
            }),
        }
    }
}

#[async_trait::async_trait]
impl AuthBackend for SuperTokensApi {
    fn kind(&self) -> BackendKind {
        BackendKind::SuperTokens
    }

    async fn sign_in_with_password(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<TokenResponse, AuthError> {
        self.email_password("/auth/signin", email, password).await
    }

    async fn sign_up(
        &self,
        email: &str,
        password: &Password,
        _data: Option<Value>,
        _code_challenge: Option<&str>,
        _redirect_to: Option<&str>,
    ) -> Result<SignUpResponse, AuthError> {
        self.email_password("/auth/signup", email, password)
            .await
            .map(|t| SignUpResponse::Session(Box::new(t)))
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenResponse, AuthError> {
        let (headers, _) = self
            .call(
                reqwest::Method::POST,
                "/auth/session/refresh",
                Some(refresh_token.expose_secret()),
                None,
                "session",
            )
            .await?;
        Self::tokens(&headers, Value::Null)
    }

    async fn logout(
        &self,
        access_token: &AccessToken,
        scope: SignOutScope,
    ) -> Result<(), AuthError> {
        let (path, body) = match scope {
            SignOutScope::Local => ("/auth/signout", None),
            SignOutScope::Global | SignOutScope::Others => (
                "/auth/sessions/revoke",
                Some(json!({ "scope": scope.as_str() })),
            ),
        };
        self.call(
            reqwest::Method::POST,
            path,
            Some(access_token.expose_secret()),
            body,
            "session",
        )
        .await
        .map(|_| ())
    }

    async fn get_user(&self, access_token: &AccessToken) -> Result<Value, AuthError> {
        let (_, body) = self
            .call(
                reqwest::Method::GET,
                "/sessioninfo",
                Some(access_token.expose_secret()),
                None,
                "session",
            )
            .await?;
        Ok(Self::user(&body))
    }
}
