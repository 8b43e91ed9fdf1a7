//! SQLite storage: the schema and typed rows.
//!
//! One connection behind a mutex. Handlers take the lock for short, synchronous sections
//! (never across an `.await`), so every multi-step change — a refresh-token rotation, a
//! logout — is atomic and concurrent requests are serialised the way GoTrue's row locks
//! serialise them. Timestamps are stored as microseconds since the Unix epoch.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Row};
use serde_json::Value;

/// 2: mails keep their rendered HTML (`html`).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    aud TEXT NOT NULL,
    role TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    encrypted_password TEXT,
    email_confirmed_at INTEGER,
    phone_confirmed_at INTEGER,
    confirmation_sent_at INTEGER,
    recovery_sent_at INTEGER,
    email_change TEXT,
    email_change_sent_at INTEGER,
    reauthentication_sent_at INTEGER,
    last_sign_in_at INTEGER,
    invited_at INTEGER,
    app_metadata TEXT NOT NULL,
    user_metadata TEXT NOT NULL,
    is_anonymous INTEGER NOT NULL,
    banned_until INTEGER,
    deleted_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users(email) WHERE email IS NOT NULL;
CREATE TABLE IF NOT EXISTS identities (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    identity_data TEXT NOT NULL,
    email TEXT,
    last_sign_in_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE(provider_id, provider)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    aal TEXT NOT NULL,
    factor_id TEXT,
    amr TEXT NOT NULL,
    user_agent TEXT,
    ip TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    refreshed_at INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    parent TEXT,
    revoked INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens(session_id);
CREATE TABLE IF NOT EXISTS one_time_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_type TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    relates_to TEXT NOT NULL,
    flow_state_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS one_time_tokens_hash ON one_time_tokens(token_hash);
CREATE TABLE IF NOT EXISTS flow_states (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    auth_code TEXT NOT NULL UNIQUE,
    code_challenge TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    authentication_method TEXT NOT NULL,
    redirect_to TEXT,
    provider_access_token TEXT,
    provider_refresh_token TEXT,
    created_at INTEGER NOT NULL,
    auth_code_issued_at INTEGER
);
CREATE TABLE IF NOT EXISTS mfa_factors (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    friendly_name TEXT,
    factor_type TEXT NOT NULL,
    status TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mfa_challenges (
    id TEXT PRIMARY KEY,
    factor_id TEXT NOT NULL REFERENCES mfa_factors(id) ON DELETE CASCADE,
    ip_address TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    verified_at INTEGER
);
CREATE TABLE IF NOT EXISTS oauth_grants (
    code TEXT PRIMARY KEY,
    flow_state_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#;

/// The captured mailbox: a table in the file for a test server, in memory when embedded.
const MAILS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS mails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    mail_type TEXT NOT NULL,
    html TEXT NOT NULL,
    otp TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    action_link TEXT NOT NULL,
    redirect_to TEXT,
    created_at INTEGER NOT NULL
);
"#;

/// The database: one SQLite connection behind a mutex.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (or creates) the database file, or an in-memory database for `None`.
    /// With `secret` (the embedded mode's JWT secret) the rules of `private.rs` apply:
    /// tokens stored as digests, TOTP secrets sealed, the mailbox in memory, files `0600`.
    pub fn open(path: Option<&Path>, secret: Option<&str>) -> rusqlite::Result<Self> {
        let private = secret.is_some();
        let io = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
        if let (Some(p), true) = (path, private) {
            private::prepare_file(p).map_err(io)?;
        }
        let conn = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        private::register(&conn, secret.map(private::Sealer::new))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "database schema version {version} is newer than this emulator's ({SCHEMA_VERSION})"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        if version < 2 {
            // The captured mail of a version-1 file has no HTML; it is only a capture.
            conn.execute_batch("DROP TABLE IF EXISTS main.mails")?;
        }
        if private {
            private::harden(&conn, MAILS_SCHEMA)?;
        } else {
            conn.execute_batch(MAILS_SCHEMA)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        if let (Some(p), true) = (path, private) {
            private::restrict(p).map_err(io)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Locks the connection. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (every change is a
        // transaction), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn json_col(row: &Row<'_>, col: &str) -> rusqlite::Result<Value> {
    let text: String = row.get(col)?;
    Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::Object(Default::default())))
}

mod mail;
mod mfa;
mod one_time;
mod private;
mod sessions;
mod users;

pub use mail::MailRow;
pub use mfa::{ChallengeRow, FactorRow};
pub use one_time::{FlowStateRow, OAuthGrantRow, OneTimeTokenRow};
pub use sessions::{RefreshTokenRow, SessionRow};
pub use users::{IdentityRow, UserRow};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_session_deletes_its_refresh_tokens() -> rusqlite::Result<()> {
        let db = Db::open(None, None)?;
        let conn = db.lock();
        let user = UserRow::new("authenticated", "authenticated", 1);
        user.save(&conn)?;
        let session = SessionRow {
            id: "s1".into(),
            user_id: user.id.clone(),
            aal: "aal1".into(),
            factor_id: None,
            amr: vec![],
            user_agent: None,
            ip: None,
            created_at: 1,
            updated_at: 1,
            refreshed_at: None,
        };
        session.save(&conn)?;
        let token = RefreshTokenRow::create(&conn, &user.id, "s1", None, 1)?;
        assert!(RefreshTokenRow::find(&conn, &token.token)?.is_some());
        SessionRow::delete(&conn, "s1")?;
        assert!(RefreshTokenRow::find(&conn, &token.token)?.is_none());
        Ok(())
    }

    #[test]
    fn reopening_a_file_keeps_data() -> rusqlite::Result<()> {
        let dir = std::env::temp_dir().join(format!("gotrue-emu-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|_| rusqlite::Error::InvalidQuery)?;
        let path = dir.join("db.sqlite");
        let id = {
            let db = Db::open(Some(&path), None)?;
            let mut user = UserRow::new("authenticated", "authenticated", 1);
            user.email = Some("a@example.com".into());
            user.save(&db.lock())?;
            user.id
        };
        let db = Db::open(Some(&path), None)?;
        let found = UserRow::find_by_email(&db.lock(), "A@example.com")?;
        assert_eq!(found.map(|u| u.id), Some(id));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
