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
    /// How the session was signed in, oldest first (`password`, then `totp`), and when
    /// (Unix seconds), from the token's `amr`.
    pub(super) methods: Vec<String>,
    pub(super) started_at: Option<i64>,
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
        if access_token.is_empty() || refresh_token.is_empty() {
            return Err(AuthError::InvalidResponse(
                "a session without tokens".into(),
            ));
        }
        let user: User = crate::decode::from_value("user", user_raw.clone())?;
        let claims = crate::jwt::decode_claims(access_token.expose_secret()).unwrap_or_default();
        let authentications = claims.authentications();
        let session_id = claims.session_id.unwrap_or_default();
        let started_at = authentications.first().and_then(|a| a.timestamp);
        let methods = authentications.into_iter().map(|a| a.method).collect();
        let aal = claims.aal.unwrap_or_else(|| "aal1".to_owned());
        // Server values: clamped, and no sum on them can overflow.
        let times = crate::expiry::expiry(
            expires_in,
            server_expires_at,
            received_at,
            margin,
            rand::rng().random_range(0..=1000),
        )?;
        let (expires_in, server_expires_at, refresh_at) =
            (times.expires_in, times.server_expires_at, times.refresh_at);
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
            methods,
            started_at,
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
        // `expires_in` is clamped and the sum was checked when the session was built.
        self.received_at
            .checked_add(Duration::from_secs(self.expires_in.unsigned_abs()))
            .unwrap_or(self.received_at)
    }

    pub(super) fn skew_secs(&self) -> i64 {
        self.server_expires_at.map_or(0, |server| {
            server.saturating_sub(unix_secs(self.expires_at()))
        })
    }

    pub(super) fn view(&self) -> SessionView {
        SessionView {
            user: UserView::from(&self.user),
            session_id: self.session_id.clone(),
            expires_at: unix_secs(self.expires_at()),
            aal: self.aal.clone(),
            clock_skew_secs: self.skew_secs(),
            sign_in_methods: self.methods.clone(),
            started_at: self.started_at,
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
        // Signing in is activity: an idle time-out counts from here.
        self.activity();
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
            "refresh_token_already_used" | "validation_failed" => SignOutReason::RefreshFailed,
            _ => SignOutReason::Revoked,
        }
    }

    /// Asks the server whether the session is still alive (`GET /user`). A definitive
    /// answer ends it with `SIGNED_OUT` (`revoked`); a transient failure changes nothing.
    /// `bad_jwt` (the project's JWT secret rotated, or a clock stepped) is not definitive:
    /// the engine refreshes once and asks again, and only the refresh's answer can end the
    /// session.
    pub async fn validate(&self) -> Result<Option<SessionView>, AuthError> {
        if self.current().is_none() {
            return Ok(None);
        }
        let mut epoch = self.inner.epoch.load(Ordering::SeqCst);
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut answer = self.inner.api.get_user(&token).await;
        if matches!(&answer, Err(e) if e.code() == "bad_jwt") {
            tracing::info!("the server refused the access token (bad_jwt); refreshing once");
            let Some(session) = self.current() else {
                return Ok(None);
            };
            let fresh = match self.refresh_from(&session.refresh_token).await {
                Ok(fresh) => fresh,
                Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            epoch = self.inner.epoch.load(Ordering::SeqCst);
            answer = self.inner.api.get_user(&fresh.access_token).await;
            if let Err(e) = &answer
                && e.code() == "bad_jwt"
            {
                // The server took our refresh token but refuses what it just issued: its
                // configuration is broken, the session is not revoked.
                tracing::warn!("a freshly issued access token is refused (bad_jwt)");
                return answer.map(|_| None);
            }
        }
        match answer {
            Ok(user) => {
                self.update_user_locally(user, false).await?;
                Ok(self.session())
            }
            Err(e) if e.ends_session() => {
                self.end_session(SignOutReason::Revoked, Some(epoch)).await;
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
