//! The captured mailbox.

use rusqlite::{Connection, Row, params};
use serde::Serialize;

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
    /// The link an email template that goes straight to the app renders:
    /// `{{ .RedirectTo }}&token_hash={{ .TokenHash }}&type=<type>` (Tessera's README).
    /// `None` without a redirect URL, and for reauthentication (a code only).
    pub app_link: Option<String>,
    pub created_at: String,
}

impl MailRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let created: i64 = r.get("created_at")?;
        let mail_type: String = r.get("mail_type")?;
        let token_hash: String = r.get("token_hash")?;
        let redirect_to: Option<String> = r.get("redirect_to")?;
        let app_link = redirect_to
            .as_deref()
            .filter(|r| !r.is_empty() && mail_type != "reauthentication")
            .map(|r| format!("{r}&token_hash={token_hash}&type={mail_type}"));
        Ok(Self {
            id: r.get("id")?,
            to: r.get("recipient")?,
            subject: r.get("subject")?,
            mail_type,
            otp: r.get("otp")?,
            token_hash,
            action_link: r.get("action_link")?,
            redirect_to,
            app_link,
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
