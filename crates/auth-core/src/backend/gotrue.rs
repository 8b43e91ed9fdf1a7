//! The GoTrue HTTP API (Supabase Auth).
//!
//! It sends `apikey` and `X-Supabase-Api-Version: 2024-01-01`, reads both error body shapes
//! (and OAuth-style ones), and treats refresh tokens as opaque strings. It holds no state:
//! the session engine decides what a result means.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{
    AuthBackend, BackendKind, MfaEnrollment, OtpType, SessionRow, SignOutScope, SignUpResponse,
    TokenResponse, UserUpdate,
};
use crate::error::AuthError;
use crate::http::{http_client, urlencode};
use crate::secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};

pub use super::gotrue_error::parse_error;

/// The GoTrue HTTP API.
#[derive(Debug, Clone)]
pub struct GoTrueApi {
    http: reqwest::Client,
    base: String,
    /// PostgREST's root (`…/rest/v1`), for the "Your devices" SQL functions.
    rest_base: String,
    anon_key: String,
    timeout: Duration,
}

impl GoTrueApi {
    /// `url` is the API root: `http://127.0.0.1:9999` (GoTrue) or
    /// `https://<project>.supabase.co/auth/v1` (Supabase).
    pub fn new(url: &str, anon_key: &str, timeout: Duration) -> Result<Self, AuthError> {
        Self::with_user_agent(
            url,
            anon_key,
            timeout,
            concat!("tessera-auth-core/", env!("CARGO_PKG_VERSION")),
        )
    }

    /// As [`GoTrueApi::new`], naming the client in `User-Agent` (GoTrue stores it with the
    /// session, and "Your devices" shows it).
    pub fn with_user_agent(
        url: &str,
        anon_key: &str,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, AuthError> {
        let http = http_client(url, "auth URL", timeout, user_agent)?;
        let base = url.trim_end_matches('/').to_owned();
        // Supabase serves GoTrue at `/auth/v1` and PostgREST at `/rest/v1` of one host.
        let rest_base = match base.strip_suffix("/auth/v1") {
            Some(root) => format!("{root}/rest/v1"),
            None => format!("{base}/rest/v1"),
        };
        Ok(Self {
            http,
            base,
            rest_base,
            anon_key: anon_key.to_owned(),
            timeout,
        })
    }

    /// Points the PostgREST calls elsewhere (a self-hosted stack with its own REST URL).
    pub fn set_rest_url(&mut self, url: &str) -> Result<(), AuthError> {
        crate::http::check_url(url, "REST URL")?;
        self.rest_base = url.trim_end_matches('/').to_owned();
        Ok(())
    }

    pub fn rest_url(&self) -> &str {
        &self.rest_base
    }

    /// Calls a PostgREST RPC function as the user.
    async fn rpc<T: DeserializeOwned>(
        &self,
        function: &str,
        access_token: &AccessToken,
        args: Value,
    ) -> Result<T, AuthError> {
        let resp = self
            .http
            .post(format!("{}/rpc/{function}", self.rest_base))
            .header("apikey", &self.anon_key)
            .bearer_auth(access_token.expose_secret())
            .json(&args)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            let e = parse_error(status, &bytes);
            // PostgREST's "no such function": the project lacks the migration.
            if e.api_code() == Some(crate::error::ApiCode::NoSuchFunction) {
                return Err(AuthError::Api {
                    status: 404,
                    code: "devices_not_configured".into(),
                    message: format!(
                        "the project has no {function}() function: run Tessera's \
                         supabase/migrations/*_tessera_your_devices.sql on it"
                    ),
                });
            }
            return Err(e);
        }
        crate::decode::from_slice(&format!("rpc/{function}"), &bytes)
    }

    /// The user's sessions (`tessera_list_sessions`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&AccessToken>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Vec<u8>), AuthError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("apikey", &self.anon_key)
            .header("X-Supabase-Api-Version", "2024-01-01")
            .header(
                "X-Client-Info",
                concat!("tessera-auth-core/", env!("CARGO_PKG_VERSION")),
            );
        req = match bearer {
            Some(token) => req.bearer_auth(token.expose_secret()),
            None => req.bearer_auth(&self.anon_key),
        };
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            Ok((status, bytes.to_vec()))
        } else {
            Err(parse_error(status, &bytes))
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> AuthError {
        if e.is_timeout() {
            AuthError::Timeout(self.timeout)
        } else {
            // reqwest's message names the URL; ours carry no secrets (only grant_type/scope).
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            AuthError::Network(msg)
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&AccessToken>,
        body: Option<Value>,
    ) -> Result<T, AuthError> {
        let (_, bytes) = self.send(method, path, bearer, body).await?;
        crate::decode::from_slice(path, &bytes)
    }

    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&AccessToken>,
        body: Option<Value>,
    ) -> Result<(), AuthError> {
        self.send(method, path, bearer, body).await.map(|_| ())
    }

    /// The URL that starts an OAuth sign-in in the system browser (`GET /authorize`, PKCE).
    fn authorize_url_string(
        &self,
        provider: &str,
        redirect_to: &str,
        code_challenge: &str,
        scopes: Option<&str>,
    ) -> String {
        let mut url = format!(
            "{}/authorize?provider={}&redirect_to={}&code_challenge={}&code_challenge_method=s256",
            self.base,
            urlencode(provider),
            urlencode(redirect_to),
            urlencode(code_challenge)
        );
        if let Some(scopes) = scopes {
            url.push_str(&format!("&scopes={}", urlencode(scopes)));
        }
        url
    }

    /// `POST /verify` of an email change: a session when the change is complete, `None`
    /// for GoTrue's "confirm the other address too" message.
    async fn email_change_answer(&self, body: Value) -> Result<Option<TokenResponse>, AuthError> {
        let answer: Value = self.call(Method::POST, "/verify", None, Some(body)).await?;
        if answer.get("access_token").is_some() {
            return crate::decode::from_value("session", answer).map(Some);
        }
        if answer.get("msg").and_then(Value::as_str).is_some() {
            return Ok(None);
        }
        Err(AuthError::InvalidResponse(
            "an email-change confirmation that is neither a session nor a message".into(),
        ))
    }

    fn with_redirect(path: &str, redirect_to: Option<&str>) -> String {
        match redirect_to {
            Some(r) => format!("{path}?redirect_to={}", urlencode(r)),
            None => path.to_owned(),
        }
    }
}

/// Supabase Auth (GoTrue): every operation the engine knows.
#[async_trait::async_trait]
impl AuthBackend for GoTrueApi {
    fn kind(&self) -> BackendKind {
        BackendKind::GoTrue
    }

    fn authorize_url(
        &self,
        provider: &str,
        redirect_to: &str,
        code_challenge: &str,
        scopes: Option<&str>,
    ) -> Result<String, AuthError> {
        Ok(self.authorize_url_string(provider, redirect_to, code_challenge, scopes))
    }

    async fn list_sessions(
        &self,
        access_token: &AccessToken,
    ) -> Result<Vec<SessionRow>, AuthError> {
        self.rpc("tessera_list_sessions", access_token, json!({}))
            .await
    }

    /// Deletes one of the user's sessions; `false` if it is not one of theirs (or gone).
    async fn revoke_session(
        &self,
        access_token: &AccessToken,
        session_id: &str,
    ) -> Result<bool, AuthError> {
        self.rpc(
            "tessera_revoke_session",
            access_token,
            json!({ "session_id": session_id }),
        )
        .await
    }

    async fn sign_up(
        &self,
        email: &str,
        password: &Password,
        data: Option<Value>,
        code_challenge: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<SignUpResponse, AuthError> {
        let mut body = json!({ "email": email, "password": password.expose_secret() });
        if let Some(data) = data {
            body["data"] = data;
        }
        with_pkce(&mut body, code_challenge);
        let value: Value = self
            .call(
                Method::POST,
                &Self::with_redirect("/signup", redirect_to),
                None,
                Some(body),
            )
            .await?;
        if value.get("access_token").is_some() {
            crate::decode::from_value("/signup", value)
                .map(|s| SignUpResponse::Session(Box::new(s)))
        } else {
            crate::decode::from_value("/signup", value)
                .map(|u| SignUpResponse::ConfirmationSent(Box::new(u)))
        }
    }

    async fn sign_in_with_password(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<TokenResponse, AuthError> {
        let body = json!({ "email": email, "password": password.expose_secret() });
        self.call(Method::POST, "/token?grant_type=password", None, Some(body))
            .await
    }

    async fn sign_in_anonymously(&self, data: Option<Value>) -> Result<TokenResponse, AuthError> {
        let body = match data {
            Some(data) => json!({ "data": data }),
            None => json!({}),
        };
        self.call(Method::POST, "/signup", None, Some(body)).await
    }

    /// Sends a magic link / email code. With a challenge, the link finishes a PKCE flow.
    async fn send_otp(
        &self,
        email: &str,
        create_user: bool,
        code_challenge: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        let mut body = json!({ "email": email, "create_user": create_user });
        with_pkce(&mut body, code_challenge);
        self.call_empty(
            Method::POST,
            &Self::with_redirect("/otp", redirect_to),
            None,
            Some(body),
        )
        .await
    }

    async fn recover(
        &self,
        email: &str,
        code_challenge: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        let mut body = json!({ "email": email });
        with_pkce(&mut body, code_challenge);
        self.call_empty(
            Method::POST,
            &Self::with_redirect("/recover", redirect_to),
            None,
            Some(body),
        )
        .await
    }

    async fn resend(
        &self,
        kind: &str,
        email: &str,
        code_challenge: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        let mut body = json!({ "type": kind, "email": email });
        with_pkce(&mut body, code_challenge);
        self.call_empty(
            Method::POST,
            &Self::with_redirect("/resend", redirect_to),
            None,
            Some(body),
        )
        .await
    }

    /// Verifies an emailed code (`type`: email, signup, magiclink, recovery, invite, email_change).
    async fn verify_otp(
        &self,
        email: &str,
        code: &OneTimeCode,
        kind: OtpType,
    ) -> Result<TokenResponse, AuthError> {
        let body = json!({ "email": email, "token": code.expose_secret(), "type": kind.as_str() });
        self.call(Method::POST, "/verify", None, Some(body)).await
    }

    async fn verify_email_change(
        &self,
        email: &str,
        code: &OneTimeCode,
    ) -> Result<Option<TokenResponse>, AuthError> {
        let body = json!({ "email": email, "token": code.expose_secret(), "type": "email_change" });
        self.email_change_answer(body).await
    }

    async fn verify_email_change_link(
        &self,
        token_hash: &OneTimeCode,
    ) -> Result<Option<TokenResponse>, AuthError> {
        let body = json!({ "token_hash": token_hash.expose_secret(), "type": "email_change" });
        self.email_change_answer(body).await
    }

    async fn verify_token_hash(
        &self,
        token_hash: &OneTimeCode,
        kind: &str,
    ) -> Result<TokenResponse, AuthError> {
        let body = json!({ "token_hash": token_hash.expose_secret(), "type": kind });
        self.call(Method::POST, "/verify", None, Some(body)).await
    }

    async fn follow_email_link(&self, link: &str) -> Result<String, AuthError> {
        let ours = format!("{}/verify?", self.base);
        if !link.starts_with(&ours) {
            return Err(AuthError::InvalidInput(
                "not a link to this server's /verify".into(),
            ));
        }
        let resp = self
            .http
            .get(link)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(location) if resp.status().is_redirection() => Ok(location),
            _ => Err(AuthError::InvalidResponse(format!(
                "/verify answered {} without a redirect",
                resp.status()
            ))),
        }
    }

    async fn exchange_code(
        &self,
        auth_code: &str,
        verifier: &CodeVerifier,
    ) -> Result<TokenResponse, AuthError> {
        let body = json!({ "auth_code": auth_code, "code_verifier": verifier.expose_secret() });
        self.call(Method::POST, "/token?grant_type=pkce", None, Some(body))
            .await
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenResponse, AuthError> {
        let body = json!({ "refresh_token": refresh_token.expose_secret() });
        self.call(
            Method::POST,
            "/token?grant_type=refresh_token",
            None,
            Some(body),
        )
        .await
    }

    async fn logout(
        &self,
        access_token: &AccessToken,
        scope: SignOutScope,
    ) -> Result<(), AuthError> {
        // GoTrue answers 204. A 2xx whose body is not JSON came from something else (a
        // captive portal, a proxy's error page): the session was not revoked.
        let (_, body) = self
            .send(
                Method::POST,
                &format!("/logout?scope={}", scope.as_str()),
                Some(access_token),
                None,
            )
            .await?;
        if !body.iter().all(u8::is_ascii_whitespace)
            && serde_json::from_slice::<Value>(&body).is_err()
        {
            return Err(AuthError::InvalidResponse(
                "/logout: the answer was not the auth server's".into(),
            ));
        }
        Ok(())
    }

    async fn get_user(&self, access_token: &AccessToken) -> Result<Value, AuthError> {
        self.call(Method::GET, "/user", Some(access_token), None)
            .await
    }

    async fn update_user(
        &self,
        access_token: &AccessToken,
        update: &UserUpdate,
        code_challenge: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<Value, AuthError> {
        let mut body = json!({});
        with_pkce(&mut body, code_challenge);
        if let Some(email) = &update.email {
            body["email"] = json!(email);
        }
        if let Some(password) = &update.password {
            body["password"] = json!(password.expose_secret());
        }
        if let Some(data) = &update.data {
            body["data"] = data.clone();
        }
        self.call(
            Method::PUT,
            &Self::with_redirect("/user", redirect_to),
            Some(access_token),
            Some(body),
        )
        .await
    }

    async fn mfa_enroll(
        &self,
        access_token: &AccessToken,
        friendly_name: Option<&str>,
    ) -> Result<MfaEnrollment, AuthError> {
        let mut body = json!({ "factor_type": "totp" });
        if let Some(name) = friendly_name {
            body["friendly_name"] = json!(name);
        }
        let v: Value = self
            .call(Method::POST, "/factors", Some(access_token), Some(body))
            .await?;
        let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Ok(MfaEnrollment {
            factor_id: text("/id")
                .ok_or_else(|| AuthError::InvalidResponse("/factors: no id".into()))?,
            friendly_name: text("/friendly_name").unwrap_or_default(),
            secret: text("/totp/secret").unwrap_or_default(),
            uri: text("/totp/uri").unwrap_or_default(),
            qr_code_svg: text("/totp/qr_code").unwrap_or_default(),
        })
    }

    async fn mfa_challenge(
        &self,
        access_token: &AccessToken,
        factor_id: &str,
    ) -> Result<String, AuthError> {
        let v: Value = self
            .call(
                Method::POST,
                &format!("/factors/{}/challenge", urlencode(factor_id)),
                Some(access_token),
                Some(json!({})),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AuthError::InvalidResponse("challenge without id".into()))
    }

    async fn mfa_verify(
        &self,
        access_token: &AccessToken,
        factor_id: &str,
        challenge_id: &str,
        code: &OneTimeCode,
    ) -> Result<TokenResponse, AuthError> {
        let body = json!({ "challenge_id": challenge_id, "code": code.expose_secret() });
        self.call(
            Method::POST,
            &format!("/factors/{}/verify", urlencode(factor_id)),
            Some(access_token),
            Some(body),
        )
        .await
    }

    async fn mfa_unenroll(
        &self,
        access_token: &AccessToken,
        factor_id: &str,
    ) -> Result<(), AuthError> {
        self.call_empty(
            Method::DELETE,
            &format!("/factors/{}", urlencode(factor_id)),
            Some(access_token),
            None,
        )
        .await
    }
}

/// A mailed link's PKCE challenge, when the flow has one (`S256`).
fn with_pkce(body: &mut Value, code_challenge: Option<&str>) {
    if let Some(challenge) = code_challenge {
        body["code_challenge"] = json!(challenge);
        body["code_challenge_method"] = json!("s256");
    }
}
