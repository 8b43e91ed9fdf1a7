//! One-time tokens (emailed codes and links), PKCE flow states and the fake OAuth
//! provider's grants.

use rusqlite::{Connection, OptionalExtension, Row, params};

// ---------------------------------------------------------------------------------------
// one-time tokens (emailed codes and links)

#[derive(Debug, Clone)]
pub struct OneTimeTokenRow {
    pub id: String,
    pub user_id: String,
    /// `confirmation`, `magiclink`, `recovery`, `invite`, `email_change` (to the new
    /// address), `email_change_current` (to the current one), `reauthentication`.
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
                flow_state_id, created_at) VALUES (?1, ?2, ?3, tessera_key(?4), ?5, ?6, ?7)",
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
            "SELECT * FROM one_time_tokens
             WHERE token_hash IN (tessera_key(?1), tessera_key(?2)) ORDER BY created_at DESC",
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

    /// Whether the user has a token of `token_type` waiting.
    pub fn exists_for_user(
        conn: &Connection,
        user_id: &str,
        token_type: &str,
    ) -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM one_time_tokens WHERE user_id = ?1 AND token_type = ?2)",
            [user_id, token_type],
            |r| r.get(0),
        )
    }

    pub fn delete_of_type(
        conn: &Connection,
        user_id: &str,
        token_type: &str,
    ) -> rusqlite::Result<()> {
        conn.execute(
            "DELETE FROM one_time_tokens WHERE user_id = ?1 AND token_type = ?2",
            [user_id, token_type],
        )?;
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
    /// GoTrue's `FlowState.IsExpired`: a magic link's flow counts from when its code was
    /// issued (the link was clicked); every other flow — sign-up, resend, recovery, email
    /// change, OAuth — from when it was created, that is from the request that mailed the
    /// link or opened the provider.
    pub fn is_expired(&self, expiry_micros: i64, now: i64) -> bool {
        let started = match self.auth_code_issued_at {
            Some(issued) if self.authentication_method == "magiclink" => issued,
            _ => self.created_at,
        };
        now > started.saturating_add(expiry_micros)
    }

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
