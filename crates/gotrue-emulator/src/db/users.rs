//! Users and their identities.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::json_col;

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

    /// A user by id, a soft-deleted one too (GoTrue's lookup by id does not skip them).
    pub fn find_any(conn: &Connection, id: &str) -> rusqlite::Result<Option<Self>> {
        conn.query_row("SELECT * FROM users WHERE id = ?1", [id], Self::from_row)
            .optional()
    }

    /// A page of live users whose address contains `filter` (or whose `full_name`
    /// metadata does, in any case), newest first, as GoTrue's admin list orders them.
    pub fn list(
        conn: &Connection,
        filter: &str,
        limit: i64,
        offset: i64,
    ) -> rusqlite::Result<Vec<Self>> {
        let mut stmt = conn.prepare(&format!(
            "SELECT * FROM users WHERE {LIVE_MATCHING} ORDER BY created_at DESC, id DESC
             LIMIT ?2 OFFSET ?3"
        ))?;
        stmt.query_map(params![filter, limit, offset], Self::from_row)?
            .collect()
    }

    /// How many live users [`UserRow::list`] would page through.
    pub fn count(conn: &Connection, filter: &str) -> rusqlite::Result<i64> {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM users WHERE {LIVE_MATCHING}"),
            [filter],
            |r| r.get(0),
        )
    }

    /// Hard delete: sessions, tokens, identities and factors go with the row.
    pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
        Ok(())
    }
}

/// Live users matching the admin list's `filter` (`?1`; empty matches all): a substring of
/// the address (case-sensitive, as Postgres' `LIKE`), or of `full_name` in any case.
const LIVE_MATCHING: &str = "deleted_at IS NULL AND (?1 = '' OR instr(email, ?1) > 0
    OR instr(lower(json_extract(user_metadata, '$.full_name')), lower(?1)) > 0)";

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
