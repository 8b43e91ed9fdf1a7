//! Emailed codes and links: minted, stored as one-time tokens, rendered with the
//! project's templates (`template.rs`, Go's `html/template` rules) and "sent" to the
//! captured mailbox that `GET /_emulator/mail` reads.

pub mod template;
pub mod templates;

use rusqlite::Connection;
use serde_json::json;

use crate::db::{MailRow, OneTimeTokenRow, UserRow};
use crate::error::ApiError;
use crate::tokens;
use templates::{ParsedTemplate, ParsedTemplates};

/// The kinds of mail GoTrue sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Signup,
    Magiclink,
    Recovery,
    Invite,
    /// The email-change mail to the new address.
    EmailChange,
    /// The email-change mail to the current address (secure email change).
    EmailChangeCurrent,
    Reauthentication,
}

impl MailKind {
    /// The `type` reported by `/_emulator/mail` and used in the link's `type=` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Magiclink => "magiclink",
            Self::Recovery => "recovery",
            Self::Invite => "invite",
            Self::EmailChange | Self::EmailChangeCurrent => "email_change",
            Self::Reauthentication => "reauthentication",
        }
    }

    /// The one-time-token type stored for this mail.
    pub fn token_type(self) -> &'static str {
        match self {
            Self::Signup => "confirmation",
            Self::EmailChangeCurrent => "email_change_current",
            other => other.name(),
        }
    }

    /// The project's template for this mail (GoTrue's template types).
    pub fn template(self, templates: &ParsedTemplates) -> &ParsedTemplate {
        match self {
            Self::Signup => &templates.confirmation,
            Self::Magiclink => &templates.magic_link,
            Self::Recovery => &templates.recovery,
            Self::Invite => &templates.invite,
            Self::EmailChange | Self::EmailChangeCurrent => &templates.email_change,
            Self::Reauthentication => &templates.reauthentication,
        }
    }
}

/// A minted one-time token: the code, the stored hash (with `pkce_` prefix for PKCE flows)
/// and the `/verify` link a mail would carry (the template's `{{ .ConfirmationURL }}`).
#[derive(Debug)]
pub struct IssuedToken {
    pub otp: String,
    pub token_hash: String,
    pub action_link: String,
}

/// Mints and stores a one-time token for `user`, replacing any older one of the same kind.
pub fn issue_token(
    conn: &Connection,
    user: &UserRow,
    out: &Outgoing<'_>,
) -> rusqlite::Result<IssuedToken> {
    let Outgoing {
        external_url,
        kind,
        to: address,
        redirect_to,
        flow_state_id,
        now,
        ..
    } = *out;
    let otp = tokens::new_otp(6);
    let hash = tokens::token_hash(address, &otp);
    let token_hash = if flow_state_id.is_some() {
        format!("pkce_{hash}")
    } else {
        hash
    };
    OneTimeTokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        token_type: kind.token_type().to_owned(),
        token_hash: token_hash.clone(),
        relates_to: address.to_owned(),
        flow_state_id: flow_state_id.map(str::to_owned),
        created_at: now,
    }
    .replace(conn)?;
    let action_link = if kind == MailKind::Reauthentication {
        String::new()
    } else {
        confirmation_url(external_url, &token_hash, kind.name(), redirect_to)
    };
    Ok(IssuedToken {
        otp,
        token_hash,
        action_link,
    })
}

/// GoTrue's `{{ .ConfirmationURL }}` (`getPath` in `templatemailer.go`): `token` and
/// `type` query-escaped, and `redirect_to` escaped only when it holds `&`, `=` or `#` (Go's
/// reasoning: such a value "has not been URL encoded by the caller"), else as it is.
pub fn confirmation_url(external_url: &str, token: &str, kind: &str, redirect_to: &str) -> String {
    let redirect = if redirect_to.contains(['&', '=', '#']) {
        go_query_escape(redirect_to)
    } else {
        redirect_to.to_owned()
    };
    format!(
        "{}/verify?token={}&type={}&redirect_to={redirect}",
        external_url.trim_end_matches('/'),
        go_query_escape(token),
        go_query_escape(kind)
    )
}

/// Go's `url.QueryEscape`: everything but `A-Z a-z 0-9 - _ . ~` percent-encoded (upper-case
/// hex), a space as `+`.
pub fn go_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Context of one mail send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub external_url: &'a str,
    /// The project's site URL (`{{ .SiteURL }}`).
    pub site_url: &'a str,
    /// The project's templates.
    pub templates: &'a ParsedTemplates,
    pub kind: MailKind,
    pub to: &'a str,
    pub redirect_to: &'a str,
    pub flow_state_id: Option<&'a str>,
    pub max_frequency: std::time::Duration,
    pub now: i64,
}

/// Mints a token and "sends" the mail; updates the user's `*_sent_at` (the caller saves).
/// Refuses with 429 when a mail of the same kind went to the same address too recently.
pub fn send(conn: &Connection, user: &mut UserRow, out: &Outgoing<'_>) -> Result<(), ApiError> {
    let window = i64::try_from(out.max_frequency.as_micros()).unwrap_or(i64::MAX);
    if window > 0
        && let Some(last) = MailRow::last_sent(conn, out.to, out.kind.name())?
    {
        let wait_micros = last.saturating_add(window) - out.now;
        if wait_micros > 0 {
            let secs = (wait_micros + 999_999) / 1_000_000;
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "over_email_send_rate_limit",
                format!("For security purposes, you can only request this after {secs} seconds."),
            ));
        }
    }
    let issued = issue_token(conn, user, out)?;
    let template = out.kind.template(out.templates);
    let email = user.email.clone().unwrap_or_default();
    let mut data = json!({
        "SiteURL": out.site_url,
        "Email": email,
        "Token": issued.otp,
        "Data": user.user_metadata,
    });
    if out.kind != MailKind::Reauthentication {
        data["ConfirmationURL"] = json!(issued.action_link);
        data["TokenHash"] = json!(issued.token_hash);
        data["RedirectTo"] = json!(out.redirect_to);
    }
    if matches!(
        out.kind,
        MailKind::EmailChange | MailKind::EmailChangeCurrent
    ) {
        data["NewEmail"] = json!(user.email_change.clone().unwrap_or_default());
        data["SendingTo"] = json!(out.to);
    }
    let (subject, html) = template.render(&data);
    MailRow {
        to: out.to.to_owned(),
        subject,
        mail_type: out.kind.name().to_owned(),
        html,
        // The code reaches the user only if the template shows it.
        otp: template.shows_code().then_some(issued.otp),
        token_hash: issued.token_hash,
        action_link: issued.action_link,
        redirect_to: Some(out.redirect_to.to_owned()),
        ..MailRow::default()
    }
    .insert(conn, out.now)?;
    match out.kind {
        MailKind::Signup => user.confirmation_sent_at = Some(out.now),
        MailKind::Magiclink | MailKind::Recovery => user.recovery_sent_at = Some(out.now),
        MailKind::Invite => user.invited_at = Some(out.now),
        MailKind::EmailChange | MailKind::EmailChangeCurrent => {
            user.email_change_sent_at = Some(out.now)
        }
        MailKind::Reauthentication => user.reauthentication_sent_at = Some(out.now),
    }
    user.updated_at = out.now;
    Ok(())
}
