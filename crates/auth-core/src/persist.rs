//! What the engine keeps in the secret store, as versioned JSON blobs, each under a key
//! that names the profile and the server (`<profile>@<issuer>.<what>`, see
//! `AuthConfig::key`): `session` (the session), `outbox` (revocations still owed to that
//! server) and `flows` (PKCE verifiers and sign-out states of flows this engine
//! started). Nothing here is ever written anywhere but the [`Store`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::SignOutScope;
use crate::secret::{AccessToken, CodeVerifier, RefreshToken, serialize_for_store};
use crate::store::{Store, StoreError};

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    data: T,
}

/// A stored session. Times are this device's clock. Its `Debug` redacts the tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    #[serde(serialize_with = "serialize_for_store")]
    pub access_token: AccessToken,
    #[serde(serialize_with = "serialize_for_store")]
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub server_expires_at: Option<i64>,
    /// Unix seconds at which the token response was received.
    pub received_at: i64,
    pub user: Value,
}

/// Where the app backend's logout hook stands for one revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HookStatus {
    /// Nothing to tell: no hook configured, an `others` sign-out (this session stays), or a
    /// session nobody kept (the sign-in or sign-out that won told the backend).
    #[default]
    NotNeeded,
    /// The hook is still to confirm: it is called before the auth server.
    Pending,
    /// The hook confirmed (or said the token is done for it).
    Told,
    /// The hook was given up on (missing, or failing too often): its last error code. The
    /// revocation goes to the auth server without it.
    GivenUp { code: String },
}

impl HookStatus {
    pub fn is_pending(&self) -> bool {
        *self == Self::Pending
    }

    /// The error code of a hook given up on.
    pub fn given_up(&self) -> Option<&str> {
        match self {
            Self::GivenUp { code } => Some(code),
            _ => None,
        }
    }
}

/// A revocation the server has not confirmed yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "StoredOutboxEntry")]
pub struct OutboxEntry {
    pub id: String,
    pub scope: SignOutScope,
    /// Empty for `others` (that one uses the live session's token).
    #[serde(serialize_with = "serialize_for_store")]
    pub access_token: AccessToken,
    #[serde(serialize_with = "serialize_for_store")]
    pub refresh_token: RefreshToken,
    /// Unix seconds (device clock) when `access_token` expires.
    pub access_expires_at: i64,
    /// The session being revoked (for display).
    pub session_id: String,
    pub user_email: String,
    pub created_at: i64,
    pub attempts: u32,
    /// Unix milliseconds of the next attempt.
    pub next_attempt_at: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The app backend's logout hook, for this revocation.
    pub hook: HookStatus,
}

/// An outbox entry as stored: today's form, or the one before `hook` (two fields,
/// `hook_pending` and `hook_not_told`), read alike.
#[derive(Deserialize)]
struct StoredOutboxEntry {
    id: String,
    scope: SignOutScope,
    access_token: AccessToken,
    refresh_token: RefreshToken,
    access_expires_at: i64,
    session_id: String,
    user_email: String,
    created_at: i64,
    attempts: u32,
    next_attempt_at: i64,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    hook: Option<HookStatus>,
    #[serde(default)]
    hook_pending: bool,
    #[serde(default)]
    hook_not_told: Option<String>,
}

impl From<StoredOutboxEntry> for OutboxEntry {
    fn from(e: StoredOutboxEntry) -> Self {
        let hook = e.hook.unwrap_or(match (e.hook_pending, e.hook_not_told) {
            (true, _) => HookStatus::Pending,
            (false, Some(code)) => HookStatus::GivenUp { code },
            (false, None) => HookStatus::NotNeeded,
        });
        Self {
            id: e.id,
            scope: e.scope,
            access_token: e.access_token,
            refresh_token: e.refresh_token,
            access_expires_at: e.access_expires_at,
            session_id: e.session_id,
            user_email: e.user_email,
            created_at: e.created_at,
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at,
            last_error: e.last_error,
            hook,
        }
    }
}

/// The kinds of flow that come back through a callback.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    OAuth,
    MagicLink,
    SignUp,
    Recovery,
    /// A change of email address: its mailed links come back to the app (PKCE), the
    /// flow's `email` is the new address.
    EmailChange,
}

/// A flow this engine started and expects back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    pub id: String,
    pub kind: FlowKind,
    /// PKCE verifier (empty for sign-out landings).
    #[serde(serialize_with = "serialize_for_store")]
    pub verifier: CodeVerifier,
    /// Unix seconds.
    pub created_at: i64,
    /// The address a mailed link of this flow was sent to: the link must sign it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Reads a versioned blob. A blob that cannot be read is reported as corrupt (the caller
/// removes it).
pub async fn load<T: DeserializeOwned>(store: &Store, key: &str) -> Result<Option<T>, StoreError> {
    let Some(bytes) = store.load(key).await? else {
        return Ok(None);
    };
    let env: Envelope<T> = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("{key}: {}", e.classify_name())))?;
    if env.v != VERSION {
        return Err(StoreError::Corrupt(format!(
            "{key}: unknown version {}",
            env.v
        )));
    }
    Ok(Some(env.data))
}

pub async fn save<T: Serialize>(store: &Store, key: &str, data: &T) -> Result<(), StoreError> {
    save_holding(store, key, data, None).await
}

/// [`save`], keeping `hold` (the cross-process commit lock) until the write has really
/// returned (see [`Store::save_holding`]).
pub async fn save_holding<T: Serialize>(
    store: &Store,
    key: &str,
    data: &T,
    hold: Option<crate::store::Hold>,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&Envelope { v: VERSION, data })
        .map_err(|e| StoreError::Failed(format!("cannot encode {key}: {}", e.classify_name())))?;
    store.save_holding(key, bytes, hold).await
}

/// A stored list read item by item: the items that parse, and how many did not. `None`
/// when there is nothing stored or not even the envelope can be read.
pub async fn load_readable_items<T: DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<(Vec<T>, usize)>, StoreError> {
    let Some(bytes) = store.load(key).await? else {
        return Ok(None);
    };
    let Ok(env) = serde_json::from_slice::<Envelope<Vec<Value>>>(&bytes) else {
        return Ok(None);
    };
    if env.v != VERSION {
        return Ok(None);
    }
    let total = env.data.len();
    let items: Vec<T> = env
        .data
        .into_iter()
        .filter_map(|item| serde_json::from_value(item).ok())
        .collect();
    let dropped = total - items.len();
    Ok(Some((items, dropped)))
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    /// Only the category: serde's messages can quote the data, which may be secret.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o error",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_redact_their_secrets_and_keep_their_json() {
        let json = r#"{"access_token":"eyJ.secret.jwt","refresh_token":"r3fresh-t0ken","expires_in":3600,"server_expires_at":null,"received_at":1,"user":{"id":"u"}}"#;
        let stored: StoredSession = serde_json::from_str(json).unwrap();
        let debug = format!("{stored:?}");
        assert!(
            !debug.contains("r3fresh") && !debug.contains("eyJ"),
            "{debug}"
        );
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::from_str::<Value>(json).unwrap(),
            "the stored format is unchanged"
        );
        let flow = PendingFlow {
            id: "f".into(),
            kind: FlowKind::OAuth,
            verifier: CodeVerifier::new("v3rifier"),
            created_at: 0,
            email: None,
        };
        assert!(!format!("{flow:?}").contains("v3rifier"));
        assert!(serde_json::to_string(&flow).unwrap().contains("v3rifier"));
        let entry: OutboxEntry = serde_json::from_str(
            r#"{"id":"o","scope":"local","access_token":"eyJ.secret.jwt","refresh_token":"r3fresh-t0ken","access_expires_at":0,"session_id":"s","user_email":"a@b","created_at":0,"attempts":0,"next_attempt_at":0}"#,
        )
        .unwrap();
        assert_eq!(entry.hook, HookStatus::NotNeeded);
        let older: OutboxEntry = serde_json::from_str(
            r#"{"id":"o","scope":"global","access_token":"a","refresh_token":"r","access_expires_at":0,"session_id":"s","user_email":"a@b","created_at":0,"attempts":0,"next_attempt_at":0,"hook_pending":false,"hook_not_told":"UNREACHABLE"}"#,
        )
        .unwrap();
        assert_eq!(
            older.hook,
            HookStatus::GivenUp {
                code: "UNREACHABLE".into()
            },
            "an entry stored before the hook's status was one field reads the same"
        );
        let json = serde_json::to_value(&older).unwrap();
        assert_eq!(
            json["hook"],
            serde_json::json!({"status": "given_up", "code": "UNREACHABLE"})
        );
        let debug = format!("{entry:?}");
        assert!(
            !debug.contains("r3fresh") && !debug.contains("eyJ"),
            "{debug}"
        );
    }
}
