//! Store operations retried after the store failed: reading the stored session when the
//! keyring was locked at start, and saving a refreshed session that could not be saved.

use super::*;

impl AuthClient {
    /// The next retry of a store operation, if one is pending.
    pub(super) fn store_retry_due(&self) -> Option<SystemTime> {
        let retry = lock(&self.inner.retry);
        [
            retry.unsaved.as_ref().map(|u| u.pending.next_at),
            retry.restore.as_ref().map(|p| p.next_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the store retries that are due.
    pub(super) async fn run_store_retries(&self, now: SystemTime) {
        let (restore, unsaved) = {
            let retry = lock(&self.inner.retry);
            (
                retry.restore.is_some_and(|p| now >= p.next_at),
                retry
                    .unsaved
                    .as_ref()
                    .is_some_and(|u| now >= u.pending.next_at),
            )
        };
        if restore {
            self.retry_restore().await;
        }
        if unsaved {
            self.retry_unsaved_save().await;
        }
    }

    fn back_off(&self, pending: &mut Pending) {
        pending.attempt = pending.attempt.saturating_add(1);
        pending.next_at = self.inner.clock.now() + self.inner.cfg.backoff(pending.attempt);
    }

    /// Reads the stored session again after it could not be read at start. A session
    /// found now is announced as `SIGNED_IN`: `INITIAL_SESSION` was already sent (without
    /// a session) and listeners take it once; supabase-js likewise announces a session
    /// that appears later (from another tab's storage) as `SIGNED_IN`.
    pub(super) async fn retry_restore(&self) {
        let inner = &self.inner;
        let _commit = inner.commit_gate.lock().await;
        if lock(&inner.retry).restore.is_none() {
            return;
        }
        if self.current().is_some() {
            // Signed in meanwhile: that session is the one kept.
            lock(&inner.retry).restore = None;
            return;
        }
        let process = self.commit_lock().await.ok().flatten();
        let key = inner.cfg.key("session");
        let loaded = persist::load::<StoredSession>(&inner.store, &key).await;
        let mut announce = false;
        match loaded {
            Ok(Some(stored)) => {
                lock(&inner.retry).restore = None;
                match Session::from_stored(stored, inner.cfg.refresh_margin) {
                    Ok(session) if self.sign_out_was_interrupted(&session).await => {
                        tracing::info!("finishing a sign-out that was interrupted");
                        let _ = inner.store.delete(&key).await;
                    }
                    Ok(session) => {
                        inner.epoch.fetch_add(1, Ordering::SeqCst);
                        self.set_session(Some(session));
                        announce = true;
                    }
                    Err(e) => {
                        let _ = inner.store.delete(&key).await;
                        self.emit_error(&AuthError::Storage(StoreError::Corrupt(e.to_string())));
                    }
                }
            }
            Ok(None) => lock(&inner.retry).restore = None,
            Err(StoreError::Corrupt(why)) => {
                lock(&inner.retry).restore = None;
                let _ = inner.store.delete(&key).await;
                self.emit_error(&AuthError::Storage(StoreError::Corrupt(why)));
            }
            Err(e) => {
                tracing::info!(code = e.code(), "the secure storage is still not readable");
                if let Some(p) = lock(&inner.retry).restore.as_mut() {
                    self.back_off(p);
                }
            }
        }
        drop(process);
        if announce {
            tracing::info!("the secure storage is readable again; the session is restored");
            self.emit(AuthEvent::SignedIn, None);
        }
        inner.reschedule();
    }

    /// Saves the refreshed session that could not be saved, if the store still holds the
    /// session it superseded. If another process signed out or in meanwhile, the store
    /// wins: this process follows it, and the unsaved session's revocation is queued.
    pub(super) async fn retry_unsaved_save(&self) {
        let inner = &self.inner;
        let _refresh = inner.refresh_gate.lock().await;
        let _commit = inner.commit_gate.lock().await;
        let Some(unsaved) = lock(&inner.retry).unsaved.clone() else {
            return;
        };
        let Some(session) = self.current() else {
            lock(&inner.retry).unsaved = None;
            return;
        };
        let fail = |e: &AuthError| {
            tracing::warn!(
                code = e.code(),
                "the refreshed session still cannot be saved"
            );
            if let Some(u) = lock(&inner.retry).unsaved.as_mut() {
                self.back_off(&mut u.pending);
            }
            inner.reschedule();
        };
        let process = match self.commit_lock().await {
            Ok(guard) => guard,
            Err(e) => return fail(&e),
        };
        let key = inner.cfg.key("session");
        match persist::load::<StoredSession>(&inner.store, &key).await {
            Ok(Some(stored))
                if stored.refresh_token == unsaved.stored_token
                    || stored.refresh_token == session.refresh_token => {}
            Ok(other) => {
                lock(&inner.retry).unsaved = None;
                let adopted =
                    other.and_then(|s| Session::from_stored(s, inner.cfg.refresh_margin).ok());
                let same = adopted
                    .as_ref()
                    .is_some_and(|a| a.session_id == session.session_id);
                match adopted {
                    Some(adopted) => {
                        inner.epoch.fetch_add(1, Ordering::SeqCst);
                        self.set_session(Some(adopted));
                        let event = if same {
                            AuthEvent::TokenRefreshed
                        } else {
                            AuthEvent::SignedIn
                        };
                        self.emit(event, None);
                    }
                    None => {
                        self.end_session_locked(SignOutReason::User, Removal::IfSameSession)
                            .await;
                    }
                }
                drop(process);
                if !same {
                    self.revoke_orphan(&session).await;
                }
                return;
            }
            Err(e) => return fail(&AuthError::Storage(e)),
        }
        let hold = process.map(|g| Box::new(g) as crate::store::Hold);
        match persist::save_holding(&inner.store, &key, &session.to_stored(), hold).await {
            Ok(()) => {
                tracing::info!("the refreshed session is saved");
                lock(&inner.retry).unsaved = None;
                inner.reschedule();
            }
            Err(e) => fail(&AuthError::Storage(e)),
        }
    }
}
