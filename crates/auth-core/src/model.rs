//! What the engine tells the outside world: the session view, events and their payload.
//! These are the only engine types that serialize for a UI; none carries a token.

use serde::Serialize;
use serde_json::Value;

use crate::backend::User;

/// The user as a UI sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub is_anonymous: bool,
    pub app_metadata: Value,
    pub user_metadata: Value,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            is_anonymous: u.is_anonymous,
            app_metadata: u.app_metadata.clone(),
            user_metadata: u.user_metadata.clone(),
        }
    }
}

/// A session as a UI sees it: who, which session, until when. No refresh token, no access
/// token.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub user: UserView,
    pub session_id: String,
    /// When the access token expires, in Unix seconds (by this device's clock).
    pub expires_at: i64,
    pub aal: String,
    /// How far the server's clock is ahead of this device's, in seconds (negative: behind).
    pub clock_skew_secs: i64,
    /// How this session was signed in, first method first (`password`, `otp`, `oauth`,
    /// `magiclink`, `anonymous`, then `totp` after a second factor), when the server says.
    pub sign_in_methods: Vec<String>,
    /// When it was signed in (Unix seconds, the server's clock), when the server says.
    pub started_at: Option<i64>,
}

/// A link would sign in another user than the signed-in one: the UI asks the user first
/// (naming both accounts), then calls `resolve_account_switch` with `id`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountSwitch {
    pub id: String,
    /// Who is signed in now.
    pub current: UserView,
    /// Whom the link would sign in.
    pub incoming: UserView,
    /// Unix seconds; after that the link's session is revoked.
    pub expires_at: i64,
}

/// What a deep link did.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum LinkOutcome {
    /// The link's sign-in is the session now.
    SignedIn { session: SessionView },
    /// The sign-out landing (`…/signed-out`): the server was asked, and the session is
    /// still alive (`signed_in`) or has ended here too.
    Checked { signed_in: bool },
    /// Nothing changed yet: the link is for another user, and the user must agree.
    ConfirmSwitch { switch: AccountSwitch },
    /// A sign-up confirmation that came back after the server's five minutes: the address
    /// is confirmed, but the link signs nobody in — the person signs in with their
    /// password.
    EmailConfirmed { email: String },
    /// The first of a secure email change's two links (the current or the new address):
    /// the other address's link is still to be opened.
    EmailChangeWaiting { email: String },
    /// An email change is complete: the account's address is `email` now.
    EmailChanged { email: String },
}

/// One of the user's sessions, as "Your devices" lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSession {
    pub id: String,
    /// RFC 3339 (UTC).
    pub created_at: String,
    /// The last refresh, else the last change: when the device was last seen (RFC 3339).
    pub last_active_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub aal: Option<String>,
    /// This device's own session.
    pub is_current: bool,
}

/// What revoking a session from "Your devices" did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "device")]
pub enum RevokeOutcome {
    /// It was this device's session: a local sign-out.
    ThisDevice {
        #[serde(flatten)]
        sign_out: crate::SignOutOutcome,
    },
    /// Another device's session: deleted on the server; that device finds out at its next
    /// refresh or validation.
    OtherDevice,
}

/// The events of supabase-js, plus `AUTH_ERROR` and `CONNECTIVITY`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthEvent {
    InitialSession,
    SignedIn,
    TokenRefreshed,
    UserUpdated,
    SignedOut,
    PasswordRecovery,
    MfaChallengeVerified,
    /// A callback or a request failed; state unchanged.
    AuthError,
    /// Refresh is retrying, or recovered.
    Connectivity,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignOutReason {
    /// This device asked.
    User,
    /// The server says the session is gone (signed out elsewhere, admin, password change).
    Revoked,
    /// The session's time-box or inactivity limit passed.
    Expired,
    /// Another definitive refresh error.
    RefreshFailed,
    /// No activity for the idle time-out ([`crate::AuthClient::set_idle_timeout`]).
    Idle,
}

/// Whether refresh currently reaches the server.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Connectivity {
    Online,
    /// Refresh failed for a transient reason and will be retried.
    Retrying {
        attempt: u32,
        /// Unix milliseconds of the next attempt.
        next_retry_at: i64,
        /// The last error's code.
        code: String,
    },
}

/// An error as a UI sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorView {
    pub code: String,
    pub message: String,
}

impl From<&crate::AuthError> for ErrorView {
    fn from(e: &crate::AuthError) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}

/// The payload of every auth-state change (Tauri event `auth:state-change`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthStateChange {
    pub event: AuthEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<SignOutReason>,
    /// Unix milliseconds.
    pub at: i64,
    pub session: Option<SessionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<Connectivity>,
}

/// What a sign-out did.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SignOutOutcome {
    pub scope: crate::backend::SignOutScope,
    /// The local session is gone (always true for `local` and `global`; false for `others`).
    pub local_done: bool,
    /// The server confirmed the revocation (or said the session was already gone).
    pub server_confirmed: bool,
    /// The revocation waits in the outbox and will be retried.
    pub queued: bool,
    /// The app backend's logout hook failed (it is retried with the revocation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_error: Option<ErrorView>,
    /// What the server could not do, and will not do however often it is asked: a `global`
    /// or `others` sign-out whose own session had already ended there revokes nothing
    /// (`session_already_ended`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_not_done: Option<ErrorView>,
}

impl SignOutOutcome {
    /// Why a `global` or `others` sign-out could not reach the user's other sessions.
    pub fn already_ended() -> ErrorView {
        ErrorView {
            code: "session_already_ended".into(),
            message: "this device's session had already ended at the server, so the server \
                      could not sign out your other devices: sign in again, then sign out \
                      everywhere"
                .into(),
        }
    }
}

/// What a sign-up did.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum SignUpOutcome {
    SignedIn { session: SessionView },
    ConfirmationSent { email: String },
}

/// Where a change of email address stands after a confirmation code.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum EmailChangeOutcome {
    /// One address confirmed; the project wants the other one too (GoTrue's secure email
    /// change, on by default).
    OtherAddressPending,
    /// The address is changed.
    Changed { user: Box<User> },
}

/// A pending revocation as shown to a user (no tokens).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingRevocation {
    pub id: String,
    pub scope: crate::backend::SignOutScope,
    pub session_id: String,
    pub email: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// The app backend's logout hook was given up on (its last error code): this
    /// revocation goes to the auth server without the backend having been told.
    pub hook_not_told: Option<String>,
}
