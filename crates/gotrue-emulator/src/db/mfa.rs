//! MFA factors and their challenges.

use rusqlite::{Connection, OptionalExtension, Row, params};

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
                created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, tessera_seal(?6), ?7, ?8)
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
        // The secret as stored is sealed in embedded mode (`tessera_open`: db/private.rs).
        let mut stmt = conn.prepare(
            "SELECT id, user_id, friendly_name, factor_type, status,
                tessera_open(secret) AS secret, created_at, updated_at
             FROM mfa_factors WHERE user_id = ?1 ORDER BY created_at",
        )?;
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
