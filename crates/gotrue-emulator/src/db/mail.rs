//! The captured mailbox.

use rusqlite::{Connection, Row, params};
use serde::Serialize;

use crate::mail::template;

// ---------------------------------------------------------------------------------------
// captured mail

/// A mail as the user receives it — the rendered subject and HTML, and the links in it —
/// plus what the emulator knows of how it was made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailRow {
    pub id: i64,
    pub to: String,
    /// Rendered with the project's subject template.
    pub subject: String,
    #[serde(rename = "type")]
    pub mail_type: String,
    /// The body, rendered with the project's template under `html/template`'s rules.
    pub html: String,
    /// The `href`s of the body's links, entity-decoded: what a click opens (`#ZgotmplZ…`
    /// where `html/template` refused the URL).
    pub links: Vec<String>,
    /// The one-time code, when the template shows it (`{{ .Token }}`); stock templates
    /// other than reauthentication do not.
    pub otp: Option<String>,
    /// The stored token hash (`{{ .TokenHash }}`; `pkce_…` for a PKCE flow).
    pub token_hash: String,
    /// GoTrue's `{{ .ConfirmationURL }}` for this mail (empty for reauthentication).
    pub action_link: String,
    /// The redirect GoTrue settled on (`{{ .RedirectTo }}`).
    pub redirect_to: Option<String>,
    pub created_at: String,
}

impl MailRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let created: i64 = r.get("created_at")?;
        let html: String = r.get("html")?;
        let otp: String = r.get("otp")?;
        Ok(Self {
            id: r.get("id")?,
            to: r.get("recipient")?,
            subject: r.get("subject")?,
            mail_type: r.get("mail_type")?,
            links: template::links(&html),
            html,
            otp: Some(otp).filter(|o| !o.is_empty()),
            token_hash: r.get("token_hash")?,
            action_link: r.get("action_link")?,
            redirect_to: r.get("redirect_to")?,
            created_at: crate::clock::rfc3339(created),
        })
    }

    /// Stores this mail as sent at `now` (its `id`, `links` and `created_at` are ignored).
    pub fn insert(&self, conn: &Connection, now: i64) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO mails (recipient, subject, mail_type, html, otp, token_hash,
                action_link, redirect_to, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                self.to,
                self.subject,
                self.mail_type,
                self.html,
                self.otp.as_deref().unwrap_or_default(),
                self.token_hash,
                self.action_link,
                self.redirect_to,
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
