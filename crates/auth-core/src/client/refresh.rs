//! The one refresh path, and its back-off.
//!
//! Every refresh of the session — on time in the background, for an access token about to
//! expire, on request — is [`AuthClient::refresh_from`]: one at a time in the process and
//! across processes (levels 1 and 2 of `order.rs`), the store followed first (another
//! process may have refreshed or signed out), the answer handed to the slot to commit. A
//! revoked session's queued revocation rotates its tokens through the same request
//! ([`AuthClient::refresh_request`]) and the same reading of its lifetime, without touching
//! the slot.
//!
//! Every way a refresh can fail goes through the back-off but two: the session is gone
//! (the server said so, or it ended here meanwhile). The back-off answers callers without
//! a request until its time (or until [`AuthClient::nudge`] or an explicit
//! [`AuthClient::refresh`] tries once now); no path loops without a sleep, and no path
//! drops a refresh token the server has rotated.

use super::*;

/// The refresh's back-off after a transient failure.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    attempt: u32,
    next_at: Option<SystemTime>,
    /// The refresh token whose refresh failed, and the error code: callers that come in
    /// before `next_at` with the same token get this answer without a request.
    failed: Option<(RefreshToken, String)>,
}

impl Backoff {
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// When the next refresh is due while backing off.
    pub(super) fn next_at(&self) -> Option<SystemTime> {
        self.next_at
    }

    /// The answer a caller with `token` gets while backing off.
    fn answer(&self, token: &RefreshToken, now: SystemTime) -> Option<AuthError> {
        match (&self.next_at, &self.failed) {
            (Some(next), Some((failed, code))) if failed == token && now < *next => Some(
                AuthError::Network(format!("refresh is backing off after {code}")),
            ),
            _ => None,
        }
    }

    /// Try once now (focus, resume, the network back): what fails again backs off further.
    pub(super) fn try_now(&mut self, now: SystemTime) {
        if let Some(next) = self.next_at.as_mut() {
            *next = now.min(*next);
        }
    }
}

/// A refresh token rotated by the server, read as far as the answer allows.
pub(super) struct Rotation {
    pub(super) session: Session,
    /// The answer could not be read as a whole: the rotated token (and whatever else was
    /// readable) is kept, and the refresh is retried later.
    pub(super) incomplete: Option<AuthError>,
}

impl AuthClient {
    // --------------------------------------------------------------------------- tokens

    /// A valid access token, refreshing first when it is due. Any number of concurrent
    /// callers share one refresh. While the server cannot be reached, a token that has not
    /// expired yet is still handed out.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        order::scope(async move {
            let session = self.current().ok_or(AuthError::NotSignedIn)?;
            let now = self.inner.clock.now();
            if now < session.refresh_at {
                return Ok(session.access_token);
            }
            match self.refresh_from(&session.refresh_token, false).await {
                Ok(s) => Ok(s.access_token),
                Err(e) if e.is_retryable() || matches!(e, AuthError::Storage(_)) => {
                    match self.current() {
                        Some(s) if self.inner.clock.now() < s.expires_at() => Ok(s.access_token),
                        _ => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Refreshes now (unless a concurrent caller just did), also while backing off: a
    /// person who asks gets a try.
    pub async fn refresh(&self) -> Result<SessionView, AuthError> {
        order::scope(async move {
            let session = self.current().ok_or(AuthError::NotSignedIn)?;
            self.refresh_from(&session.refresh_token, true)
                .await
                .map(|s| s.view())
        })
        .await
    }

    /// The single-flight refresh: `seen` is the refresh token the caller saw; if it has
    /// changed by the time the caller gets the gate, someone else refreshed. `force` tries
    /// even while backing off.
    pub(super) async fn refresh_from(
        &self,
        seen: &RefreshToken,
        force: bool,
    ) -> Result<Session, AuthError> {
        let inner = &self.inner;
        let _order = order::enter(order::Level::Refresh);
        let _gate = inner.refresh_gate.lock().await;
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        if &session.refresh_token != seen {
            return Ok(session);
        }
        if !force && let Some(e) = lock(&inner.backoff).answer(seen, inner.clock.now()) {
            return Err(e);
        }
        let result = self.refresh_locked(session).await;
        match &result {
            Ok(_) => {}
            // The session is gone (or ended here meanwhile): nothing to back off for.
            Err(AuthError::NotSignedIn) => {}
            Err(e) if e.refuses_refresh_token() => {}
            Err(e) => self.note_failure(seen, e),
        }
        result
    }

    /// The refresh itself, under the refresh gate. Every `Err` but the session's end is
    /// backed off by the caller.
    async fn refresh_locked(&self, session: Session) -> Result<Session, AuthError> {
        let inner = &self.inner;
        let _order = order::enter(order::Level::RefreshProcess);
        let _process = match &inner.refresh_lock {
            Some(l) => Some(l.acquire(inner.cfg.http_timeout * 2).await?),
            None => None,
        };
        crate::crash::point(CrashPoint::RefreshAfterLock);
        // Another process on this device may have refreshed or signed out meanwhile: its
        // stored session is the live one. Follow it; if it is due too, refresh *its* token
        // (ours may be generations old, and reusing it would make the server revoke the
        // whole session).
        let mut ours = vec![session.refresh_token.clone()];
        ours.extend(inner.slot.unsaved_stored_token());
        let followed = inner.slot.follow(&ours).await?;
        self.announce_followed(&followed);
        let session = match followed {
            Followed::Unchanged => session,
            Followed::Ended => return Err(AuthError::NotSignedIn),
            Followed::Adopted { session, .. } => {
                if inner.clock.now() < session.refresh_at {
                    return Ok(*session);
                }
                ours = vec![session.refresh_token.clone()];
                *session
            }
        };
        // Never more than one generation ahead of the store: another process may still
        // send the stored token, and the server forgives only the live token's immediate
        // predecessor (anything older is reuse, and ends the session). A refreshed session
        // the store could not save is saved first; while it cannot be, no refresh is sent.
        let session = match inner.slot.retry_unsaved_save().await {
            None | Some(Replaced::Saved) => session,
            Some(Replaced::Unsaved(e)) => return Err(e),
            Some(Replaced::Stale) => return Err(AuthError::NotSignedIn),
            Some(Replaced::Lost(followed)) => {
                self.announce_followed(&followed);
                return match followed {
                    Followed::Adopted { session, .. } => Ok(*session),
                    _ => Err(AuthError::NotSignedIn),
                };
            }
        };
        if inner.slot.unsaved_stored_token().is_none() {
            ours = vec![session.refresh_token.clone()];
        }
        let rotation = match self.rotate(&session).await {
            Ok(rotation) => rotation,
            Err(e) if e.refuses_refresh_token() => {
                tracing::info!(code = e.code(), "the server ended the session");
                self.end_session(Self::reason_for(&e), Expect::Session(&session.session_id))
                    .await;
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(code = e.code(), "refresh failed; will retry");
                return Err(e);
            }
        };
        let fresh = rotation.session;
        match inner.slot.replace_if_unchanged(&ours, fresh.clone()).await {
            Replaced::Saved => {}
            Replaced::Unsaved(e) => self.emit_error(&e),
            Replaced::Stale => {
                // Signed out or replaced in this process while the request ran: the
                // result is nobody's.
                if self
                    .current()
                    .is_none_or(|s| s.session_id != fresh.session_id)
                {
                    self.revoke_orphan(&fresh).await;
                }
                return Err(AuthError::NotSignedIn);
            }
            Replaced::Lost(followed) => {
                self.announce_followed(&followed);
                let same = matches!(&followed, Followed::Adopted { session, .. }
                    if session.session_id == fresh.session_id);
                if !same {
                    self.revoke_orphan(&fresh).await;
                }
                return match followed {
                    Followed::Adopted { session, .. } => Ok(*session),
                    _ => Err(AuthError::NotSignedIn),
                };
            }
        }
        self.emit(AuthEvent::TokenRefreshed, None);
        self.set_connectivity(Connectivity::Online);
        if let Some(e) = rotation.incomplete {
            // The rotated token is kept; the answer's other parts are refreshed again.
            return Err(e);
        }
        lock(&inner.backoff).clear();
        Ok(fresh)
    }

    /// Asks the server to rotate `session`'s refresh token and reads the answer into a
    /// session: the one request and reading of every refresh (the slot's, and a queued
    /// revocation's). An answer that cannot be read as a whole still yields the rotated
    /// token (`incomplete`): the server has retired the old one.
    pub(super) async fn rotate(&self, session: &Session) -> Result<Rotation, AuthError> {
        let inner = &self.inner;
        let mut resp = self.refresh_request(&session.refresh_token).await?;
        if resp.user.is_null() {
            // The backend's refresh does not describe the user: it has not changed.
            resp.user = session.user_raw.clone();
        }
        let now = inner.clock.now();
        match Session::from_response(resp.clone(), now, inner.cfg.refresh_margin) {
            Ok(fresh) => Ok(Rotation {
                session: fresh,
                incomplete: None,
            }),
            Err(e) => {
                tracing::warn!(code = e.code(), "a refresh answer only partly readable");
                match session.rotated(resp, now, inner.cfg.refresh_margin) {
                    Some(kept) => Ok(Rotation {
                        session: kept,
                        incomplete: Some(e),
                    }),
                    // No refresh token in it: nothing was rotated that could be kept.
                    None => Err(e),
                }
            }
        }
    }

    /// The one refresh request every refresh sends (`POST /token?grant_type=refresh_token`):
    /// the session's, and a queued revocation's whose access token expired.
    pub(super) async fn refresh_request(
        &self,
        token: &RefreshToken,
    ) -> Result<TokenResponse, AuthError> {
        self.inner
            .metrics
            .refresh_requests
            .fetch_add(1, Ordering::SeqCst);
        let resp = self.inner.api.refresh(token).await?;
        crate::crash::point(CrashPoint::RefreshAfterResponse);
        Ok(resp)
    }

    /// Records a transient failure: back off (exponential, with jitter), tell the UI.
    fn note_failure(&self, token: &RefreshToken, e: &AuthError) {
        let inner = &self.inner;
        let (attempt, next_at) = {
            let mut backoff = lock(&inner.backoff);
            backoff.attempt = backoff.attempt.saturating_add(1);
            let next = inner.clock.now() + inner.cfg.backoff(backoff.attempt);
            backoff.next_at = Some(next);
            backoff.failed = Some((token.clone(), e.code().to_owned()));
            (backoff.attempt, next)
        };
        self.set_connectivity(Connectivity::Retrying {
            attempt,
            next_retry_at: unix_ms(next_at),
            code: e.code().to_owned(),
        });
        inner.reschedule();
    }
}
