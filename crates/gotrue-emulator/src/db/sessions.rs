//! Sessions and their refresh tokens (which cascade with the session, as in GoTrue).

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::models::Amr;

// ---------------------------------------------------------------------------------------
// sessions and refresh tokens

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

/// A refresh token. `token` is the plaintext for a row just made by [`Self::create`]; for
/// a row read back it is the stored form (`tessera_key`: the plaintext for a test server,
/// its SHA-256 when embedded), as is `parent`.
#[derive(Clone)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub token: String,
    pub user_id: String,
    pub session_id: String,
    pub parent: Option<String>,
    pub revoked: bool,
    pub updated_at: i64,
}

impl std::fmt::Debug for RefreshTokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenRow")
            .field("id", &self.id)
            .field("session_id", &self.session_id)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
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
        let token = crate::tokens::new_refresh_token();
        conn.execute(
            "INSERT INTO refresh_tokens (token, user_id, session_id, parent, revoked, created_at,
                updated_at) VALUES (tessera_key(?1), ?2, ?3, ?4, 0, ?5, ?5)",
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
            "SELECT * FROM refresh_tokens WHERE token = tessera_key(?1)",
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
