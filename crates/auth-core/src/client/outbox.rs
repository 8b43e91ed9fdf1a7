//! The durable outbox of revocations still owed to the server: stored (levels 5 and 6 of
//! `order.rs` around every read-modify-write, merged by id across processes), delivered
//! with back-off until the server confirms or says the session is gone. A revocation the
//! store would not take is owed in memory (`unqueued`), retried and shown the same way.

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
            // `others` keeps this session: the backend has nothing to end.
            hook: if self.inner.hook.is_some() && scope != SignOutScope::Others {
                HookStatus::Pending
            } else {
                HookStatus::NotNeeded
            },
        }
    }

    // --------------------------------------------------------------------------- storage

    pub(super) async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let key = self.inner.cfg.key(StoreKey::Outbox);
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

    async fn save_outbox(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let key = self.inner.cfg.key(StoreKey::Outbox);
        if entries.is_empty() {
            self.inner.store.delete(&key).await
        } else {
            persist::save(&self.inner.store, &key, &entries).await
        }
    }

    /// Runs a read-modify-write of the outbox under the in-process gate and, when
    /// configured, the cross-process outbox lock (never across an HTTP call).
    pub(super) async fn edit_outbox(
        &self,
        edit: impl FnOnce(&mut Vec<OutboxEntry>),
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let _order = order::enter(order::Level::Outbox);
        let _gate = self.inner.outbox_gate.lock().await;
        let _process_order = order::enter(order::Level::OutboxProcess);
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

    /// Queues `entry`; if the store will not take it, it is owed in memory instead.
    pub(super) async fn queue_or_keep(&self, entry: OutboxEntry) {
        if let Err(e) = self.push_outbox(entry.clone()).await {
            tracing::warn!(code = e.code(), "could not queue the revocation");
            self.keep_unqueued(entry);
        }
    }

    /// A revocation owed in memory only: delivered, and offered to the store again, by
    /// the background task.
    pub(super) fn keep_unqueued(&self, entry: OutboxEntry) {
        lock(&self.inner.unqueued).push(entry);
        self.inner.reschedule();
    }

    pub(super) async fn remove_outbox_entry(&self, id: &str) -> Result<(), StoreError> {
        self.edit_outbox(|entries| entries.retain(|e| e.id != id))
            .await
            .map(|_| ())
    }

    /// When the next revocation is due (stored or owed in memory).
    pub(super) async fn outbox_next_attempt(&self) -> Option<SystemTime> {
        let stored = self.load_outbox().await.unwrap_or_default();
        stored
            .iter()
            .chain(lock(&self.inner.unqueued).iter())
            .map(|e| e.next_attempt_at)
            .min()
            .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs()))
    }

    /// Every queued revocation is tried at the next round (focus, resume, the network
    /// back), whatever its back-off.
    pub(super) fn outbox_try_now(&self) {
        let now = unix_ms(self.inner.clock.now());
        for e in lock(&self.inner.unqueued).iter_mut() {
            e.next_attempt_at = e.next_attempt_at.min(now);
        }
        self.inner.outbox_now.store(true, Ordering::SeqCst);
    }

    // --------------------------------------------------------------------------- delivery

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
                match self.rotate_entry(&mut entry).await {
                    Ok(true) => {}
                    Ok(false) => return Ok((entry, Delivered::AlreadyGone)),
                    Err(e) => return Err((entry, e)),
                }
            }
            entry.access_token.clone()
        };
        // The app backend first: after the revocation it could no longer check the token.
        if entry.hook.is_pending()
            && let Some(hook) = &self.inner.hook
        {
            match hook.call(&token).await {
                Ok(()) => entry.hook = HookStatus::Told,
                Err(e) if !e.is_retryable() => {
                    // UNAUTHORIZED: the backend holds nothing for this token any more.
                    tracing::info!(code = e.code(), "the logout hook says the token is done");
                    entry.hook = HookStatus::Told;
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
                    entry.hook = HookStatus::GivenUp {
                        code: e.code().to_owned(),
                    };
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
            && matches!(
                e.api_code(),
                Some(ApiCode::TryRefreshToken | ApiCode::BadJwt)
            )
            && entry.scope != SignOutScope::Others
        {
            result = match self.rotate_entry(&mut entry).await {
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

    /// Rotates a queued revocation's tokens (its access token expired) through the one
    /// refresh request ([`AuthClient::refresh_request`]). `Ok(false)`: the server says the
    /// session is already gone, so there is nothing left to revoke.
    async fn rotate_entry(&self, entry: &mut OutboxEntry) -> Result<bool, AuthError> {
        match self.refresh_request(&entry.refresh_token).await {
            Ok(resp) => {
                let now = self.inner.clock.now();
                // Read as the session's refresh reads it; an unreadable lifetime leaves
                // the new access token due at once (it is used right away).
                let expires_at = crate::expiry::expiry(
                    resp.expires_in,
                    resp.expires_at,
                    now,
                    self.inner.cfg.refresh_margin,
                    0,
                )
                .map_or(now, |times| times.expires_at);
                if !resp.refresh_token.is_empty() {
                    entry.refresh_token = resp.refresh_token;
                }
                entry.access_token = resp.access_token;
                entry.access_expires_at = unix_secs(expires_at);
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
        order::scope(async move { self.drain_outbox(true).await }).await
    }

    /// Delivers the due revocations. Entries are read, delivered without holding any lock,
    /// and the results merged back by id, so a concurrent process (or a revocation queued
    /// meanwhile) is never overwritten; delivering one twice is harmless (the server then
    /// says the session is gone, which counts as done). Revocations owed in memory are
    /// offered to the store first, and delivered from memory if it still refuses.
    pub(super) async fn drain_outbox(&self, all: bool) -> Result<usize, AuthError> {
        let all = all || self.inner.outbox_now.swap(false, Ordering::SeqCst);
        let unqueued = self.drain_unqueued(all).await;
        let now = unix_ms(self.inner.clock.now());
        let question = self.pending_switch_outbox_id();
        let (due, waiting): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
            self.load_outbox().await?.into_iter().partition(|e| {
                e.next_attempt_at <= now || (all && question.as_deref() != Some(e.id.as_str()))
            });
        if due.is_empty() {
            return Ok(waiting.len() + unqueued);
        }
        let mut delivered = HashSet::new();
        let mut failed = Vec::new();
        for entry in due {
            match self.deliver(entry).await {
                Ok((done, how)) => {
                    self.report_delivered(&done, how);
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
        Ok(left.len() + unqueued)
    }

    /// The revocations owed in memory: into the store if it takes them now, else the due
    /// ones delivered from memory. They stay listed (for [`Self::pending_revocations`])
    /// until stored or delivered. Returns how many are still owed in memory.
    async fn drain_unqueued(&self, all: bool) -> usize {
        let owed = lock(&self.inner.unqueued).clone();
        if owed.is_empty() {
            return 0;
        }
        let forget = |ids: &HashSet<String>| {
            let mut unqueued = lock(&self.inner.unqueued);
            unqueued.retain(|e| !ids.contains(&e.id));
            unqueued.len()
        };
        let ids: HashSet<String> = owed.iter().map(|e| e.id.clone()).collect();
        let stored = {
            let owed = owed.clone();
            self.edit_outbox(move |entries| entries.extend(owed)).await
        };
        if stored.is_ok() {
            tracing::info!("revocations owed in memory are queued in the store now");
            let left = forget(&ids);
            let sessions: HashSet<String> = owed
                .iter()
                .filter(|e| e.scope != SignOutScope::Others)
                .map(|e| e.session_id.clone())
                .collect();
            self.inner.slot.remove_signed_out(&sessions).await;
            return left;
        }
        let now = unix_ms(self.inner.clock.now());
        let mut delivered = HashSet::new();
        for entry in owed {
            if !all && entry.next_attempt_at > now {
                continue;
            }
            match self.deliver(entry).await {
                Ok((done, how)) => {
                    self.report_delivered(&done, how);
                    delivered.insert(done.id);
                }
                Err((entry, e)) => {
                    let failed = self.failed_entry(entry, &e);
                    if let Some(slot) = lock(&self.inner.unqueued)
                        .iter_mut()
                        .find(|x| x.id == failed.id)
                    {
                        *slot = failed;
                    }
                }
            }
        }
        forget(&delivered)
    }

    fn report_delivered(&self, done: &OutboxEntry, how: Delivered) {
        if how == Delivered::AlreadyGone && done.scope != SignOutScope::Local {
            // Owed no longer, but not done: tell whoever is listening.
            tracing::warn!(
                scope = done.scope.as_str(),
                "a queued sign-out found its own session already ended; the user's other \
                 sessions were not signed out"
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
    }

    /// The revocations still owed to the server: queued in the store, or owed in memory
    /// because the store would not take them.
    pub async fn pending_revocations(&self) -> Result<Vec<PendingRevocation>, AuthError> {
        order::scope(async move {
            let stored = self.load_outbox().await;
            let unqueued = lock(&self.inner.unqueued).clone();
            let stored = match stored {
                Ok(entries) => entries,
                Err(e) if unqueued.is_empty() => return Err(e.into()),
                Err(_) => Vec::new(),
            };
            Ok(stored
                .into_iter()
                .chain(unqueued)
                .map(|e| PendingRevocation {
                    hook_not_told: e.hook.given_up().map(str::to_owned),
                    id: e.id,
                    scope: e.scope,
                    session_id: e.session_id,
                    email: e.user_email,
                    attempts: e.attempts,
                    next_attempt_at: e.next_attempt_at,
                    last_error: e.last_error,
                })
                .collect())
        })
        .await
    }
}
