//! Sign-out with the three scopes, and the durable outbox of revocations still owed to
//! the server (delivered with back-off, merged by id across processes).

use super::*;

/// How a revocation left the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivered {
    /// The server revoked what was asked.
    Confirmed,
    /// The server no longer knew this session (or this device no longer had the one a
    /// queued `others` needs): nothing more can be done. For `local` that is what was
    /// asked; for `global` and `others` the user's other sessions were not touched.
    AlreadyGone,
}

impl AuthClient {
    // --------------------------------------------------------------------------- sign-out

    pub(super) fn outbox_entry(&self, session: &Session, scope: SignOutScope) -> OutboxEntry {
        let now = self.inner.clock.now();
        OutboxEntry {
            id: uuid::Uuid::new_v4().to_string(),
            scope,
            access_token: session.access_token.clone(),
            refresh_token: session.refresh_token.clone(),
            access_expires_at: unix_secs(session.expires_at()),
            session_id: session.session_id.clone(),
            user_email: session.user.email.clone(),
            created_at: unix_secs(now),
            attempts: 0,
            next_attempt_at: unix_ms(now),
            last_error: None,
            hook_not_told: None,
            // `others` keeps this session: the backend has nothing to end.
            hook_pending: self.inner.hook.is_some() && scope != SignOutScope::Others,
        }
    }

    pub(super) async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let key = self.inner.cfg.key("outbox");
        match persist::load::<Vec<OutboxEntry>>(&self.inner.store, &key).await {
            Ok(v) => Ok(v.unwrap_or_default()),
            Err(StoreError::Corrupt(why)) => {
                // Keep every revocation that can still be read: each one is a session
                // that would otherwise stay alive on the server.
                match persist::load_readable_items::<OutboxEntry>(&self.inner.store, &key).await? {
                    Some((kept, dropped)) => {
                        tracing::warn!(
                            kept = kept.len(),
                            dropped,
                            "the revocation outbox was partly unreadable ({why})"
                        );
                        self.save_outbox(&kept).await?;
                        Ok(kept)
                    }
                    None => {
                        tracing::warn!("the revocation outbox was unreadable ({why}); removed");
                        self.inner.store.delete(&key).await?;
                        Ok(Vec::new())
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Runs a read-modify-write of the outbox under the in-process gate and, when
    /// configured, the cross-process outbox lock (never across an HTTP call).
    pub(super) async fn edit_outbox(
        &self,
        edit: impl FnOnce(&mut Vec<OutboxEntry>),
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let _gate = self.inner.outbox_gate.lock().await;
        let _process = match &self.inner.outbox_lock {
            Some(l) => Some(l.acquire(self.inner.cfg.store_timeout).await.map_err(
                |e| match e {
                    AuthError::Storage(s) => s,
                    other => StoreError::Failed(other.to_string()),
                },
            )?),
            None => None,
        };
        let mut entries = self.load_outbox().await?;
        edit(&mut entries);
        self.save_outbox(&entries).await?;
        Ok(entries)
    }

    pub(super) async fn push_outbox(&self, entry: OutboxEntry) -> Result<(), StoreError> {
        self.edit_outbox(|entries| entries.push(entry)).await?;
        self.inner.reschedule();
        Ok(())
    }

    /// Signs out. `local` and `global` remove the local session at once — offline too — and
    /// emit `SIGNED_OUT`; the server revocation is tried at once and otherwise queued in the
    /// outbox and retried until the server confirms. `others` keeps the local session and
    /// needs the server: if it cannot be reached, the revocation is queued and the error
    /// returned.
    pub async fn sign_out(&self, scope: SignOutScope) -> Result<SignOutOutcome, AuthError> {
        self.sign_out_because(scope, SignOutReason::User).await
    }

    /// [`AuthClient::sign_out`], with the reason its `SIGNED_OUT` event gives.
    pub(super) async fn sign_out_because(
        &self,
        scope: SignOutScope,
        reason: SignOutReason,
    ) -> Result<SignOutOutcome, AuthError> {
        match scope {
            SignOutScope::Local | SignOutScope::Global => {
                // The revocation is made durable before the session is removed: a crash in
                // between leaves a queued revocation for a still-stored session, which the
                // next start finishes; the other order could lose the revocation silently.
                let (entry, queued) = loop {
                    let epoch = self.inner.epoch.load(Ordering::SeqCst);
                    let Some(session) = self.current() else {
                        return Ok(SignOutOutcome {
                            scope,
                            local_done: true,
                            server_confirmed: true,
                            queued: false,
                            hook_error: None,
                            server_not_done: None,
                        });
                    };
                    let mut entry = self.outbox_entry(&session, scope);
                    // This call delivers it right below; the background task only takes
                    // over if that fails (or the process dies first).
                    entry.next_attempt_at =
                        unix_ms(self.inner.clock.now() + self.inner.cfg.retry_initial);
                    let queued = match self.push_outbox(entry.clone()).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(code = e.code(), "could not queue the revocation");
                            self.emit_error(&AuthError::Storage(e));
                            false
                        }
                    };
                    crate::crash::point("sign_out:after_queue");
                    if self.end_session(reason, Some(epoch)).await.is_some() {
                        break (entry, queued);
                    }
                    // Refreshed or replaced meanwhile: queue the current tokens instead.
                    if queued {
                        let _ = self.remove_outbox_entry(&entry.id).await;
                    }
                };
                crate::crash::point("sign_out:after_local_remove");
                let delivered = self.deliver(entry.clone()).await;
                crate::crash::point("sign_out:after_server");
                let mut hook_error = None;
                if let Ok((done, _)) = &delivered
                    && let Some(code) = &done.hook_not_told
                {
                    hook_error = Some(ErrorView {
                        code: code.clone(),
                        message: "the app backend's logout endpoint was not told of this \
                                  sign-out (it does not exist or kept failing)"
                            .into(),
                    });
                }
                match &delivered {
                    Ok(_) if queued => {
                        let _ = self.remove_outbox_entry(&entry.id).await;
                    }
                    Ok(_) => {}
                    Err((updated, e)) => {
                        if matches!(e, AuthError::LogoutHook { .. }) {
                            tracing::warn!(code = e.code(), "the logout hook failed; will retry");
                            hook_error = Some(ErrorView::from(e));
                        }
                        if queued {
                            let failed = self.failed_entry(updated.clone(), e);
                            let _ = self
                                .edit_outbox(|entries| {
                                    if let Some(slot) =
                                        entries.iter_mut().find(|x| x.id == failed.id)
                                    {
                                        *slot = failed;
                                    }
                                })
                                .await;
                        }
                    }
                }
                // Delivered: confirmed, or the session was already gone at the server —
                // which is all a `local` sign-out asks, and nothing of what `global` asks.
                let done = delivered.is_ok();
                let refused = matches!(delivered, Ok((_, Delivered::AlreadyGone)))
                    && scope == SignOutScope::Global;
                Ok(SignOutOutcome {
                    scope,
                    local_done: true,
                    server_confirmed: done && !refused,
                    queued: queued && !done,
                    hook_error,
                    server_not_done: refused.then(SignOutOutcome::already_ended),
                })
            }
            SignOutScope::Others => {
                let session = self.current().ok_or(AuthError::NotSignedIn)?;
                // This session already gone at the server: nothing was revoked there, and
                // this device is signed out (GoTrue says so); the outcome says both.
                let gone = || SignOutOutcome {
                    scope,
                    local_done: true,
                    server_confirmed: false,
                    queued: false,
                    hook_error: None,
                    server_not_done: Some(SignOutOutcome::already_ended()),
                };
                let token = match self.access_token().await {
                    Ok(token) => token,
                    Err(e) if e.ends_session() => {
                        self.end_session(SignOutReason::Revoked, None).await;
                        return Ok(gone());
                    }
                    Err(e) => return Err(e),
                };
                match self.inner.api.logout(&token, SignOutScope::Others).await {
                    Ok(()) => Ok(SignOutOutcome {
                        scope,
                        local_done: false,
                        server_confirmed: true,
                        queued: false,
                        hook_error: None,
                        server_not_done: None,
                    }),
                    Err(e) if e.ends_session() => {
                        self.end_session(SignOutReason::Revoked, None).await;
                        Ok(gone())
                    }
                    Err(e) => {
                        let mut entry = self.outbox_entry(&session, SignOutScope::Others);
                        entry.access_token = AccessToken::new(String::new());
                        entry.refresh_token = RefreshToken::new(String::new());
                        entry.last_error = Some(e.code().to_owned());
                        if let Err(store_err) = self.push_outbox(entry).await {
                            tracing::warn!(
                                code = store_err.code(),
                                "could not queue the revocation"
                            );
                        }
                        self.emit_error(&e);
                        Err(e)
                    }
                }
            }
        }
    }

    pub(super) async fn remove_outbox_entry(&self, id: &str) -> Result<(), StoreError> {
        self.edit_outbox(|entries| entries.retain(|e| e.id != id))
            .await
            .map(|_| ())
    }

    pub(super) async fn save_outbox(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let key = self.inner.cfg.key("outbox");
        if entries.is_empty() {
            self.inner.store.delete(&key).await
        } else {
            persist::save(&self.inner.store, &key, &entries).await
        }
    }

    /// Sends one revocation. `Ok` when the server confirmed, or said the session is gone
    /// (nothing more can be done: [`Delivered::AlreadyGone`]).
    pub(super) async fn deliver(
        &self,
        mut entry: OutboxEntry,
    ) -> Result<(OutboxEntry, Delivered), (OutboxEntry, AuthError)> {
        let api = &self.inner.api;
        let token = if entry.scope == SignOutScope::Others {
            // Revoking the others needs this device's live session; without one there is
            // nothing left to protect (a later local/global sign-out superseded it).
            match self.current() {
                None => return Ok((entry, Delivered::AlreadyGone)),
                Some(s) if s.session_id != entry.session_id => {
                    return Ok((entry, Delivered::AlreadyGone));
                }
                Some(_) => match self.access_token().await {
                    Ok(t) => t,
                    Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => {
                        return Ok((entry, Delivered::AlreadyGone));
                    }
                    Err(e) => return Err((entry, e)),
                },
            }
        } else {
            let now = unix_secs(self.inner.clock.now());
            if now.saturating_add(30) >= entry.access_expires_at {
                // The access token expired meanwhile: refresh first, then revoke.
                match self.refresh_entry(&mut entry).await {
                    Ok(true) => {}
                    Ok(false) => return Ok((entry, Delivered::AlreadyGone)),
                    Err(e) => return Err((entry, e)),
                }
            }
            entry.access_token.clone()
        };
        // The app backend first: after the revocation it could no longer check the token.
        if entry.hook_pending
            && let Some(hook) = &self.inner.hook
        {
            match hook.call(&token).await {
                Ok(()) => entry.hook_pending = false,
                Err(e) if !e.is_retryable() => {
                    // UNAUTHORIZED: the backend holds nothing for this token any more.
                    tracing::info!(code = e.code(), "the logout hook says the token is done");
                    entry.hook_pending = false;
                }
                // A hook that does not exist (404/410), or that failed too often, may not
                // keep a signed-out session alive at the auth server.
                Err(e)
                    if matches!(
                        e,
                        AuthError::LogoutHook {
                            status: Some(404 | 410),
                            ..
                        }
                    ) || self.hook_exhausted(&entry, &e) =>
                {
                    tracing::warn!(
                        code = e.code(),
                        attempts = entry.attempts.saturating_add(1),
                        "the logout hook was not told; revoking at the auth server anyway"
                    );
                    self.inner
                        .metrics
                        .logout_hooks_skipped
                        .fetch_add(1, Ordering::SeqCst);
                    entry.hook_pending = false;
                    entry.hook_not_told = Some(e.code().to_owned());
                }
                Err(e) => return Err((entry, e)),
            }
        }
        let mut result = api
            .logout(&token, entry.scope)
            .await
            .map(|()| Delivered::Confirmed);
        // The backend judged the access token expired (clocks differ), or cannot check its
        // signature any more (`bad_jwt`: a rotated JWT secret): that says nothing about the
        // session. Refresh, retry once.
        if let Err(e) = &result
            && matches!(e.code(), "try_refresh_token" | "bad_jwt")
            && entry.scope != SignOutScope::Others
        {
            result = match self.refresh_entry(&mut entry).await {
                Ok(true) => api
                    .logout(&entry.access_token.clone(), entry.scope)
                    .await
                    .map(|()| Delivered::Confirmed),
                Ok(false) => Ok(Delivered::AlreadyGone),
                Err(e) => Err(e),
            };
        }
        match result {
            Ok(delivered) => Ok((entry, delivered)),
            Err(e) if e.session_already_gone() => Ok((entry, Delivered::AlreadyGone)),
            Err(e) => Err((entry, e)),
        }
    }

    /// Whether the logout hook has had its chances for this revocation: the attempts,
    /// and, for a hook that gave no answer at all, the patience too (a short outage must
    /// not skip it; a hook that is gone for good must not keep the session alive).
    fn hook_exhausted(&self, entry: &OutboxEntry, e: &AuthError) -> bool {
        let cfg = &self.inner.cfg;
        if entry.attempts.saturating_add(1) < cfg.logout_hook_max_attempts {
            return false;
        }
        let answered = matches!(
            e,
            AuthError::LogoutHook {
                status: Some(_),
                ..
            }
        );
        let age = unix_secs(self.inner.clock.now()).saturating_sub(entry.created_at);
        answered || age >= i64::try_from(cfg.logout_hook_patience.as_secs()).unwrap_or(i64::MAX)
    }

    /// Refreshes a queued revocation's tokens. `Ok(false)`: the server says the session is
    /// already gone, so there is nothing left to revoke.
    pub(super) async fn refresh_entry(&self, entry: &mut OutboxEntry) -> Result<bool, AuthError> {
        match self.inner.api.refresh(&entry.refresh_token.clone()).await {
            Ok(resp) => {
                entry.access_token = resp.access_token;
                entry.refresh_token = resp.refresh_token;
                entry.access_expires_at = unix_secs(self.inner.clock.now()).saturating_add(
                    resp.expires_in
                        .clamp(0, crate::expiry::MAX_TOKEN_LIFETIME_SECS),
                );
                Ok(true)
            }
            Err(e) if e.refuses_refresh_token() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A failed delivery: count it, note the error, back off (exponential, with jitter).
    pub(super) fn failed_entry(&self, mut entry: OutboxEntry, e: &AuthError) -> OutboxEntry {
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last_error = Some(e.code().to_owned());
        entry.next_attempt_at =
            unix_ms(self.inner.clock.now() + self.inner.cfg.backoff(entry.attempts));
        entry
    }

    /// Sends every queued sign-out now, whatever its back-off (the revocation of an
    /// account switch still waiting for the user's answer stays until then); returns how
    /// many are still pending.
    pub async fn flush_outbox(&self) -> Result<usize, AuthError> {
        self.drain_outbox(true).await
    }

    /// Delivers the due revocations. Entries are read, delivered without holding any lock,
    /// and the results merged back by id, so a concurrent process (or a revocation queued
    /// meanwhile) is never overwritten; delivering one twice is harmless (the server then
    /// says the session is gone, which counts as done).
    pub(super) async fn drain_outbox(&self, all: bool) -> Result<usize, AuthError> {
        let now = unix_ms(self.inner.clock.now());
        let question = self.pending_switch_outbox_id();
        let (due, waiting): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
            self.load_outbox().await?.into_iter().partition(|e| {
                e.next_attempt_at <= now || (all && question.as_deref() != Some(e.id.as_str()))
            });
        if due.is_empty() {
            return Ok(waiting.len());
        }
        let mut delivered = HashSet::new();
        let mut failed = Vec::new();
        for entry in due {
            match self.deliver(entry).await {
                Ok((done, how)) => {
                    if how == Delivered::AlreadyGone && done.scope != SignOutScope::Local {
                        // Owed no longer, but not done: tell whoever is listening.
                        tracing::warn!(
                            scope = done.scope.as_str(),
                            "a queued sign-out found its own session already ended; the \
                             user's other sessions were not signed out"
                        );
                        let why = SignOutOutcome::already_ended();
                        self.emit_error(&AuthError::Api {
                            status: 403,
                            code: why.code,
                            message: why.message,
                        });
                    } else {
                        tracing::info!(scope = done.scope.as_str(), "revocation delivered");
                    }
                    delivered.insert(done.id);
                }
                Err((entry, e)) => failed.push(self.failed_entry(entry, &e)),
            }
        }
        let left = self
            .edit_outbox(|entries| {
                entries.retain(|e| !delivered.contains(&e.id));
                for update in failed {
                    if let Some(e) = entries.iter_mut().find(|e| e.id == update.id) {
                        *e = update;
                    }
                }
            })
            .await?;
        Ok(left.len())
    }

    /// The revocations still owed to the server.
    pub async fn pending_revocations(&self) -> Result<Vec<PendingRevocation>, AuthError> {
        Ok(self
            .load_outbox()
            .await?
            .into_iter()
            .map(|e| PendingRevocation {
                id: e.id,
                scope: e.scope,
                session_id: e.session_id,
                email: e.user_email,
                attempts: e.attempts,
                next_attempt_at: e.next_attempt_at,
                last_error: e.last_error,
                hook_not_told: e.hook_not_told,
            })
            .collect())
    }
}
