//! The auth server behind the engine. Everything backend-specific sits behind
//! [`AuthBackend`]: [`GoTrueApi`](crate::GoTrueApi) (Supabase Auth, the default) and
//! [`SuperTokensApi`](crate::supertokens::SuperTokensApi). A third backend is one new
//! module implementing this trait; the engine, its events and the app do not change.
//!
//! Operations a backend does not have answer [`AuthError::Unsupported`].

use serde_json::Value;

use crate::api::{
    MfaEnrollment, SessionRow, SignOutScope, SignUpResponse, TokenResponse, UserUpdate,
};
use crate::error::AuthError;
use crate::secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};

/// Which backend a configuration names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendKind {
    #[default]
    GoTrue,
    SuperTokens,
}

impl std::str::FromStr for BackendKind {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "gotrue" | "supabase" => Ok(Self::GoTrue),
            "supertokens" => Ok(Self::SuperTokens),
            other => Err(AuthError::Config(format!(
                "unknown auth backend {other:?} (gotrue or supertokens)"
            ))),
        }
    }
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

    async fn verify_otp(
        &self,
        _email: &str,
        _code: &OneTimeCode,
        _kind: &str,
    ) -> Result<TokenResponse, AuthError> {
        Err(AuthError::Unsupported("email codes"))
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

    async fn update_user(
        &self,
        _access_token: &AccessToken,
        _update: &UserUpdate,
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
