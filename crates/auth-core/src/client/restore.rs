//! The start, and the store's retries: restoring the stored session (also again when the
//! keyring was locked at start), and saving a refreshed session that could not be saved.

use super::*;

impl AuthClient {
    /// Restores the stored session (offline too), announces it as `INITIAL_SESSION`, and
    /// starts the background task, whose first round tries every queued revocation. A
    /// corrupt stored session is reported and removed. A store that cannot be read
    /// (locked, unavailable) is an error here and is read again later (back-off, and on
    /// [`Self::nudge`]); a session found then is announced as `SIGNED_IN`. A session the
    /// user had signed out (its revocation still queued, or the signed-out marker left by
    /// a store that would not delete it) is not restored: the sign-out is finished instead.
    pub async fn start(&self) -> Result<Option<SessionView>, AuthError> {
        order::scope(async move {
            let failure = match self.restore_stored().await {
                Restored::Corrupt(why) => Some(AuthError::Storage(StoreError::Corrupt(why))),
                Restored::Unreadable(e) => Some(AuthError::Storage(e)),
                Restored::FinishedSignOut {
                    removed: Err(e), ..
                } => Some(AuthError::Storage(e)),
                _ => None,
            };
            if let Some(e) = &failure {
                tracing::warn!(code = e.code(), "could not restore the stored session");
                self.emit_error(e);
            }
            self.emit(AuthEvent::InitialSession, None);
            // A start is a new chance for revocations an earlier run could not deliver:
            // the first round tries them whatever their back-off.
            self.outbox_try_now();
            self.spawn_scheduler();
            match failure {
                Some(e) => Err(e),
                None => Ok(self.session()),
            }
        })
        .await
    }

    /// Reads the stored session into memory, finishing an interrupted sign-out.
    async fn restore_stored(&self) -> Restored {
        let restored = self
            .inner
            .slot
            .restore(|session, marked| async move { self.signed_out(&session, marked).await })
            .await;
        self.inner.reschedule();
        restored
    }

    /// Whether the user had signed `session` out: a sign-out that did not finish (its
    /// revocation queued), or the signed-out mark (its revocation queued now if the store
    /// takes it, else owed in memory).
    async fn signed_out(&self, session: &Session, marked: bool) -> SignedOut {
        if self.sign_out_was_interrupted(session).await {
            return SignedOut::Queued;
        }
        if !marked {
            return SignedOut::No;
        }
        let entry = self.outbox_entry(session, SignOutScope::Local);
        match self.push_outbox(entry.clone()).await {
            Ok(()) => SignedOut::Queued,
            Err(e) => {
                tracing::warn!(code = e.code(), "could not queue the owed revocation");
                self.keep_unqueued(entry);
                SignedOut::Owed
            }
        }
    }

    /// Whether the outbox holds a `local` or `global` revocation of this very session.
    async fn sign_out_was_interrupted(&self, session: &Session) -> bool {
        !session.session_id.is_empty()
            && self.load_outbox().await.is_ok_and(|entries| {
                entries
                    .iter()
                    .any(|e| e.scope != SignOutScope::Others && e.session_id == session.session_id)
            })
    }

    /// Runs the store retries that are due.
    pub(super) async fn run_store_retries(&self, now: SystemTime) {
        if self.inner.slot.restore_due(now) {
            self.retry_restore().await;
        }
        if self.inner.slot.unsaved_due(now) {
            self.retry_unsaved_save().await;
        }
    }

    /// Reads the stored session again after it could not be read at start. A session
    /// found now is announced as `SIGNED_IN`: `INITIAL_SESSION` was already sent (without
    /// a session) and listeners take it once; supabase-js likewise announces a session
    /// that appears later (from another tab's storage) as `SIGNED_IN`.
    async fn retry_restore(&self) {
        match self.restore_stored().await {
            Restored::Session => {
                tracing::info!("the secure storage is readable again; the session is restored");
                self.emit(AuthEvent::SignedIn, None);
            }
            Restored::Corrupt(why) => {
                self.emit_error(&AuthError::Storage(StoreError::Corrupt(why)));
            }
            Restored::Unreadable(e) => {
                tracing::info!(code = e.code(), "the secure storage is still not readable");
            }
            _ => {}
        }
    }

    /// Saves the refreshed session that could not be saved. If another process signed
    /// out or in meanwhile, the store wins: this process follows it, and the unsaved
    /// session's revocation is queued. Under the refresh gate: no refresh runs meanwhile.
    async fn retry_unsaved_save(&self) {
        let _order = order::enter(order::Level::Refresh);
        let _refresh = self.inner.refresh_gate.lock().await;
        let unsaved = self.current();
        match self.inner.slot.retry_unsaved_save().await {
            Some(Replaced::Saved) => tracing::info!("the refreshed session is saved"),
            Some(Replaced::Unsaved(e)) => {
                tracing::warn!(
                    code = e.code(),
                    "the refreshed session still cannot be saved"
                );
            }
            Some(Replaced::Lost(followed)) => {
                self.announce_followed(&followed);
                let same = matches!((&followed, &unsaved), (Followed::Adopted { session, .. }, Some(u))
                    if session.session_id == u.session_id);
                if !same && let Some(orphan) = unsaved {
                    self.revoke_orphan(&orphan).await;
                }
            }
            Some(Replaced::Stale) | None => {}
        }
        self.inner.reschedule();
    }
}
