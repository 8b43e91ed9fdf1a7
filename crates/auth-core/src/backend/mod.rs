//! The auth server behind the engine. Everything backend-specific sits behind
//! [`AuthBackend`]: [`GoTrueApi`](crate::GoTrueApi) (Supabase Auth, the default) and
//! [`SuperTokensApi`](supertokens::SuperTokensApi). A third backend is one new
//! module implementing this trait; the engine, its events and the app do not change.
//!
//! Operations a backend does not have answer [`AuthError::Unsupported`].

//!
//! Here: the trait and the types every backend shares (token response, sign-out scope,
//! user and its update, session rows of "Your devices"). `gotrue.rs` and `supertokens.rs`
//! implement it; [`connect`] makes the one a configuration names.

pub mod gotrue;
mod gotrue_error;
pub mod supertokens;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::AuthConfig;
pub use crate::config::BackendKind;
use crate::error::AuthError;
use crate::secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};

pub use gotrue::GoTrueApi;
pub use supertokens::SuperTokensApi;

/// The scopes of a sign-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignOutScope {
    /// This session only.
    Local,
    /// Every session of the user (GoTrue's default).
    #[default]
    Global,
    /// Every session of the user but this one.
    Others,
}

impl SignOutScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Global => "global",
            Self::Others => "others",
        }
    }
}

impl std::str::FromStr for SignOutScope {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s {
            "local" => Ok(Self::Local),
            "global" => Ok(Self::Global),
            "others" => Ok(Self::Others),
            other => Err(AuthError::InvalidInput(format!(
                "unknown sign-out scope {other:?} (use local, global or others)"
            ))),
        }
    }
}

/// What an emailed code verifies (GoTrue's `type` in `POST /verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OtpType {
    /// A sign-in code: GoTrue checks it as a confirmation or a magic-link code.
    #[default]
    Email,
    Signup,
    Magiclink,
    Recovery,
    Invite,
    EmailChange,
}

impl OtpType {
    pub const ALL: [OtpType; 6] = [
        Self::Email,
        Self::Signup,
        Self::Magiclink,
        Self::Recovery,
        Self::Invite,
        Self::EmailChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Signup => "signup",
            Self::Magiclink => "magiclink",
            Self::Recovery => "recovery",
            Self::Invite => "invite",
            Self::EmailChange => "email_change",
        }
    }
}

impl std::str::FromStr for OtpType {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                AuthError::InvalidInput(format!(
                    "unknown code type {s:?} (email, signup, magiclink, recovery, invite, \
                     email_change)"
                ))
            })
    }
}

/// An MFA factor of the user.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Factor {
    pub id: String,
    #[serde(default)]
    pub friendly_name: String,
    pub factor_type: String,
    pub status: String,
}

/// The user as the server describes it (not secret).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub is_anonymous: bool,
    #[serde(default)]
    pub app_metadata: Value,
    #[serde(default)]
    pub user_metadata: Value,
    #[serde(default)]
    pub factors: Vec<Factor>,
    #[serde(default)]
    pub email_confirmed_at: Option<String>,
    #[serde(default)]
    pub new_email: Option<String>,
    #[serde(default)]
    pub last_sign_in_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A token-issuing answer ("Session JSON"). Only the refresh token is required to read
/// it: an answer missing the rest still says which token the server rotated to, and the
/// session's checks ([`crate::expiry::expiry`], the user's decoding) refuse what is
/// missing.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub access_token: AccessToken,
    /// Zero when absent, which the session's checks refuse.
    #[serde(default)]
    pub expires_in: i64,
    #[serde(default)]
    pub expires_at: Option<i64>,
    pub refresh_token: RefreshToken,
    /// The user, kept as the server sent it (it is what the store keeps); `null` when
    /// absent.
    #[serde(default)]
    pub user: Value,
}

/// A row of `tessera_list_sessions()` as PostgREST returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// `timestamp without time zone` (UTC, as GoTrue writes it).
    pub refreshed_at: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub aal: Option<String>,
    #[serde(default)]
    pub is_current: bool,
}

/// What `POST /signup` answered.
#[derive(Debug)]
pub enum SignUpResponse {
    /// Confirmed at once (autoconfirm): signed in.
    Session(Box<TokenResponse>),
    /// A confirmation mail was sent (or the address exists; GoTrue does not say which).
    ConfirmationSent(Box<User>),
}

/// A TOTP enrolment: what an authenticator app needs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MfaEnrollment {
    pub factor_id: String,
    pub friendly_name: String,
    /// The shared secret (base32), shown once so the user can type it into an app.
    pub secret: String,
    /// `otpauth://totp/…`
    pub uri: String,
    /// The URI as an SVG QR code.
    pub qr_code_svg: String,
}

/// Changes to the user (`PUT /user`).
#[derive(Debug, Default, Clone)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub password: Option<Password>,
    pub data: Option<Value>,
}

/// What the engine asks of an auth server. Tokens come back as [`TokenResponse`] with the
/// user in GoTrue's JSON shape (`user: null` on a refresh that does not say: the engine
/// keeps the one it has).
#[async_trait::async_trait]
#[allow(clippy::too_many_arguments)]
pub trait AuthBackend: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> BackendKind;

    async fn sign_in_with_password(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<TokenResponse, AuthError>;

    async fn sign_up(
        &self,
        email: &str,
        password: &Password,
        data: Option<Value>,
        code_challenge: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<SignUpResponse, AuthError>;

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenResponse, AuthError>;

    /// Ends sessions at the server: `local` this one, `global` all of the user's,
    /// `others` all but this one.
    async fn logout(
        &self,
        access_token: &AccessToken,
        scope: SignOutScope,
    ) -> Result<(), AuthError>;

    /// The user, asking the server (so a revoked session is noticed).
    async fn get_user(&self, access_token: &AccessToken) -> Result<Value, AuthError>;

    async fn sign_in_anonymously(&self, _data: Option<Value>) -> Result<TokenResponse, AuthError> {
        Err(AuthError::Unsupported("anonymous sign-in"))
    }

    async fn send_otp(
        &self,
        _email: &str,
        _create_user: bool,
        _code_challenge: Option<&str>,
        _redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        Err(AuthError::Unsupported("email codes and magic links"))
    }

    async fn recover(
        &self,
        _email: &str,
        _code_challenge: Option<&str>,
        _redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        Err(AuthError::Unsupported("password recovery"))
    }

    /// Verifies a code of an email change. With secure email change (GoTrue's default)
    /// the first of the two addresses answers with a message and no session (`None`);
    /// the second, or the only one, completes the change and issues a session.
    async fn verify_email_change(
        &self,
        _email: &str,
        _code: &OneTimeCode,
    ) -> Result<Option<TokenResponse>, AuthError> {
        Err(AuthError::Unsupported("changing the email address"))
    }

    /// Sends a mail again: the sign-up confirmation (`signup`) or the email-change
    /// confirmation (`email_change`).
    async fn resend(
        &self,
        _kind: &str,
        _email: &str,
        _code_challenge: Option<&str>,
        _redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        Err(AuthError::Unsupported("sending a confirmation again"))
    }

    async fn verify_otp(
        &self,
        _email: &str,
        _code: &OneTimeCode,
        _kind: OtpType,
    ) -> Result<TokenResponse, AuthError> {
        Err(AuthError::Unsupported("email codes"))
    }

    /// Verifies an email-change link's token hash in the app: `None` for the first of a
    /// secure change's two links (a message, no session), the session for the last.
    async fn verify_email_change_link(
        &self,
        _token_hash: &OneTimeCode,
    ) -> Result<Option<TokenResponse>, AuthError> {
        Err(AuthError::Unsupported("changing the email address"))
    }

    /// Opens a mailed `/verify` link of this server as a browser does — one `GET`, its
    /// redirect not followed — and returns where it redirects (the app's callback, with a
    /// code or an error). Only a link to this server's own `/verify` is opened.
    async fn follow_email_link(&self, _link: &str) -> Result<String, AuthError> {
        Err(AuthError::Unsupported("email links"))
    }

    async fn verify_token_hash(
        &self,
        _token_hash: &OneTimeCode,
        _kind: &str,
    ) -> Result<TokenResponse, AuthError> {
        Err(AuthError::Unsupported("email links"))
    }

    fn authorize_url(
        &self,
        _provider: &str,
        _redirect_to: &str,
        _code_challenge: &str,
        _scopes: Option<&str>,
    ) -> Result<String, AuthError> {
        Err(AuthError::Unsupported("OAuth sign-in"))
    }

    async fn exchange_code(
        &self,
        _auth_code: &str,
        _verifier: &CodeVerifier,
    ) -> Result<TokenResponse, AuthError> {
        Err(AuthError::Unsupported("OAuth sign-in"))
    }

    /// Changes the user. A new email address is confirmed by mailed links; with a code
    /// challenge and a redirect they come back to the app as a PKCE flow (else GoTrue's
    /// links sign the browser in at the site URL).
    async fn update_user(
        &self,
        _access_token: &AccessToken,
        _update: &UserUpdate,
        _code_challenge: Option<&str>,
        _redirect_to: Option<&str>,
    ) -> Result<Value, AuthError> {
        Err(AuthError::Unsupported("changing the account"))
    }

    async fn mfa_enroll(
        &self,
        _access_token: &AccessToken,
        _friendly_name: Option<&str>,
    ) -> Result<MfaEnrollment, AuthError> {
        Err(AuthError::Unsupported("two-factor sign-in"))
    }

    async fn mfa_challenge(
        &self,
        _access_token: &AccessToken,
        _factor_id: &str,
    ) -> Result<String, AuthError> {
        Err(AuthError::Unsupported("two-factor sign-in"))
    }

    async fn mfa_verify(
        &self,
        _access_token: &AccessToken,
        _factor_id: &str,
        _challenge_id: &str,
        _code: &OneTimeCode,
    ) -> Result<TokenResponse, AuthError> {
        Err(AuthError::Unsupported("two-factor sign-in"))
    }

    async fn mfa_unenroll(
        &self,
        _access_token: &AccessToken,
        _factor_id: &str,
    ) -> Result<(), AuthError> {
        Err(AuthError::Unsupported("two-factor sign-in"))
    }

    async fn list_sessions(
        &self,
        _access_token: &AccessToken,
    ) -> Result<Vec<SessionRow>, AuthError> {
        Err(AuthError::Unsupported("Your devices"))
    }

    async fn revoke_session(
        &self,
        _access_token: &AccessToken,
        _session_id: &str,
    ) -> Result<bool, AuthError> {
        Err(AuthError::Unsupported("Your devices"))
    }
}

/// The backend `cfg` names, with its URL, key, time-out and `User-Agent`.
pub fn connect(cfg: &AuthConfig) -> Result<Arc<dyn AuthBackend>, AuthError> {
    Ok(match cfg.backend {
        BackendKind::GoTrue => {
            let mut api = GoTrueApi::with_user_agent(
                &cfg.url,
                &cfg.anon_key,
                cfg.http_timeout,
                &cfg.user_agent,
            )?;
            if let Some(rest) = &cfg.rest_url {
                api.set_rest_url(rest)?;
            }
            Arc::new(api)
        }
        BackendKind::SuperTokens => Arc::new(SuperTokensApi::new(
            &cfg.url,
            cfg.http_timeout,
            &cfg.user_agent,
        )?),
    })
}
