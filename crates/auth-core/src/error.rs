//! The engine's error type: a stable `code` for the UI, a human message, and a
//! classification that decides whether a session survives the failure.

use std::time::Duration;

/// The server's error codes the engine decides on (GoTrue's `error_code`, SuperTokens'
/// answers): a closed set, matched as values. Every other code is passed on as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    RefreshTokenNotFound,
    RefreshTokenAlreadyUsed,
    SessionNotFound,
    SessionExpired,
    UserNotFound,
    UserBanned,
    /// SuperTokens: the session is gone (`401 unauthorised`).
    Unauthorised,
    /// SuperTokens: an old refresh token came back and the backend revoked the session.
    TokenTheftDetected,
    /// The access token was refused (expired, or signed with a rotated secret).
    BadJwt,
    /// SuperTokens: the access token expired; refresh and retry.
    TryRefreshToken,
    ValidationFailed,
    /// GoTrue gave up waiting for a lock (retry).
    Conflict,
    FlowStateExpired,
    FlowStateNotFound,
    BadCodeVerifier,
    /// PostgREST: no such function (the project lacks a migration).
    NoSuchFunction,
}

impl ApiCode {
    const ALL: [(ApiCode, &'static str); 16] = [
        (Self::RefreshTokenNotFound, "refresh_token_not_found"),
        (Self::RefreshTokenAlreadyUsed, "refresh_token_already_used"),
        (Self::SessionNotFound, "session_not_found"),
        (Self::SessionExpired, "session_expired"),
        (Self::UserNotFound, "user_not_found"),
        (Self::UserBanned, "user_banned"),
        (Self::Unauthorised, "unauthorised"),
        (Self::TokenTheftDetected, "token_theft_detected"),
        (Self::BadJwt, "bad_jwt"),
        (Self::TryRefreshToken, "try_refresh_token"),
        (Self::ValidationFailed, "validation_failed"),
        (Self::Conflict, "conflict"),
        (Self::FlowStateExpired, "flow_state_expired"),
        (Self::FlowStateNotFound, "flow_state_not_found"),
        (Self::BadCodeVerifier, "bad_code_verifier"),
        (Self::NoSuchFunction, "PGRST202"),
    ];

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, c)| *c == code).map(|(v, _)| *v)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("", |(_, c)| c)
    }

    /// The server says the session (or its refresh token, or its user) is gone for good.
    pub fn ends_session(self) -> bool {
        matches!(
            self,
            Self::RefreshTokenNotFound
                | Self::RefreshTokenAlreadyUsed
                | Self::SessionNotFound
                | Self::SessionExpired
                | Self::UserNotFound
                | Self::UserBanned
                | Self::Unauthorised
                | Self::TokenTheftDetected
        )
    }
}

/// Codes of server answers that mean the session is gone for good.
pub const DEFINITIVE_SESSION_CODES: [&str; 8] = [
    "refresh_token_not_found",
    "refresh_token_already_used",
    "session_not_found",
    "session_expired",
    "user_not_found",
    "user_banned",
    "unauthorised",
    "token_theft_detected",
];

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The auth server answered with an error (GoTrue's `error_code` in `code`).
    #[error("{message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: connection refused or reset, DNS, TLS.
    #[error("the auth server cannot be reached: {0}")]
    Network(String),
    /// The server did not answer in time.
    #[error("the auth server did not answer within {0:?}")]
    Timeout(Duration),
    /// The server answered something that is not what the protocol says.
    #[error("the auth server sent an unexpected answer: {0}")]
    InvalidResponse(String),
    /// The secure storage failed (missing, locked, refused, too slow, corrupt data).
    #[error("secure storage: {0}")]
    Storage(#[from] crate::store::StoreError),
    /// The operation needs a session and there is none.
    #[error("not signed in")]
    NotSignedIn,
    /// A deep link or redirect was refused.
    #[error("rejected callback: {0}")]
    InvalidCallback(String),
    /// A mailed link of this app's came back after the server's flow had expired (GoTrue
    /// keeps a PKCE flow five minutes from the request that mailed the link): the link was
    /// used, but it signs nobody in. A new one must be sent.
    #[error("{}", expired_message(*.0))]
    LinkExpired(crate::persist::FlowKind),
    /// Bad input from the caller (e.g. an empty email).
    #[error("{0}")]
    InvalidInput(String),
    /// A misconfiguration (bad URL).
    #[error("configuration: {0}")]
    Config(String),
    /// A server a person is connecting to failed a check (`auth_core::server::probe`):
    /// `invalid_url`, `insecure_url`, `missing_api_key`, `invalid_api_key`,
    /// `secret_api_key`, `server_unreachable`, `server_timeout`, `tls_error`, `not_gotrue`.
    #[error("{message}")]
    ServerCheck { code: &'static str, message: String },
    /// The configured backend has no such operation (e.g. magic links on SuperTokens).
    #[error("{0} is not available with this auth backend")]
    Unsupported(&'static str),
    /// The app backend's logout hook (`TESSERA_LOGOUT_HOOK_URL`) refused or failed; `code`
    /// is the backend's own (`UNAUTHORIZED`, `LOGOUT_ERROR`, `SUPABASE_ERROR`, …), or
    /// `UNREACHABLE` when it did not answer.
    #[error("{message} ({code})")]
    LogoutHook {
        status: Option<u16>,
        code: String,
        message: String,
    },
}

impl AuthError {
    /// A stable, machine-readable code for the UI.
    pub fn code(&self) -> &str {
        match self {
            Self::Api { code, .. } => code,
            Self::Network(_) => "network_error",
            Self::Timeout(_) => "timeout",
            Self::InvalidResponse(_) => "invalid_response",
            Self::Storage(e) => e.code(),
            Self::NotSignedIn => "not_signed_in",
            Self::InvalidCallback(_) => "invalid_callback",
            Self::LinkExpired(crate::persist::FlowKind::Recovery) => "recovery_link_expired",
            Self::LinkExpired(_) => "sign_in_link_expired",
            Self::InvalidInput(_) => "invalid_input",
            Self::Config(_) => "config_error",
            Self::ServerCheck { code, .. } => code,
            Self::Unsupported(_) => "unsupported_by_backend",
            Self::LogoutHook { code, .. } => match code.as_str() {
                "UNAUTHORIZED" => "logout_hook_unauthorized",
                "LOGOUT_ERROR" => "logout_hook_logout_error",
                "SUPABASE_ERROR" => "logout_hook_supabase_error",
                "UNREACHABLE" => "logout_hook_unreachable",
                _ => "logout_hook_failed",
            },
        }
    }

    /// The server's code, when it is one the engine decides on.
    pub fn api_code(&self) -> Option<ApiCode> {
        match self {
            Self::Api { code, .. } => ApiCode::parse(code),
            _ => None,
        }
    }

    /// Worth retrying later: no answer, a server error, rate limiting, lock contention,
    /// or an answer we could not read. Never ends a session.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network(_) | Self::Timeout(_) | Self::InvalidResponse(_) => true,
            // Retried until it succeeds or says the token is no longer valid.
            Self::LogoutHook { code, .. } => code != "UNAUTHORIZED",
            Self::Api { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || *status == 408
                    || ApiCode::parse(code) == Some(ApiCode::Conflict)
            }
            _ => false,
        }
    }

    /// The server says this session (or its refresh token, or its user) is gone.
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::Api { status, .. } if *status < 500)
            && self.api_code().is_some_and(ApiCode::ends_session)
    }

    /// For a refresh: the server will never take this refresh token — the session is
    /// gone, or GoTrue refuses the token's very form (`400 validation_failed`: "Refresh
    /// token is not valid", or a v2 token "Not Issued By This Server"). Retrying that is a
    /// loop that can only end in the same answer.
    pub fn refuses_refresh_token(&self) -> bool {
        self.ends_session()
            || (matches!(self, Self::Api { status: 400, .. })
                && self.api_code() == Some(ApiCode::ValidationFailed))
    }

    /// For a sign-out: the server no longer knows this session, so the revocation is done.
    /// Only the server's own word counts — a code that ends the session
    /// ([`ApiCode::ends_session`]) — never the status alone: a gateway or a proxy in the
    /// way answers 401, 403 or 404 with bodies of its own (`{"error":"Forbidden"}`,
    /// `{"message":"Invalid API key"}`), and the session may well be alive behind it.
    pub fn session_already_gone(&self) -> bool {
        self.ends_session()
    }
}

fn expired_message(kind: crate::persist::FlowKind) -> &'static str {
    match kind {
        crate::persist::FlowKind::Recovery => {
            "this password-reset link has expired: links work for five minutes after they are \
             sent, so send a new one"
        }
        _ => "this sign-in link has expired: send a new one and open it within five minutes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> AuthError {
        AuthError::Api {
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn classification() {
        assert!(api(503, "unexpected_failure").is_retryable());
        assert!(api(429, "over_request_rate_limit").is_retryable());
        assert!(api(409, "conflict").is_retryable());
        assert!(AuthError::Network("x".into()).is_retryable());
        assert!(AuthError::InvalidResponse("x".into()).is_retryable());
        assert!(!api(400, "refresh_token_not_found").is_retryable());
        assert!(api(400, "refresh_token_not_found").ends_session());
        assert!(api(403, "session_not_found").ends_session());
        assert!(!api(400, "validation_failed").ends_session());
        assert!(api(400, "validation_failed").refuses_refresh_token());
        assert!(api(400, "refresh_token_already_used").refuses_refresh_token());
        assert!(!api(422, "validation_failed").refuses_refresh_token());
        assert!(!api(503, "unexpected_failure").refuses_refresh_token());
        assert!(!AuthError::Network("x".into()).ends_session());
        assert!(!api(403, "bad_jwt").session_already_gone());
        assert!(!api(403, "bad_jwt").ends_session());
        assert!(api(403, "session_not_found").session_already_gone());
        assert!(!api(500, "unexpected_failure").session_already_gone());
        assert!(
            !api(401, "unknown").session_already_gone(),
            "a gateway, not GoTrue"
        );
        // A proxy's own refusal, whatever its body names, is not the server's word.
        for (status, code) in [
            (403, "Forbidden"),
            (401, "unauthorized"),
            (404, "not_found"),
        ] {
            assert!(!api(status, code).session_already_gone(), "{status} {code}");
        }
        assert_eq!(ApiCode::parse("bad_jwt"), Some(ApiCode::BadJwt));
        assert_eq!(ApiCode::BadJwt.as_str(), "bad_jwt");
        for code in DEFINITIVE_SESSION_CODES {
            assert!(
                ApiCode::parse(code).is_some_and(ApiCode::ends_session),
                "{code}"
            );
        }
    }
}
