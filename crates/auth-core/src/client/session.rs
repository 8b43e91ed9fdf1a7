//! The session value, and the one place it changes: commit, end and adopt, the
//! single-flight refresh, validation with the server.

use super::*;

#[derive(Clone)]
pub(super) struct Session {
    pub(super) access_token: AccessToken,
    pub(super) refresh_token: RefreshToken,
    pub(super) expires_in: i64,
    pub(super) server_expires_at: Option<i64>,
    pub(super) received_at: SystemTime,
    pub(super) user: User,
    pub(super) user_raw: Value,
    pub(super) session_id: String,
    pub(super) aal: String,
    pub(super) refresh_at: SystemTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id)
            .field("user", &self.user.id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(super) fn build(
        access_token: AccessToken,
        refresh_token: RefreshToken,
        expires_in: i64,
        server_expires_at: Option<i64>,
        received_at: SystemTime,
        user_raw: Value,
        margin: Duration,
    ) -> Result<Self, AuthError> {
        if access_token.is_empty() || refresh_token.is_empty() || expires_in <= 0 {
            return Err(AuthError::InvalidResponse(
                "a session without tokens or lifetime".into(),
            ));
        }
        let user: User = crate::decode::from_value("user", user_raw.clone())?;
        let claims = crate::jwt::decode_claims(access_token.expose_secret()).unwrap_or_default();
        let session_id = claims.session_id.unwrap_or_default();
        let aal = claims.aal.unwrap_or_else(|| "aal1".to_owned());
        let lifetime = Duration::from_secs(expires_in as u64);
        let margin = margin.min(lifetime / 4);
        let jitter = rand::rng().random_range(0..=margin.as_millis() as u64 / 4);
        let expires_at = received_at + lifetime;
        let refresh_at = expires_at - margin - Duration::from_millis(jitter);
        Ok(Self {
            access_token,
            refresh_token,
            expires_in,
            server_expires_at,
            received_at,
            user,
            user_raw,
            session_id,
            aal,
            refresh_at,
        })
    }

    pub(super) fn from_response(
        r: TokenResponse,
        now: SystemTime,
        margin: Duration,
    ) -> Result<Self, AuthError> {
        Self::build(
            r.access_token,
            r.refresh_token,
            r.expires_in,
            r.expires_at,
            now,
            r.user,
            margin,
        )
    }

    pub(super) fn from_stored(s: StoredSession, margin: Duration) -> Result<Self, AuthError> {
        Self::build(
            s.access_token,
            s.refresh_token,
            s.expires_in,
            s.server_expires_at,
            from_unix_secs(s.received_at),
            s.user,
            margin,
        )
    }

    pub(super) fn to_stored(&self) -> StoredSession {
        StoredSession {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            expires_in: self.expires_in,
            server_expires_at: self.server_expires_at,
            received_at: unix_secs(self.received_at),
            user: self.user_raw.clone(),
        }
    }

    /// Expiry by this device's clock: receipt time + the server's `expires_in`.
    pub(super) fn expires_at(&self) -> SystemTime {
        self.received_at + Duration::from_secs(self.expires_in as u64)
    }

    pub(super) fn skew_secs(&self) -> i64 {
        self.server_expires_at
            .map_or(0, |server| server - unix_secs(self.expires_at()))
    }

    pub(super) fn view(&self) -> SessionView {
        SessionView {
            user: UserView::from(&self.user),
            session_id: self.session_id.clone(),
            expires_at: unix_secs(self.expires_at()),
            aal: self.aal.clone(),
            clock_skew_secs: self.skew_secs(),
        }
    }
}

impl AuthClient {
    // --------------------------------------------------------------------------- commit

    /// Persists a new session, then publishes it. The previous session, if any and
    /// different, is queued for a local revocation (it would otherwise live on the server).
    pub(super) async fn commit_new_session(
        &self,
        session: Session,
        event: AuthEvent,
    ) -> Result<SessionView, AuthError> {
        let inner = &self.inner;
        crate::crash::point("sign_in:after_response");
        let _commit = inner.commit_gate.lock().await;
        let _process = match self.commit_lock().await {
            Ok(guard) => guard,
            Err(e) => {
                // The server issued this session but it cannot be kept: revoke it.
                drop(_commit);
                self.revoke_orphan(&session).await;
                return Err(e);
            }
        };
        // A session another process stored meanwhile (and this one never saw) is replaced
        // too: it must not stay live on the server.
        let overwritten =
            match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await {
                Ok(Some(stored)) => Session::from_stored(stored, inner.cfg.refresh_margin)
                    .ok()
                    .filter(|s| {
                        s.session_id != session.session_id
                            && self.current().is_none_or(|c| c.session_id != s.session_id)
                    }),
                _ => None,
            };
        if let Err(e) = persist::save(
            &inner.store,
            &inner.cfg.key("session"),
            &session.to_stored(),
        )
        .await
        {
            drop(_process);
            drop(_commit);
            self.revoke_orphan(&session).await;
            return Err(e.into());
        }
        crate::crash::point("sign_in:after_persist");
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(other) = overwritten {
            let entry = self.outbox_entry(&other, SignOutScope::Local);
            if let Err(e) = self.push_outbox(entry).await {
                tracing::warn!(
                    code = e.code(),
                    "could not queue the revocation of the replaced session"
                );
            }
        }
        if let Some(old) = self
            .current()
            .filter(|old| old.session_id != session.session_id)
        {
            let entry = self.outbox_entry(&old, SignOutScope::Local);
            if let Err(e) = self.push_outbox(entry).await {
                tracing::warn!(
                    code = e.code(),
                    "could not queue the revocation of the replaced session"
                );
            }
        }
        *lock(&inner.retry) = Retry::default();
        self.set_session(Some(session));
        self.emit(event, None);
        self.set_connectivity(Connectivity::Online);
        self.session().ok_or(AuthError::NotSignedIn)
    }

    /// Removes the session locally (store first), then announces `SIGNED_OUT` once.
    /// Returns the removed session, or `None` if there was none (or another change won).
    pub(super) async fn end_session(
        &self,
        reason: SignOutReason,
        expected_epoch: Option<u64>,
    ) -> Option<Session> {
        let removal = if reason == SignOutReason::User {
            Removal::Always
        } else {
            Removal::IfSameSession
        };
        self.end_session_with(reason, expected_epoch, removal).await
    }

    pub(super) async fn end_session_with(
        &self,
        reason: SignOutReason,
        expected_epoch: Option<u64>,
        removal: Removal,
    ) -> Option<Session> {
        let inner = &self.inner;
        let _commit = inner.commit_gate.lock().await;
        if let Some(epoch) = expected_epoch
            && inner.epoch.load(Ordering::SeqCst) != epoch
        {
            return None;
        }
        // A local sign-out must succeed even if the lock cannot be had (a stuck process).
        let _process = match self.commit_lock().await {
            Ok(guard) => guard,
            Err(e) => {
                tracing::warn!(code = e.code(), "removing the session without the lock");
                None
            }
        };
        self.end_session_locked(reason, removal).await
    }

    /// [`Self::end_session`] with the commit gate and the commit lock held. The stored
    /// session is removed when the user signed out here, or when it is still the one that
    /// ended; a session another process stored since (a new sign-in) is left alone.
    pub(super) async fn end_session_locked(
        &self,
        reason: SignOutReason,
        removal: Removal,
    ) -> Option<Session> {
        let inner = &self.inner;
        let session = self.current()?;
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        let key = inner.cfg.key("session");
        let remove = removal == Removal::Always
            || match persist::load::<StoredSession>(&inner.store, &key).await {
                Ok(Some(stored)) => Session::from_stored(stored, inner.cfg.refresh_margin)
                    .map_or(true, |s| s.session_id == session.session_id),
                Ok(None) => false,
                Err(_) => true,
            };
        if remove && let Err(e) = inner.store.delete(&key).await {
            tracing::warn!(code = e.code(), "could not remove the stored session");
            self.emit_error(&AuthError::Storage(e));
        }
        *lock(&inner.retry) = Retry::default();
        self.set_session(None);
        self.set_connectivity(Connectivity::Online);
        self.emit(AuthEvent::SignedOut, Some(reason));
        Some(session)
    }

    /// The cross-process commit lock (see [`Inner::commit_lock`]); `None` when there is
    /// no lock directory (one process).
    pub(super) async fn commit_lock(
        &self,
    ) -> Result<Option<crate::lock::ProcessLockGuard>, AuthError> {
        match &self.inner.commit_lock {
            Some(l) => Ok(Some(l.acquire(self.inner.cfg.store_timeout).await?)),
            None => Ok(None),
        }
    }

    /// A session the server issued but that nobody keeps — a refresh that lost the race
    /// to a sign-out or another sign-in, or a sign-in that could not be saved: its
    /// refresh token must not stay valid on the server, so its revocation is queued like a
    /// sign-out's.
    pub(super) async fn revoke_orphan(&self, orphan: &Session) {
        let mut entry = self.outbox_entry(orphan, SignOutScope::Local);
        // The sign-out or sign-in that won has told the app backend already.
        entry.hook_pending = false;
        if let Err(e) = self.push_outbox(entry).await {
            tracing::warn!(
                code = e.code(),
                "could not queue the revocation of a session nobody keeps"
            );
        }
    }

    pub(super) fn reason_for(e: &AuthError) -> SignOutReason {
        match e.code() {
            "session_expired" => SignOutReason::Expired,
            "refresh_token_already_used" => SignOutReason::RefreshFailed,
            _ => SignOutReason::Revoked,
        }
    }

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
        match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await {
            Ok(None) => {
                // Another process signed out: follow it (and delete nothing: a sign-in
                // stored since by yet another process is not ours to remove).
                self.end_session_with(SignOutReason::User, Some(epoch), Removal::IfSameSession)
                    .await;
                return Err(AuthError::NotSignedIn);
            }
            Ok(Some(stored)) if stored.refresh_token != session.refresh_token => {
                let adopted = Session::from_stored(stored, inner.cfg.refresh_margin)?;
                if inner.clock.now() < adopted.refresh_at {
                    let _commit = inner.commit_gate.lock().await;
                    if inner.epoch.load(Ordering::SeqCst) == epoch {
                        inner.epoch.fetch_add(1, Ordering::SeqCst);
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
                        drop(_commit);
                        self.note_failure(seen, &e);
                        return Err(e);
                    }
                };
                // Another process may have signed out or signed in while the request ran:
                // only the session we refreshed may be overwritten.
                match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await
                {
                    Ok(Some(stored)) if stored.refresh_token == session.refresh_token => {}
                    Ok(stored) => {
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
                // Persist before publish: if this fails, the old refresh token stays in use
                // (the server answers its reuse with the new token).
                if let Err(e) =
                    persist::save(&inner.store, &inner.cfg.key("session"), &fresh.to_stored()).await
                {
                    drop(_commit);
                    let e = AuthError::Storage(e);
                    self.note_failure(seen, &e);
                    self.emit_error(&e);
                    return Err(e);
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
            Err(e) if e.ends_session() => {
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

    /// Asks the server whether the session is still alive (`GET /user`). A definitive
    /// answer ends it with `SIGNED_OUT` (`revoked`); a transient failure changes nothing.
    pub async fn validate(&self) -> Result<Option<SessionView>, AuthError> {
        if self.current().is_none() {
            return Ok(None);
        }
        let epoch = self.inner.epoch.load(Ordering::SeqCst);
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => return Ok(None),
            Err(e) => return Err(e),
        };
        match self.inner.api.get_user(&token).await {
            Ok(user) => {
                self.update_user_locally(user, false).await?;
                Ok(self.session())
            }
            Err(e) if e.ends_session() || e.code() == "bad_jwt" => {
                let reason = if e.code() == "bad_jwt" {
                    SignOutReason::RefreshFailed
                } else {
                    SignOutReason::Revoked
                };
                self.end_session(reason, Some(epoch)).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn update_user_locally(
        &self,
        user_raw: Value,
        announce: bool,
    ) -> Result<(), AuthError> {
        let user: User = crate::decode::from_value("user", user_raw.clone())?;
        let inner = &self.inner;
        let _commit = inner.commit_gate.lock().await;
        let Some(mut session) = self.current() else {
            return Ok(());
        };
        if session.user == user {
            return Ok(());
        }
        session.user = user;
        session.user_raw = user_raw;
        let _process = self.commit_lock().await?;
        // Written back only while the stored session is still this one: another process
        // may have signed out or refreshed meanwhile (its next refresh re-reads the user).
        let key = inner.cfg.key("session");
        let ours = matches!(
            persist::load::<StoredSession>(&inner.store, &key).await,
            Ok(Some(stored)) if stored.refresh_token == session.refresh_token
        );
        if ours {
            persist::save(&inner.store, &key, &session.to_stored()).await?;
        }
        self.set_session(Some(session));
        if announce {
            self.emit(AuthEvent::UserUpdated, None);
        }
        Ok(())
    }
}
