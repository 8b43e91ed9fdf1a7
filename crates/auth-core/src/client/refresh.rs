//! The single-flight refresh and the access token: one refresh at a time in the process
//! and across processes, a refreshed session that cannot be saved kept in memory (never
//! its superseded token sent again) until the save succeeds.

use super::*;

impl AuthClient {
    // --------------------------------------------------------------------------- tokens

    /// A valid access token, refreshing first when it is due. Any number of concurrent
    /// callers share one refresh. While the server cannot be reached, a token that has not
    /// expired yet is still handed out.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        let now = self.inner.clock.now();
        if now < session.refresh_at {
            return Ok(session.access_token);
        }
        match self.refresh_from(&session.refresh_token).await {
            Ok(s) => Ok(s.access_token),
            Err(e) if e.is_retryable() || matches!(e, AuthError::Storage(_)) => {
                match self.current() {
                    Some(s) if self.inner.clock.now() < s.expires_at() => Ok(s.access_token),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Refreshes now (unless a concurrent caller just did).
    pub async fn refresh(&self) -> Result<SessionView, AuthError> {
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        self.refresh_from(&session.refresh_token)
            .await
            .map(|s| s.view())
    }

    /// The single-flight refresh: `seen` is the refresh token the caller saw; if it has
    /// changed by the time the caller gets the gate, someone else refreshed.
    pub(super) async fn refresh_from(&self, seen: &RefreshToken) -> Result<Session, AuthError> {
        let inner = &self.inner;
        let _gate = inner.refresh_gate.lock().await;
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        if &session.refresh_token != seen {
            return Ok(session);
        }
        {
            let retry = lock(&inner.retry);
            if let (Some(next), Some((token, code))) = (retry.next_at, &retry.failed_token)
                && token == seen
                && inner.clock.now() < next
            {
                return Err(AuthError::Network(format!(
                    "refresh is backing off after {code}"
                )));
            }
        }
        let epoch = inner.epoch.load(Ordering::SeqCst);
        let _process_lock = match &inner.lock {
            Some(l) => Some(l.acquire(inner.cfg.http_timeout * 2).await?),
            None => None,
        };
        crate::crash::point("refresh:after_lock");
        // Another process on this device may have refreshed or signed out meanwhile. Its
        // stored session is the live one: adopt it, and if it is due too, refresh *its*
        // token (ours may be generations old, and reusing it would make the server revoke
        // the whole session).
        let mut session = session;
        // A refreshed session this process could not save: the store still holds the
        // token it superseded, which is ours, not another process's newer one.
        let stored_token = lock(&inner.retry)
            .unsaved
            .as_ref()
            .map(|u| u.stored_token.clone());
        let ours = |t: &RefreshToken, session: &Session| {
            t == &session.refresh_token || Some(t) == stored_token.as_ref()
        };
        match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await {
            Ok(None) => {
                // Another process signed out: follow it (and delete nothing: a sign-in
                // stored since by yet another process is not ours to remove).
                self.end_session_with(SignOutReason::User, Some(epoch), Removal::IfSameSession)
                    .await;
                return Err(AuthError::NotSignedIn);
            }
            Ok(Some(stored)) if !ours(&stored.refresh_token, &session) => {
                let adopted = Session::from_stored(stored, inner.cfg.refresh_margin)?;
                if inner.clock.now() < adopted.refresh_at {
                    let _commit = inner.commit_gate.lock().await;
                    if inner.epoch.load(Ordering::SeqCst) == epoch {
                        inner.epoch.fetch_add(1, Ordering::SeqCst);
                        lock(&inner.retry).unsaved = None;
                        self.set_session(Some(adopted.clone()));
                        self.emit(AuthEvent::TokenRefreshed, None);
                    }
                    return Ok(adopted);
                }
                session = adopted;
            }
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(
                code = e.code(),
                "could not re-read the stored session before refresh"
            ),
        }
        inner
            .metrics
            .refresh_requests
            .fetch_add(1, Ordering::SeqCst);
        let result = inner.api.refresh(&session.refresh_token).await;
        match result {
            Ok(mut resp) => {
                crate::crash::point("refresh:after_response");
                if resp.user.is_null() {
                    // The backend's refresh does not describe the user: it has not changed.
                    resp.user = session.user_raw.clone();
                }
                let fresh =
                    Session::from_response(resp, inner.clock.now(), inner.cfg.refresh_margin)?;
                let _commit = inner.commit_gate.lock().await;
                if inner.epoch.load(Ordering::SeqCst) != epoch {
                    // Signed out or replaced in this process while the request ran: the
                    // result is not ours to keep.
                    drop(_commit);
                    if self
                        .current()
                        .is_none_or(|s| s.session_id != fresh.session_id)
                    {
                        self.revoke_orphan(&fresh).await;
                    }
                    return Err(AuthError::NotSignedIn);
                }
                let _process = match self.commit_lock().await {
                    Ok(guard) => guard,
                    Err(e) => {
                        // The server has rotated the token: the new session is kept (in
                        // memory, unsaved) and the old token is never sent again.
                        let keep = stored_token.unwrap_or_else(|| session.refresh_token.clone());
                        let kept = self.keep_unsaved(fresh, keep, e);
                        drop(_commit);
                        return Ok(kept);
                    }
                };
                // Another process may have signed out or signed in while the request ran:
                // only the session we refreshed may be overwritten.
                match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await
                {
                    Ok(Some(stored)) if ours(&stored.refresh_token, &session) => {}
                    Ok(stored) => {
                        lock(&inner.retry).unsaved = None;
                        tracing::info!(
                            "another process ended or replaced the session during a refresh; \
                             the result is discarded"
                        );
                        let adopted = stored
                            .and_then(|s| Session::from_stored(s, inner.cfg.refresh_margin).ok());
                        let same = adopted
                            .as_ref()
                            .is_some_and(|a| a.session_id == fresh.session_id);
                        let result = match adopted {
                            Some(adopted) => {
                                inner.epoch.fetch_add(1, Ordering::SeqCst);
                                let event = if same {
                                    AuthEvent::TokenRefreshed
                                } else {
                                    AuthEvent::SignedIn
                                };
                                self.set_session(Some(adopted.clone()));
                                self.emit(event, None);
                                Ok(adopted)
                            }
                            None => {
                                self.end_session_locked(
                                    SignOutReason::User,
                                    Removal::IfSameSession,
                                )
                                .await;
                                Err(AuthError::NotSignedIn)
                            }
                        };
                        drop(_process);
                        drop(_commit);
                        if !same {
                            self.revoke_orphan(&fresh).await;
                        }
                        return result;
                    }
                    Err(e) => tracing::warn!(
                        code = e.code(),
                        "could not re-read the stored session before saving a refresh"
                    ),
                }
                // Persist, then publish. If the save fails or times out, the new session is
                // kept in memory anyway, unsaved: its old refresh token is superseded and is
                // never sent again (a strict server would revoke the session for it). The
                // save is retried with back-off. The commit lock is held until the write
                // has really returned, so a late write cannot land over another process's.
                let hold = _process.map(|g| Box::new(g) as crate::store::Hold);
                if let Err(e) = persist::save_holding(
                    &inner.store,
                    &inner.cfg.key("session"),
                    &fresh.to_stored(),
                    hold,
                )
                .await
                {
                    let keep = stored_token.unwrap_or_else(|| session.refresh_token.clone());
                    let kept = self.keep_unsaved(fresh, keep, AuthError::Storage(e));
                    drop(_commit);
                    return Ok(kept);
                }
                crate::crash::point("refresh:after_persist");
                inner.epoch.fetch_add(1, Ordering::SeqCst);
                *lock(&inner.retry) = Retry::default();
                self.set_session(Some(fresh.clone()));
                self.emit(AuthEvent::TokenRefreshed, None);
                drop(_commit);
                self.set_connectivity(Connectivity::Online);
                Ok(fresh)
            }
            Err(e) if e.refuses_refresh_token() => {
                tracing::info!(code = e.code(), "the server ended the session");
                self.end_session(Self::reason_for(&e), Some(epoch)).await;
                Err(e)
            }
            Err(e) => {
                tracing::warn!(code = e.code(), "refresh failed; will retry");
                self.note_failure(seen, &e);
                Err(e)
            }
        }
    }

    /// A refreshed session that could not be saved (the save failed or timed out, or the
    /// commit lock could not be had): kept in memory, marked unsaved with the token the
    /// store still holds, announced; the save is retried with back-off.
    fn keep_unsaved(&self, fresh: Session, stored_token: RefreshToken, e: AuthError) -> Session {
        let inner = &self.inner;
        tracing::warn!(
            code = e.code(),
            "the refreshed session could not be saved; kept in memory, retrying"
        );
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        {
            let mut retry = lock(&inner.retry);
            let attempt = retry
                .unsaved
                .as_ref()
                .map_or(0, |u| u.pending.attempt)
                .saturating_add(1);
            *retry = Retry {
                unsaved: Some(Unsaved {
                    stored_token,
                    pending: Pending {
                        attempt,
                        next_at: inner.clock.now() + inner.cfg.backoff(attempt),
                    },
                }),
                ..Retry::default()
            };
        }
        self.set_session(Some(fresh.clone()));
        self.emit(AuthEvent::TokenRefreshed, None);
        self.emit_error(&e);
        self.set_connectivity(Connectivity::Online);
        fresh
    }

    /// Records a transient failure: back off (exponential, with jitter), tell the UI.
    pub(super) fn note_failure(&self, token: &RefreshToken, e: &AuthError) {
        let inner = &self.inner;
        let (attempt, next_at) = {
            let mut retry = lock(&inner.retry);
            retry.attempt = retry.attempt.saturating_add(1);
            let next = inner.clock.now() + inner.cfg.backoff(retry.attempt);
            retry.next_at = Some(next);
            retry.failed_token = Some((token.clone(), e.code().to_owned()));
            (retry.attempt, next)
        };
        self.set_connectivity(Connectivity::Retrying {
            attempt,
            next_retry_at: unix_ms(next_at),
            code: e.code().to_owned(),
        });
        inner.reschedule();
    }
}
