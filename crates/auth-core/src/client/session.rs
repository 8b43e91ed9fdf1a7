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

impl Session {
    /// What a refresh answer that cannot be read as a whole still gives: the rotated
    /// refresh token (the server has retired this session's), and the access token with
    /// its times when those are readable — else this session's. `None` when the answer
    /// names no refresh token.
    pub(super) fn rotated(
        &self,
        resp: TokenResponse,
        now: SystemTime,
        margin: Duration,
    ) -> Option<Self> {
        if resp.refresh_token.is_empty() {
            return None;
        }
        let kept = Self {
            refresh_token: resp.refresh_token.clone(),
            ..self.clone()
        };
        Some(
            Self::build(
                resp.access_token,
                resp.refresh_token,
                resp.expires_in,
                resp.expires_at,
                now,
                self.user_raw.clone(),
                margin,
            )
            .unwrap_or(kept),
        )
    }
}

impl AuthClient {
    // --------------------------------------------------------------------------- commit

    /// Persists a new session, then publishes it. A session it displaces — the previous
    /// one, or one another process stored meanwhile — is queued for a local revocation
    /// (it would otherwise live on the server). A session that cannot be kept is revoked.
    pub(super) async fn commit_new_session(
        &self,
        session: Session,
        event: AuthEvent,
    ) -> Result<SessionView, AuthError> {
        // Signing in is activity: an idle time-out counts from here.
        self.activity();
        crate::crash::point(CrashPoint::SignInAfterResponse);
        let displaced = match self.inner.slot.commit(session.clone()).await {
            Ok(displaced) => displaced,
            Err(e) => {
                // The server issued this session but it cannot be kept: revoke it.
                self.revoke_orphan(&session).await;
                return Err(e);
            }
        };
        for old in displaced {
            let entry = self.outbox_entry(&old, SignOutScope::Local);
            if let Err(e) = self.push_outbox(entry).await {
                tracing::warn!(
                    code = e.code(),
                    "could not queue the revocation of the replaced session"
                );
            }
        }
        lock(&self.inner.backoff).clear();
        self.inner.reschedule();
        self.emit(event, None);
        self.set_connectivity(Connectivity::Online);
        self.session().ok_or(AuthError::NotSignedIn)
    }

    /// Ends the session here — the stored one removed as `removal` says — and announces
    /// `SIGNED_OUT` once. `None` if there was none, or not the `expected` one.
    pub(super) async fn end_session_as(
        &self,
        reason: SignOutReason,
        removal: Removal,
        expected: Expect<'_>,
    ) -> Option<Session> {
        let (session, removed) = self.inner.slot.remove(removal, expected).await?;
        if let Err(e) = removed {
            tracing::warn!(code = e.code(), "could not remove the stored session");
            self.emit_error(&AuthError::Storage(e));
        }
        lock(&self.inner.backoff).clear();
        self.inner.reschedule();
        self.set_connectivity(Connectivity::Online);
        self.emit(AuthEvent::SignedOut, Some(reason));
        Some(session)
    }

    /// [`Self::end_session_as`]: a user's sign-out removes the stored session whatever it
    /// holds; an end the server decided removes it only if it is still this session.
    pub(super) async fn end_session(
        &self,
        reason: SignOutReason,
        expected: Expect<'_>,
    ) -> Option<Session> {
        let removal = if reason == SignOutReason::User {
            Removal::UserSignOut
        } else {
            Removal::IfSameSession
        };
        self.end_session_as(reason, removal, expected).await
    }

    /// Announces what following the store did (`follow`, a refresh that lost the race):
    /// another process's refresh (`TOKEN_REFRESHED`), sign-in (`SIGNED_IN`) or sign-out
    /// (`SIGNED_OUT`, `user`).
    pub(super) fn announce_followed(&self, followed: &Followed) {
        match followed {
            Followed::Unchanged => return,
            Followed::Adopted { same_session, .. } => {
                let event = if *same_session {
                    AuthEvent::TokenRefreshed
                } else {
                    AuthEvent::SignedIn
                };
                self.emit(event, None);
            }
            Followed::Ended => {
                self.set_connectivity(Connectivity::Online);
                self.emit(AuthEvent::SignedOut, Some(SignOutReason::User));
            }
        }
        lock(&self.inner.backoff).clear();
        self.inner.reschedule();
    }

    /// A session the server issued but that nobody keeps — a refresh that lost the race
    /// to a sign-out or another sign-in, or a sign-in that could not be saved: its
    /// refresh token must not stay valid on the server, so its revocation is queued like a
    /// sign-out's.
    pub(super) async fn revoke_orphan(&self, orphan: &Session) {
        let mut entry = self.outbox_entry(orphan, SignOutScope::Local);
        // The sign-out or sign-in that won has told the app backend already.
        entry.hook = HookStatus::NotNeeded;
        if let Err(e) = self.push_outbox(entry).await {
            tracing::warn!(
                code = e.code(),
                "could not queue the revocation of a session nobody keeps"
            );
        }
    }

    pub(super) fn reason_for(e: &AuthError) -> SignOutReason {
        match e.api_code() {
            Some(ApiCode::SessionExpired) => SignOutReason::Expired,
            Some(ApiCode::RefreshTokenAlreadyUsed | ApiCode::ValidationFailed) => {
                SignOutReason::RefreshFailed
            }
            _ => SignOutReason::Revoked,
        }
    }

    /// Asks the server whether the session is still alive (`GET /user`). A definitive
    /// answer ends it with `SIGNED_OUT` (`revoked`); a transient failure changes nothing.
    /// `bad_jwt` (the project's JWT secret rotated, or a clock stepped) is not definitive:
    /// the engine refreshes once and asks again, and only the refresh's answer can end the
    /// session.
    pub async fn validate(&self) -> Result<Option<SessionView>, AuthError> {
        order::scope(async move {
            let Some(judged) = self.current().map(|s| s.session_id) else {
                return Ok(None);
            };
            let token = match self.access_token().await {
                Ok(t) => t,
                Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let mut answer = self.inner.api.get_user(&token).await;
            if matches!(&answer, Err(e) if e.api_code() == Some(ApiCode::BadJwt)) {
                tracing::info!("the server refused the access token (bad_jwt); refreshing once");
                let Some(session) = self.current() else {
                    return Ok(None);
                };
                let fresh = match self.refresh_from(&session.refresh_token, false).await {
                    Ok(fresh) => fresh,
                    Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => {
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                answer = self.inner.api.get_user(&fresh.access_token).await;
                if let Err(e) = &answer
                    && e.api_code() == Some(ApiCode::BadJwt)
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
                    self.end_session(SignOutReason::Revoked, Expect::Session(&judged))
                        .await;
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The user, fresh from the server: kept with the session (stored too while the store
    /// still holds this session), announced as `USER_UPDATED` when asked.
    pub(super) async fn update_user_locally(
        &self,
        user_raw: Value,
        announce: bool,
    ) -> Result<(), AuthError> {
        let user: User = crate::decode::from_value("user", user_raw.clone())?;
        let changed = self
            .inner
            .slot
            .update(|session| {
                if session.user == user {
                    return false;
                }
                session.user = user;
                session.user_raw = user_raw;
                true
            })
            .await?;
        if changed && announce {
            self.emit(AuthEvent::UserUpdated, None);
        }
        Ok(())
    }
}
