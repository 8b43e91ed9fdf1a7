//! Emailed codes and links: minted, stored as one-time tokens, and "sent" to the captured
//! mailbox that `GET /_emulator/mail` reads.

use rusqlite::Connection;
use url::form_urlencoded;

use crate::db::{MailRow, OneTimeTokenRow, UserRow};
use crate::error::ApiError;
use crate::tokens;

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

    fn subject(self) -> &'static str {
        match self {
            Self::Signup => "Confirm Your Signup",
            Self::Magiclink => "Your Magic Link",
            Self::Recovery => "Reset Your Password",
            Self::Invite => "You have been invited",
            Self::EmailChange | Self::EmailChangeCurrent => "Confirm Email Change",
            Self::Reauthentication => "Confirm reauthentication",
        }
    }
}

/// A minted one-time token: the code, the stored hash (with `pkce_` prefix for PKCE flows)
/// and the `/verify` link a mail would carry.
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
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token_hash)
            .append_pair("type", kind.name())
            .append_pair("redirect_to", redirect_to)
            .finish();
        format!("{}/verify?{query}", external_url.trim_end_matches('/'))
    };
    Ok(IssuedToken {
        otp,
        token_hash,
        action_link,
    })
}

/// Context of one mail send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub external_url: &'a str,
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
    MailRow::insert(
        conn,
        out.to,
        out.kind.subject(),
        out.kind.name(),
        &issued.otp,
        &issued.token_hash,
        &issued.action_link,
        Some(out.redirect_to),
        out.now,
    )?;
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
