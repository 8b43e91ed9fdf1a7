//! SQLite storage: the schema and typed rows.
//!
//! One connection behind a mutex. Handlers take the lock for short, synchronous sections
//! (never across an `.await`), so every multi-step change — a refresh-token rotation, a
//! logout — is atomic and concurrent requests are serialised the way GoTrue's row locks
//! serialise them. Timestamps are stored as microseconds since the Unix epoch.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const SCHEMA_VERSION: i64 = 1;

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
CREATE TABLE IF NOT EXISTS mails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    mail_type TEXT NOT NULL,
    otp TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    action_link TEXT NOT NULL,
    redirect_to TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_grants (
    code TEXT PRIMARY KEY,
    flow_state_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    email TEXT NOT NULL,
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
    pub fn open(path: Option<&Path>) -> rusqlite::Result<Self> {
        let conn = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
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
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
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

fn json_col(row: &Row<'_>, col: &str) -> rusqlite::Result<Value> {
    let text: String = row.get(col)?;
    Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::Object(Default::default())))
}

// ---------------------------------------------------------------------------------------
// users

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub aud: String,
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub encrypted_password: Option<String>,
    pub email_confirmed_at: Option<i64>,
    pub phone_confirmed_at: Option<i64>,
    pub confirmation_sent_at: Option<i64>,
    pub recovery_sent_at: Option<i64>,
    pub email_change: Option<String>,
    pub email_change_sent_at: Option<i64>,
    pub reauthentication_sent_at: Option<i64>,
    pub last_sign_in_at: Option<i64>,
    pub invited_at: Option<i64>,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub is_anonymous: bool,
    pub banned_until: Option<i64>,
    pub deleted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    /// A fresh user with GoTrue's defaults and no credentials.
    pub fn new(aud: &str, role: &str, now: i64) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            aud: aud.to_owned(),
            role: role.to_owned(),
            email: None,
            phone: None,
            encrypted_password: None,
            email_confirmed_at: None,
            phone_confirmed_at: None,
            confirmation_sent_at: None,
            recovery_sent_at: None,
            email_change: None,
            email_change_sent_at: None,
            reauthentication_sent_at: None,
            last_sign_in_at: None,
            invited_at: None,
            app_metadata: Value::Object(Default::default()),
            user_metadata: Value::Object(Default::default()),
            is_anonymous: false,
            banned_until: None,
            deleted_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn is_confirmed(&self) -> bool {
        self.email_confirmed_at.is_some() || self.phone_confirmed_at.is_some()
    }

    pub fn is_banned(&self, now: i64) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            aud: r.get("aud")?,
            role: r.get("role")?,
            email: r.get("email")?,
            phone: r.get("phone")?,
            encrypted_password: r.get("encrypted_password")?,
            email_confirmed_at: r.get("email_confirmed_at")?,
            phone_confirmed_at: r.get("phone_confirmed_at")?,
            confirmation_sent_at: r.get("confirmation_sent_at")?,
            recovery_sent_at: r.get("recovery_sent_at")?,
            email_change: r.get("email_change")?,
            email_change_sent_at: r.get("email_change_sent_at")?,
            reauthentication_sent_at: r.get("reauthentication_sent_at")?,
            last_sign_in_at: r.get("last_sign_in_at")?,
            invited_at: r.get("invited_at")?,
            app_metadata: json_col(r, "app_metadata")?,
            user_metadata: json_col(r, "user_metadata")?,
            is_anonymous: r.get("is_anonymous")?,
            banned_until: r.get("banned_until")?,
            deleted_at: r.get("deleted_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    /// Inserts the row, or replaces every column of an existing row with the same id.
    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO users (id, aud, role, email, phone, encrypted_password,
                email_confirmed_at, phone_confirmed_at, confirmation_sent_at, recovery_sent_at,
                email_change, email_change_sent_at, reauthentication_sent_at, last_sign_in_at,
                invited_at, app_metadata, user_metadata, is_anonymous, banned_until, deleted_at,
                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22)
             ON CONFLICT(id) DO UPDATE SET aud = excluded.aud, role = excluded.role,
                email = excluded.email, phone = excluded.phone,
                encrypted_password = excluded.encrypted_password,
                email_confirmed_at = excluded.email_confirmed_at,
                phone_confirmed_at = excluded.phone_confirmed_at,
                confirmation_sent_at = excluded.confirmation_sent_at,
                recovery_sent_at = excluded.recovery_sent_at,
                email_change = excluded.email_change,
                email_change_sent_at = excluded.email_change_sent_at,
                reauthentication_sent_at = excluded.reauthentication_sent_at,
                last_sign_in_at = excluded.last_sign_in_at, invited_at = excluded.invited_at,
                app_metadata = excluded.app_metadata, user_metadata = excluded.user_metadata,
                is_anonymous = excluded.is_anonymous, banned_until = excluded.banned_until,
                deleted_at = excluded.deleted_at, updated_at = excluded.updated_at",
            params![
                self.id,
                self.aud,
                self.role,
                self.email,
                self.phone,
                self.encrypted_password,
                self.email_confirmed_at,
                self.phone_confirmed_at,
                self.confirmation_sent_at,
                self.recovery_sent_at,
                self.email_change,
                self.email_change_sent_at,
                self.reauthentication_sent_at,
                self.last_sign_in_at,
                self.invited_at,
                self.app_metadata.to_string(),
                self.user_metadata.to_string(),
                self.is_anonymous,
                self.banned_until,
                self.deleted_at,
                self.created_at,
                self.updated_at,
            ],
        )?;
        Ok(())
    }

    /// A live (not soft-deleted) user by id.
    pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM users WHERE id = ?1 AND deleted_at IS NULL",
            [id],
            Self::from_row,
        )
        .optional()
    }

    /// A live user by email (compared lower-case, as stored).
    pub fn find_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM users WHERE email = ?1 AND deleted_at IS NULL",
            [email.to_lowercase()],
            Self::from_row,
        )
        .optional()
    }

    pub fn list(conn: &Connection, limit: i64, offset: i64) -> rusqlite::Result<Vec<Self>> {
        let mut stmt = conn.prepare(
            "SELECT * FROM users WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT ?1 OFFSET ?2",
        )?;
        stmt.query_map(params![limit, offset], Self::from_row)?
            .collect()
    }

    pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT COUNT(*) FROM users WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
    }

    /// Hard delete: sessions, tokens, identities and factors go with the row.
    pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// identities

#[derive(Debug, Clone)]
pub struct IdentityRow {
    pub id: String,
    pub provider_id: String,
    pub user_id: String,
    pub provider: String,
    pub identity_data: Value,
    pub email: Option<String>,
    pub last_sign_in_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl IdentityRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            provider_id: r.get("provider_id")?,
            user_id: r.get("user_id")?,
            provider: r.get("provider")?,
            identity_data: json_col(r, "identity_data")?,
            email: r.get("email")?,
            last_sign_in_at: r.get("last_sign_in_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO identities (id, provider_id, user_id, provider, identity_data, email,
                last_sign_in_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET identity_data = excluded.identity_data,
                email = excluded.email, last_sign_in_at = excluded.last_sign_in_at,
                updated_at = excluded.updated_at",
            params![
                self.id,
                self.provider_id,
                self.user_id,
                self.provider,
                self.identity_data.to_string(),
                self.email,
                self.last_sign_in_at,
                self.created_at,
                self.updated_at,
            ],
        )?;
        Ok(())
    }

    pub fn for_user(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Self>> {
        let mut stmt =
            conn.prepare("SELECT * FROM identities WHERE user_id = ?1 ORDER BY created_at")?;
        stmt.query_map([user_id], Self::from_row)?.collect()
    }

    pub fn find(
        conn: &Connection,
        provider_id: &str,
        provider: &str,
    ) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM identities WHERE provider_id = ?1 AND provider = ?2",
            [provider_id, provider],
            Self::from_row,
        )
        .optional()
    }

    pub fn delete_for_user(conn: &Connection, user_id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM identities WHERE user_id = ?1", [user_id])?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// sessions and refresh tokens

/// One authentication method reference (`amr` claim entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Amr {
    pub method: String,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub aal: String,
    pub factor_id: Option<String>,
    /// Newest first, as in the JWT.
    pub amr: Vec<Amr>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub refreshed_at: Option<i64>,
}

impl SessionRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let amr: String = r.get("amr")?;
        Ok(Self {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            aal: r.get("aal")?,
            factor_id: r.get("factor_id")?,
            amr: serde_json::from_str(&amr).unwrap_or_default(),
            user_agent: r.get("user_agent")?,
            ip: r.get("ip")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            refreshed_at: r.get("refreshed_at")?,
        })
    }

    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        let amr = serde_json::to_string(&self.amr).unwrap_or_else(|_| "[]".into());
        conn.execute(
            "INSERT INTO sessions (id, user_id, aal, factor_id, amr, user_agent, ip, created_at,
                updated_at, refreshed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET aal = excluded.aal, factor_id = excluded.factor_id,
                amr = excluded.amr, user_agent = excluded.user_agent, ip = excluded.ip,
                updated_at = excluded.updated_at, refreshed_at = excluded.refreshed_at",
            params![
                self.id,
                self.user_id,
                self.aal,
                self.factor_id,
                amr,
                self.user_agent,
                self.ip,
                self.created_at,
                self.updated_at,
                self.refreshed_at,
            ],
        )?;
        Ok(())
    }

    pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row("SELECT * FROM sessions WHERE id = ?1", [id], Self::from_row)
            .optional()
    }

    pub fn for_user(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Self>> {
        let mut stmt =
            conn.prepare("SELECT * FROM sessions WHERE user_id = ?1 ORDER BY created_at, id")?;
        stmt.query_map([user_id], Self::from_row)?.collect()
    }

    pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Self>> {
        let mut stmt = conn.prepare("SELECT * FROM sessions ORDER BY created_at, id")?;
        stmt.query_map([], Self::from_row)?.collect()
    }

    pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn delete_all_for_user(conn: &Connection, user_id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        Ok(())
    }

    pub fn delete_others(conn: &Connection, user_id: &str, keep: &str) -> rusqlite::Result<()> {
        conn.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND id != ?2",
            [user_id, keep],
        )?;
        Ok(())
    }

    /// Deletes every session of the user whose assurance level is below `aal2`, except `keep`.
    pub fn delete_aal1_except(
        conn: &Connection,
        user_id: &str,
        keep: &str,
    ) -> rusqlite::Result<()> {
        conn.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND id != ?2 AND aal = 'aal1'",
            [user_id, keep],
        )?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub token: String,
    pub user_id: String,
    pub session_id: String,
    pub parent: Option<String>,
    pub revoked: bool,
    pub updated_at: i64,
}

impl RefreshTokenRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            token: r.get("token")?,
            user_id: r.get("user_id")?,
            session_id: r.get("session_id")?,
            parent: r.get("parent")?,
            revoked: r.get("revoked")?,
            updated_at: r.get("updated_at")?,
        })
    }

    /// Mints a new, unrevoked token for the session.
    pub fn create(
        conn: &Connection,
        user_id: &str,
        session_id: &str,
        parent: Option<&str>,
        now: i64,
    ) -> rusqlite::Result<Self> {
        let token = crate::jwt::new_refresh_token();
        conn.execute(
            "INSERT INTO refresh_tokens (token, user_id, session_id, parent, revoked, created_at,
                updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            params![token, user_id, session_id, parent, now],
        )?;
        Ok(Self {
            id: conn.last_insert_rowid(),
            token,
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
            parent: parent.map(str::to_owned),
            revoked: false,
            updated_at: now,
        })
    }

    pub fn find(conn: &Connection, token: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM refresh_tokens WHERE token = ?1",
            [token],
            Self::from_row,
        )
        .optional()
    }

    /// The newest unrevoked token of the session.
    pub fn active_for_session(
        conn: &Connection,
        session_id: &str,
    ) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM refresh_tokens WHERE session_id = ?1 AND revoked = 0
             ORDER BY id DESC LIMIT 1",
            [session_id],
            Self::from_row,
        )
        .optional()
    }

    pub fn revoke(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE refresh_tokens SET revoked = 1, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Revokes every unrevoked token of the session (reuse detection).
    pub fn revoke_family(conn: &Connection, session_id: &str, now: i64) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE refresh_tokens SET revoked = 1, updated_at = ?2
             WHERE session_id = ?1 AND revoked = 0",
            params![session_id, now],
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// one-time tokens (emailed codes and links)

#[derive(Debug, Clone)]
pub struct OneTimeTokenRow {
    pub id: String,
    pub user_id: String,
    /// `confirmation`, `magiclink`, `recovery`, `invite`, `email_change`, `reauthentication`.
    pub token_type: String,
    /// The stored hash, with a `pkce_` prefix when the link belongs to a PKCE flow.
    pub token_hash: String,
    /// The address the token was sent to.
    pub relates_to: String,
    pub flow_state_id: Option<String>,
    pub created_at: i64,
}

impl OneTimeTokenRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            token_type: r.get("token_type")?,
            token_hash: r.get("token_hash")?,
            relates_to: r.get("relates_to")?,
            flow_state_id: r.get("flow_state_id")?,
            created_at: r.get("created_at")?,
        })
    }

    /// Stores the token, replacing any earlier token of the same type for the user.
    pub fn replace(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "DELETE FROM one_time_tokens WHERE user_id = ?1 AND token_type = ?2",
            [&self.user_id, &self.token_type],
        )?;
        conn.execute(
            "INSERT INTO one_time_tokens (id, user_id, token_type, token_hash, relates_to,
                flow_state_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                self.id,
                self.user_id,
                self.token_type,
                self.token_hash,
                self.relates_to,
                self.flow_state_id,
                self.created_at
            ],
        )?;
        Ok(())
    }

    /// A token of one of `types` whose hash is `hash` (with or without the `pkce_` prefix).
    pub fn find_by_hash(
        conn: &Connection,
        hash: &str,
        types: &[&str],
    ) -> rusqlite::Result<Option<Self>> {
        let bare = hash.strip_prefix("pkce_").unwrap_or(hash);
        let prefixed = format!("pkce_{bare}");
        let mut stmt = conn.prepare(
            "SELECT * FROM one_time_tokens WHERE token_hash IN (?1, ?2) ORDER BY created_at DESC",
        )?;
        let rows: Vec<Self> = stmt
            .query_map([bare, prefixed.as_str()], Self::from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .find(|t| types.contains(&t.token_type.as_str())))
    }

    pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM one_time_tokens WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn delete_for_user(conn: &Connection, user_id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM one_time_tokens WHERE user_id = ?1", [user_id])?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// PKCE flow states and the fake OAuth provider's grants

#[derive(Debug, Clone)]
pub struct FlowStateRow {
    pub id: String,
    pub user_id: Option<String>,
    pub auth_code: String,
    /// Empty for an implicit OAuth flow.
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub provider_type: String,
    pub authentication_method: String,
    pub redirect_to: Option<String>,
    pub provider_access_token: Option<String>,
    pub provider_refresh_token: Option<String>,
    pub created_at: i64,
    pub auth_code_issued_at: Option<i64>,
}

impl FlowStateRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            auth_code: r.get("auth_code")?,
            code_challenge: r.get("code_challenge")?,
            code_challenge_method: r.get("code_challenge_method")?,
            provider_type: r.get("provider_type")?,
            authentication_method: r.get("authentication_method")?,
            redirect_to: r.get("redirect_to")?,
            provider_access_token: r.get("provider_access_token")?,
            provider_refresh_token: r.get("provider_refresh_token")?,
            created_at: r.get("created_at")?,
            auth_code_issued_at: r.get("auth_code_issued_at")?,
        })
    }

    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO flow_states (id, user_id, auth_code, code_challenge, code_challenge_method,
                provider_type, authentication_method, redirect_to, provider_access_token,
                provider_refresh_token, created_at, auth_code_issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id,
                provider_access_token = excluded.provider_access_token,
                provider_refresh_token = excluded.provider_refresh_token,
                auth_code_issued_at = excluded.auth_code_issued_at",
            params![
                self.id,
                self.user_id,
                self.auth_code,
                self.code_challenge,
                self.code_challenge_method,
                self.provider_type,
                self.authentication_method,
                self.redirect_to,
                self.provider_access_token,
                self.provider_refresh_token,
                self.created_at,
                self.auth_code_issued_at,
            ],
        )?;
        Ok(())
    }

    pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM flow_states WHERE id = ?1",
            [id],
            Self::from_row,
        )
        .optional()
    }

    pub fn find_by_auth_code(conn: &Connection, code: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT * FROM flow_states WHERE auth_code = ?1",
            [code],
            Self::from_row,
        )
        .optional()
    }

    pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM flow_states WHERE id = ?1", [id])?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct OAuthGrantRow {
    pub code: String,
    pub flow_state_id: String,
    pub provider: String,
    pub email: String,
}

impl OAuthGrantRow {
    pub fn insert(&self, conn: &Connection, now: i64) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO oauth_grants (code, flow_state_id, provider, email, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                self.code,
                self.flow_state_id,
                self.provider,
                self.email,
                now
            ],
        )?;
        Ok(())
    }

    /// Finds and deletes the grant (provider codes are single use).
    pub fn take(conn: &Connection, code: &str) -> rusqlite::Result<Option<Self>> {
        let row = conn
            .query_row(
                "SELECT code, flow_state_id, provider, email FROM oauth_grants WHERE code = ?1",
                [code],
                |r| {
                    Ok(Self {
                        code: r.get(0)?,
                        flow_state_id: r.get(1)?,
                        provider: r.get(2)?,
                        email: r.get(3)?,
                    })
                },
            )
            .optional()?;
        conn.execute("DELETE FROM oauth_grants WHERE code = ?1", [code])?;
        Ok(row)
    }
}

// ---------------------------------------------------------------------------------------
// MFA

#[derive(Debug, Clone)]
pub struct FactorRow {
    pub id: String,
    pub user_id: String,
    pub friendly_name: Option<String>,
    pub factor_type: String,
    pub status: String,
    pub secret: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FactorRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            friendly_name: r.get("friendly_name")?,
            factor_type: r.get("factor_type")?,
            status: r.get("status")?,
            secret: r.get("secret")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, secret,
                created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status,
                friendly_name = excluded.friendly_name, updated_at = excluded.updated_at",
            params![
                self.id,
                self.user_id,
                self.friendly_name,
                self.factor_type,
                self.status,
                self.secret,
                self.created_at,
                self.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn for_user(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Self>> {
        let mut stmt =
            conn.prepare("SELECT * FROM mfa_factors WHERE user_id = ?1 ORDER BY created_at")?;
        stmt.query_map([user_id], Self::from_row)?.collect()
    }

    pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM mfa_factors WHERE id = ?1", [id])?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct ChallengeRow {
    pub id: String,
    pub factor_id: String,
    pub ip_address: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
}

impl ChallengeRow {
    pub fn insert(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO mfa_challenges (id, factor_id, ip_address, created_at, verified_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                self.id,
                self.factor_id,
                self.ip_address,
                self.created_at,
                self.verified_at
            ],
        )?;
        Ok(())
    }

    pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row(
            "SELECT id, factor_id, ip_address, created_at, verified_at FROM mfa_challenges
             WHERE id = ?1",
            [id],
            |r| {
                Ok(Self {
                    id: r.get(0)?,
                    factor_id: r.get(1)?,
                    ip_address: r.get(2)?,
                    created_at: r.get(3)?,
                    verified_at: r.get(4)?,
                })
            },
        )
        .optional()
    }

    pub fn mark_verified(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE mfa_challenges SET verified_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// captured mail

#[derive(Debug, Clone, Serialize)]
pub struct MailRow {
    pub id: i64,
    pub to: String,
    pub subject: String,
    #[serde(rename = "type")]
    pub mail_type: String,
    pub otp: String,
    pub token_hash: String,
    pub action_link: String,
    pub redirect_to: Option<String>,
    pub created_at: String,
}

impl MailRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let created: i64 = r.get("created_at")?;
        Ok(Self {
            id: r.get("id")?,
            to: r.get("recipient")?,
            subject: r.get("subject")?,
            mail_type: r.get("mail_type")?,
            otp: r.get("otp")?,
            token_hash: r.get("token_hash")?,
            action_link: r.get("action_link")?,
            redirect_to: r.get("redirect_to")?,
            created_at: crate::clock::rfc3339(created),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        conn: &Connection,
        to: &str,
        subject: &str,
        mail_type: &str,
        otp: &str,
        token_hash: &str,
        action_link: &str,
        redirect_to: Option<&str>,
        now: i64,
    ) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO mails (recipient, subject, mail_type, otp, token_hash, action_link,
                redirect_to, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                to,
                subject,
                mail_type,
                otp,
                token_hash,
                action_link,
                redirect_to,
                now
            ],
        )?;
        Ok(())
    }

    /// Mails to `to` (all mails for `None`), oldest first.
    pub fn list(conn: &Connection, to: Option<&str>) -> rusqlite::Result<Vec<Self>> {
        match to {
            Some(to) => {
                let mut stmt =
                    conn.prepare("SELECT * FROM mails WHERE recipient = ?1 ORDER BY id")?;
                stmt.query_map([to.to_lowercase()], Self::from_row)?
                    .collect()
            }
            None => {
                let mut stmt = conn.prepare("SELECT * FROM mails ORDER BY id")?;
                stmt.query_map([], Self::from_row)?.collect()
            }
        }
    }

    /// The newest mail of a type to an address, for send throttling.
    pub fn last_sent(
        conn: &Connection,
        to: &str,
        mail_type: &str,
    ) -> rusqlite::Result<Option<i64>> {
        conn.query_row(
            "SELECT MAX(created_at) FROM mails WHERE recipient = ?1 AND mail_type = ?2",
            [to, mail_type],
            |r| r.get(0),
        )
    }

    pub fn clear(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM mails", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_session_deletes_its_refresh_tokens() -> rusqlite::Result<()> {
        let db = Db::open(None)?;
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
            let db = Db::open(Some(&path))?;
            let mut user = UserRow::new("authenticated", "authenticated", 1);
            user.email = Some("a@example.com".into());
            user.save(&db.lock())?;
            user.id
        };
        let db = Db::open(Some(&path))?;
        let found = UserRow::find_by_email(&db.lock(), "A@example.com")?;
        assert_eq!(found.map(|u| u.id), Some(id));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
