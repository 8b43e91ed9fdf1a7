//! Sign-out with the three scopes. `local` and `global` end the session here at once —
//! offline too — and owe the server its revocation through the outbox (`outbox.rs`);
//! `others` needs the server, keeps this session, and is queued when the server cannot be
//! reached.

use super::*;
use outbox::Delivered;

impl AuthClient {
    /// Signs out. `local` and `global` remove the local session at once — offline too — and
    /// emit `SIGNED_OUT`; the server revocation is tried at once and otherwise queued in the
    /// outbox and retried until the server confirms. `others` keeps the local session and
    /// needs the server: if it cannot be reached, the revocation is queued and the error
    /// returned.
    pub async fn sign_out(&self, scope: SignOutScope) -> Result<SignOutOutcome, AuthError> {
        order::scope(async move { self.sign_out_because(scope, SignOutReason::User).await }).await
    }

    /// [`AuthClient::sign_out`], with the reason its `SIGNED_OUT` event gives.
    pub(super) async fn sign_out_because(
        &self,
        scope: SignOutScope,
        reason: SignOutReason,
    ) -> Result<SignOutOutcome, AuthError> {
        match scope {
            SignOutScope::Local | SignOutScope::Global => self.sign_out_here(scope, reason).await,
            SignOutScope::Others => self.sign_out_others().await,
        }
    }

    async fn sign_out_here(
        &self,
        scope: SignOutScope,
        reason: SignOutReason,
    ) -> Result<SignOutOutcome, AuthError> {
        // The revocation is made durable before the session is removed: a crash in between
        // leaves a queued revocation for a still-stored session, which the next start
        // finishes; the other order could lose the revocation silently. A store that will
        // not queue it keeps the revocation owed in memory, and the stored session stays,
        // marked signed out, as its durable copy: no process adopts it, and the next start
        // queues its revocation before removing it.
        let (entry, queued) = loop {
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
            // This call delivers it right below; the background task only takes over if
            // that fails (or the process dies first).
            entry.next_attempt_at = unix_ms(self.inner.clock.now() + self.inner.cfg.retry_initial);
            let queued = match self.push_outbox(entry.clone()).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(code = e.code(), "could not queue the revocation");
                    self.emit_error(&AuthError::Storage(e));
                    false
                }
            };
            crate::crash::point(CrashPoint::SignOutAfterQueue);
            // A store that refused may take it now (the model checker found the moment in
            // between): queued then, the session is removed as usual.
            let queued = queued || self.push_outbox(entry.clone()).await.is_ok();
            let removal = if !queued {
                Removal::KeepOwed
            } else if reason == SignOutReason::User {
                Removal::UserSignOut
            } else {
                Removal::IfSameSession
            };
            let expected = Expect::Token(&session.refresh_token);
            if self
                .end_session_as(reason, removal, expected)
                .await
                .is_some()
            {
                break (entry, queued);
            }
            // Refreshed or replaced meanwhile: queue the current tokens instead.
            if queued {
                let _ = self.remove_outbox_entry(&entry.id).await;
            }
        };
        crate::crash::point(CrashPoint::SignOutAfterLocalRemove);
        let delivered = self.deliver(entry.clone()).await;
        crate::crash::point(CrashPoint::SignOutAfterServer);
        let mut hook_error = None;
        if let Ok((done, _)) = &delivered
            && let Some(code) = done.hook.given_up()
        {
            hook_error = Some(ErrorView {
                code: code.to_owned(),
                message: "the app backend's logout endpoint was not told of this sign-out (it \
                          does not exist or kept failing)"
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
                let failed = self.failed_entry(updated.clone(), e);
                if queued {
                    let _ = self
                        .edit_outbox(|entries| {
                            if let Some(slot) = entries.iter_mut().find(|x| x.id == failed.id) {
                                *slot = failed;
                            }
                        })
                        .await;
                } else {
                    // The store would not take it: owed in memory, retried, shown.
                    self.keep_unqueued(failed);
                }
            }
        }
        // Delivered: confirmed, or the session was already gone at the server — all a
        // `local` sign-out asks, and nothing of what `global` asks.
        let done = delivered.is_ok();
        let refused =
            matches!(delivered, Ok((_, Delivered::AlreadyGone))) && scope == SignOutScope::Global;
        Ok(SignOutOutcome {
            scope,
            local_done: true,
            server_confirmed: done && !refused,
            queued: !done,
            hook_error,
            server_not_done: refused.then(SignOutOutcome::already_ended),
        })
    }

    async fn sign_out_others(&self) -> Result<SignOutOutcome, AuthError> {
        let scope = SignOutScope::Others;
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        // This session already gone at the server: nothing was revoked there, and this
        // device is signed out (GoTrue says so); the outcome says both.
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
                self.end_session(SignOutReason::Revoked, Expect::Any).await;
                return Ok(gone());
            }
            Err(e) => return Err(e),
        };
        match self.inner.api.logout(&token, scope).await {
            Ok(()) => Ok(SignOutOutcome {
                scope,
                local_done: false,
                server_confirmed: true,
                queued: false,
                hook_error: None,
                server_not_done: None,
            }),
            Err(e) if e.ends_session() => {
                self.end_session(SignOutReason::Revoked, Expect::Any).await;
                Ok(gone())
            }
            Err(e) => {
                let mut entry = self.outbox_entry(&session, scope);
                entry.access_token = AccessToken::new(String::new());
                entry.refresh_token = RefreshToken::new(String::new());
                entry.last_error = Some(e.code().to_owned());
                self.queue_or_keep(entry).await;
                self.emit_error(&e);
                Err(e)
            }
        }
    }
}
