//! The embedded demo server's mailbox, read in process: the mail it sent (codes shown to
//! the UI, links kept on the Rust side and opened by id, as the person's browser would).

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};

use crate::{AuthState, CommandError, server};

/// Reads the embedded server's sent mail, in process.
pub type DemoMailbox = Box<dyn Fn() -> Result<Vec<DemoMail>, String> + Send + Sync>;

/// A mail the embedded demo server sent. `Debug` leaves out its code and link (one-time
/// credentials).
#[derive(Clone)]
pub struct DemoMail {
    pub id: i64,
    pub to: String,
    pub subject: String,
    /// `signup`, `magiclink`, `recovery`, `email_change`, …
    pub kind: String,
    /// The one-time code in the mail.
    pub code: String,
    /// The link in the mail: the server's `/verify`, which redirects to the app.
    pub link: Option<String>,
    pub sent_at: String,
}

impl std::fmt::Debug for DemoMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoMail")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A demo mail as the UI sees it: the link stays here (the UI opens it by id).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoMailView {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub kind: String,
    pub code: String,
    pub has_link: bool,
    pub sent_at: String,
}

fn demo_mails<R: Runtime>(app: &AppHandle<R>) -> Result<Vec<DemoMail>, CommandError> {
    let not_demo = || {
        CommandError::new(
            "no_demo_mailbox",
            "The mailbox shows the mail of the embedded demo server only.",
        )
    };
    let state = app.state::<AuthState>();
    if !state.backend().embedded {
        return Err(not_demo());
    }
    let servers = app.try_state::<server::Servers<R>>().ok_or_else(not_demo)?;
    let running = servers
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(not_demo)?;
    let mailbox = running.mailbox.as_ref().ok_or_else(not_demo)?;
    mailbox().map_err(|e| CommandError::new("mailbox_error", e))
}

pub(crate) fn demo_mailbox<R: Runtime>(
    app: &AppHandle<R>,
) -> Result<Vec<DemoMailView>, CommandError> {
    Ok(demo_mails(app)?
        .into_iter()
        .map(|m| DemoMailView {
            id: m.id,
            to: m.to,
            subject: m.subject,
            kind: m.kind,
            code: m.code,
            has_link: m.link.is_some(),
            sent_at: m.sent_at,
        })
        .collect())
}

pub(crate) fn demo_mail_link<R: Runtime>(
    app: &AppHandle<R>,
    id: i64,
) -> Result<String, CommandError> {
    demo_mails(app)?
        .into_iter()
        .find(|m| m.id == id)
        .and_then(|m| m.link)
        .ok_or_else(|| CommandError::new("not_found", "That mail has no link to open."))
}
