//! Deep links that come back into the app, and the account switch a link may ask for.
//!
//! A link only finishes a flow this device started (its id is in the link, the flow is
//! single use and short-lived). A link that would sign in another user than the one
//! signed in changes nothing until the user agrees: the new session waits in memory as a
//! pending [`AccountSwitch`], and is revoked if the user declines or lets it expire. Its
//! revocation is queued in the durable outbox at once, due when the question expires, so
//! an unanswered question (the app quit, the user walked away) still ends it at the server;
//! a "yes" takes it out of the outbox.

use super::*;
use crate::model::{AccountSwitch, LinkOutcome};

/// How long a pending account switch waits for the user's answer.
const SWITCH_TTL: Duration = Duration::from_secs(10 * 60);

/// A session a link produced for another user, waiting for the user's answer.
pub(super) struct PendingSwitch {
    view: AccountSwitch,
    session: Session,
    event: AuthEvent,
    expires: SystemTime,
    /// The session signed in when the link came: a "yes" switches from that one only.
    current_session_id: String,
    /// The queued revocation of `session`, due at `expires`.
    outbox_id: String,
}

/// Which email-link types may finish which flow (the server names the type).
fn link_type_fits(flow: FlowKind, kind: &str) -> bool {
    match flow {
        FlowKind::SignUp => matches!(kind, "signup" | "email"),
        // A first magic link to a new address is a sign-up confirmation.
        FlowKind::MagicLink => matches!(kind, "magiclink" | "email" | "signup"),
        FlowKind::Recovery => kind == "recovery",
        FlowKind::EmailChange => kind == "email_change",
        FlowKind::OAuth => false,
    }
}

fn refused(why: &str) -> AuthError {
    AuthError::InvalidCallback(why.to_owned())
}

/// A mailed link came back with a code the server no longer exchanges. GoTrue redirects
/// with a code only after the link's token was used — the address confirmed, or the
/// recovery spent — so the outcome is known even though no session comes of it: it keeps
/// a flow five minutes from the request that mailed the link (`flow_state_expired`), and
/// deletes it once exchanged or superseded (`flow_state_not_found`, `bad_code_verifier`).
fn late_link(flow: &PendingFlow, e: AuthError) -> Result<LinkOutcome, AuthError> {
    let spent = matches!(
        e.code(),
        "flow_state_expired" | "flow_state_not_found" | "bad_code_verifier"
    );
    match flow.kind {
        FlowKind::SignUp if spent => Ok(LinkOutcome::EmailConfirmed {
            email: flow.email.clone().unwrap_or_default(),
        }),
        FlowKind::Recovery | FlowKind::MagicLink if spent => Err(AuthError::LinkExpired(flow.kind)),
        _ => Err(e),
    }
}

impl AuthClient {
    /// Finishes a sign-in (or lands a sign-out) from a deep link or redirect. Anything not
    /// started by this engine, malformed or already used is refused with an `AUTH_ERROR`
    /// event and changes nothing. A link for another user than the signed-in one returns
    /// [`LinkOutcome::ConfirmSwitch`] and changes nothing until
    /// [`AuthClient::resolve_account_switch`].
    pub async fn handle_callback(&self, url: &str) -> Result<LinkOutcome, AuthError> {
        order::scope(async move {
            let result = self.handle_callback_inner(url).await;
            self.report(result)
        })
        .await
    }

    async fn handle_callback_inner(&self, url: &str) -> Result<LinkOutcome, AuthError> {
        match callback::parse(url, &self.inner.cfg.callback_base)? {
            Callback::Code { flow, code } => {
                if !lock(&self.inner.used_links).insert(format!("code:{code}")) {
                    return Err(refused("this link was already used"));
                }
                let pending = self
                    .take_flow(&flow)
                    .await
                    .ok_or_else(|| refused("no sign-in of this app is waiting for this link"))?;
                if pending.kind == FlowKind::EmailChange {
                    return self.finish_email_change(&pending).await;
                }
                match self.inner.api.exchange_code(&code, &pending.verifier).await {
                    Ok(resp) => self.finish_link_sign_in(resp, &pending).await,
                    Err(e) => late_link(&pending, e),
                }
            }
            Callback::Message { flow } => {
                // Only a flow of this device's that has two halves; it stays waiting for
                // the other link. Nothing changes here: the message is the server's news.
                let pending = self
                    .peek_flow(&flow)
                    .await
                    .filter(|f| f.kind == FlowKind::EmailChange)
                    .ok_or_else(|| {
                        refused("no email change of this app is waiting for this link")
                    })?;
                Ok(LinkOutcome::EmailChangeWaiting {
                    email: pending.email.unwrap_or_default(),
                })
            }
            Callback::Error {
                flow,
                code,
                description,
            } => {
                // Only the server's redirect for a flow of this app knows the flow id; any
                // other error link is somebody else's text, and cancels nothing. An email
                // change keeps waiting: its other link may still work.
                let pending = match flow {
                    Some(flow) => match self.peek_flow(&flow).await {
                        Some(f) if f.kind == FlowKind::EmailChange => Some(f),
                        _ => self.take_flow(&flow).await,
                    },
                    None => None,
                };
                if pending.is_none() {
                    return Err(refused(
                        "an error link that no sign-in of this app is waiting for",
                    ));
                }
                Err(AuthError::Api {
                    status: 400,
                    code,
                    message: description,
                })
            }
            Callback::TokenHash {
                flow,
                token_hash,
                kind,
            } => {
                // Marked before any await: the same link delivered twice at once is used
                // once.
                if !lock(&self.inner.used_links)
                    .insert(format!("hash:{}", token_hash.expose_secret()))
                {
                    return Err(refused("this link was already used"));
                }
                let waiting = || refused("no sign-in of this app is waiting for this link");
                let peeked = self.peek_flow(&flow).await.ok_or_else(waiting)?;
                if peeked.kind == FlowKind::EmailChange && link_type_fits(peeked.kind, &kind) {
                    // One of two links verified in the app: the first answers a message,
                    // the second completes the change with a session nobody asked for.
                    let Some(extra) = self.inner.api.verify_email_change_link(&token_hash).await?
                    else {
                        return Ok(LinkOutcome::EmailChangeWaiting {
                            email: peeked.email.unwrap_or_default(),
                        });
                    };
                    self.end_extra_session(extra).await;
                    let pending = self.take_flow(&flow).await.ok_or_else(waiting)?;
                    return self.finish_email_change(&pending).await;
                }
                let pending = self
                    .take_flow(&flow)
                    .await
                    .filter(|f| link_type_fits(f.kind, &kind))
                    .ok_or_else(waiting)?;
                let resp = self.inner.api.verify_token_hash(&token_hash, &kind).await?;
                self.finish_link_sign_in(resp, &pending).await
            }
            Callback::SignedOut => {
                // Anyone can open this link, so it decides nothing: the server does. A
                // session it no longer knows ends here (`SIGNED_OUT`, reason `revoked`);
                // a live one stays.
                let session = self.validate().await?;
                Ok(LinkOutcome::Checked {
                    signed_in: session.is_some(),
                })
            }
        }
    }

    /// The second link of an email change came back with a code: the server has made the
    /// change. The code is not exchanged — that would mint a second session for nothing —
    /// and the signed-in session learns the new address from the server.
    async fn finish_email_change(&self, flow: &PendingFlow) -> Result<LinkOutcome, AuthError> {
        let email = flow.email.clone().unwrap_or_default();
        if self.current().is_some() {
            let token = self.access_token().await?;
            let raw = self.inner.api.get_user(&token).await?;
            self.update_user_locally(raw.clone(), true).await?;
            let user: User = crate::decode::from_value("user", raw)?;
            if !user.email.trim().eq_ignore_ascii_case(email.trim()) {
                return Err(refused(
                    "the email change link did not change this account's address",
                ));
            }
            // The access token still names the old address; a refresh reissues it.
            if let Err(e) = self.refresh().await {
                tracing::warn!(code = e.code(), "no refresh after the email change");
            }
        }
        tracing::info!("an email change was completed by its link");
        Ok(LinkOutcome::EmailChanged { email })
    }

    /// Opens a mailed link of the auth server (its `/verify`) the way the person's browser
    /// would, and finishes what its redirect carries as a deep link
    /// ([`AuthClient::handle_callback`]): for links the app itself holds (the embedded
    /// demo server's mailbox, a link pasted into `authctl`).
    pub async fn follow_email_link(&self, link: &str) -> Result<LinkOutcome, AuthError> {
        order::scope(async move {
            let location = self.inner.api.follow_email_link(link).await;
            let location = self.report(location)?;
            self.handle_callback(&location).await
        })
        .await
    }

    /// A link produced a session: keep it if it is for the address the flow mailed, and
    /// ask first if it is another user than the signed-in one.
    async fn finish_link_sign_in(
        &self,
        resp: TokenResponse,
        flow: &PendingFlow,
    ) -> Result<LinkOutcome, AuthError> {
        let session =
            Session::from_response(resp, self.inner.clock.now(), self.inner.cfg.refresh_margin)?;
        if let Some(email) = &flow.email
            && !session.user.email.trim().eq_ignore_ascii_case(email.trim())
        {
            self.revoke_orphan(&session).await;
            return Err(refused(
                "the link signs in another address than the one the mail was sent to",
            ));
        }
        let event = if flow.kind == FlowKind::Recovery {
            AuthEvent::PasswordRecovery
        } else {
            AuthEvent::SignedIn
        };
        let Some(current) = self.current().filter(|c| c.user.id != session.user.id) else {
            let session = self.commit_new_session(session, event).await?;
            return Ok(LinkOutcome::SignedIn { session });
        };
        let mut id = [0u8; 12];
        rand::rng().fill(&mut id);
        let expires = self.inner.clock.now() + SWITCH_TTL;
        let view = AccountSwitch {
            id: URL_SAFE_NO_PAD.encode(id),
            current: UserView::from(&current.user),
            incoming: UserView::from(&session.user),
            expires_at: unix_secs(expires),
        };
        // Queued now, due at the expiry: without an answer the session still ends.
        let mut entry = self.outbox_entry(&session, SignOutScope::Local);
        entry.hook = HookStatus::NotNeeded;
        entry.next_attempt_at = unix_ms(expires);
        let outbox_id = entry.id.clone();
        if let Err(e) = self.push_outbox(entry).await {
            // Without a durable revocation the question cannot be asked safely.
            self.revoke_orphan(&session).await;
            return Err(AuthError::Storage(e));
        }
        let replaced = lock(&self.inner.pending_switch).replace(PendingSwitch {
            view: view.clone(),
            session,
            event,
            expires,
            current_session_id: current.session_id.clone(),
            outbox_id,
        });
        if let Some(old) = replaced {
            self.decline(old).await;
        }
        tracing::info!("a link would switch accounts: waiting for the user's answer");
        Ok(LinkOutcome::ConfirmSwitch { switch: view })
    }

    /// The queued revocation of an unanswered switch's session: not a sign-out, so "send
    /// every queued sign-out now" leaves it until the answer or its expiry.
    pub(super) fn pending_switch_outbox_id(&self) -> Option<String> {
        lock(&self.inner.pending_switch)
            .as_ref()
            .map(|p| p.outbox_id.clone())
    }

    /// The account switch waiting for the user's answer, if any (an expired one is
    /// dropped: its queued revocation is due).
    pub async fn pending_account_switch(&self) -> Option<AccountSwitch> {
        order::scope(async move {
            let mut pending = lock(&self.inner.pending_switch);
            match pending.as_ref() {
                Some(p) if p.expires <= self.inner.clock.now() => {
                    pending.take();
                    self.inner.reschedule();
                    None
                }
                Some(p) => Some(p.view.clone()),
                None => None,
            }
        })
        .await
    }

    /// Revokes a pending switch's session now.
    async fn decline(&self, pending: PendingSwitch) {
        if let Err(e) = self.remove_outbox_entry(&pending.outbox_id).await {
            tracing::warn!(code = e.code(), "could not update the queued revocation");
        }
        self.revoke_orphan(&pending.session).await;
    }

    /// The user's answer to a pending account switch: `accept` signs in the link's
    /// account (the current session is signed out locally, its revocation queued);
    /// otherwise the link's session is revoked and nothing else changes.
    pub async fn resolve_account_switch(
        &self,
        id: &str,
        accept: bool,
    ) -> Result<Option<SessionView>, AuthError> {
        order::scope(async move {
            let pending = {
                let mut pending = lock(&self.inner.pending_switch);
                if pending.as_ref().is_some_and(|p| p.view.id == id) {
                    pending.take()
                } else {
                    None
                }
            };
            let Some(pending) = pending else {
                return Err(AuthError::InvalidInput(
                    "this account switch is no longer waiting for an answer".into(),
                ));
            };
            if !accept {
                tracing::info!("the user declined an account switch; its session is revoked");
                self.decline(pending).await;
                return Ok(None);
            }
            if pending.expires <= self.inner.clock.now() {
                self.decline(pending).await;
                return Err(AuthError::InvalidInput(
                    "the link waited too long; open it again".into(),
                ));
            }
            if self.current().map(|c| c.session_id) != Some(pending.current_session_id.clone()) {
                // Signed out or signed in elsewhere meanwhile: the question no longer holds.
                self.decline(pending).await;
                return Err(AuthError::InvalidInput(
                    "the account changed while the question was open; open the link again".into(),
                ));
            }
            // Out of the outbox first: a "yes" must not be revoked behind the user's back.
            self.remove_outbox_entry(&pending.outbox_id).await?;
            self.commit_new_session(pending.session, pending.event)
                .await
                .map(Some)
        })
        .await
    }
}
