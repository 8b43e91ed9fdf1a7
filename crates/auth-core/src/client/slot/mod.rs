//! The stored session's one owner.
//!
//! Every change of the session goes through [`SessionSlot`]: a sign-in (`commit`), a
//! refresh's answer and the retried save of an unsaved one (`replace_if_unchanged`), every
//! sign-out and server-driven end (`remove`), following what another process stored
//! (`follow`), and the start (`restore`). Each is the same step, written once here: take
//! the slot's locks (the gate in this process, the commit file lock across processes —
//! levels 3 and 4 of `order.rs`), read what the store holds now, compare it with what this
//! process expects, then write or remove, then publish to memory. Persist, then publish:
//! nothing is announced that the store does not hold, except a refreshed session whose
//! save failed — kept in memory as *unsaved*, its superseded token never sent again, the
//! save retried.
//!
//! A sign-out the user asked for is never undone by a restart: when the store cannot
//! delete the session, a non-secret marker (`<profile>.signed-out` in the lock folder, the
//! session's id) makes the next start refuse to restore it and finish the sign-out.

mod kinds;

pub(super) use kinds::*;

use super::marker::SignedOutMarker;
use super::*;
use crate::lock::ProcessLockGuard;
use order::{Entered, Level};

/// Which session in memory a change is meant for: it goes ahead only if that is still the
/// session (compared by content, so that nothing else's change is undone).
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect<'a> {
    /// Whatever session there is.
    Any,
    /// The session while its refresh token is this one (not refreshed or replaced since).
    Token(&'a RefreshToken),
    /// The session while it is this one (`session_id`), refreshed or not.
    Session(&'a str),
}

impl Expect<'_> {
    fn holds(self, current: &Session) -> bool {
        match self {
            Self::Any => true,
            Self::Token(t) => &current.refresh_token == t,
            Self::Session(id) => current.session_id == id,
        }
    }
}

/// Whether a change may go ahead without the cross-process lock (a stuck process holds
/// it): a removal may, a write may not; a read that only changes this process's view
/// (following another process) does not take it at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockPolicy {
    Required,
    BestEffort,
    ThisProcess,
}

/// The stored session, the in-memory one, and the locks that keep them in step.
pub(super) struct SessionSlot {
    store: Store,
    key: String,
    margin: Duration,
    lock_timeout: Duration,
    gate: tokio::sync::Mutex<()>,
    lock: Option<ProcessLock>,
    memory: watch::Sender<Option<Session>>,
    retry: Mutex<StoreRetry>,
    /// Sessions the user signed out whose stored copy the store would not delete.
    marker: SignedOutMarker,
    clock: Arc<dyn Clock>,
    /// For the back-off of store retries.
    cfg: AuthConfig,
}

/// The slot's locks, held.
struct Held<'a> {
    _gate: tokio::sync::MutexGuard<'a, ()>,
    _process: Option<ProcessLockGuard>,
    _order: [Entered; 2],
}

impl SessionSlot {
    pub(super) fn new(cfg: &AuthConfig, store: Store, clock: Arc<dyn Clock>) -> Self {
        let name = cfg.file_name();
        Self {
            store,
            key: cfg.key(StoreKey::Session),
            margin: cfg.refresh_margin,
            lock_timeout: cfg.store_timeout,
            gate: tokio::sync::Mutex::new(()),
            lock: cfg
                .lock_dir
                .as_ref()
                .map(|dir| ProcessLock::new(dir.join(format!("{name}.commit.lock")))),
            memory: watch::channel(None).0,
            retry: Mutex::new(StoreRetry::default()),
            marker: SignedOutMarker::new(
                cfg.lock_dir
                    .as_ref()
                    .map(|dir| dir.join(format!("{name}.signed-out"))),
            ),
            clock,
            cfg: cfg.clone(),
        }
    }

    // ------------------------------------------------------------------------ reading

    /// The session in memory.
    pub(super) fn current(&self) -> Option<Session> {
        self.memory.borrow().clone()
    }

    /// Changes of the in-memory session (the background task wakes on them).
    pub(super) fn subscribe(&self) -> watch::Receiver<Option<Session>> {
        self.memory.subscribe()
    }

    pub(super) fn has_unsaved(&self) -> bool {
        lock(&self.retry).unsaved.is_some()
    }

    /// The refresh token the store holds under an unsaved session, if any: it is this
    /// process's too (superseded, never sent again).
    pub(super) fn unsaved_stored_token(&self) -> Option<RefreshToken> {
        lock(&self.retry)
            .unsaved
            .as_ref()
            .map(|u| u.stored_token.clone())
    }

    /// The next store retry, if one is pending; and which are due at `now`.
    pub(super) fn retry_due(&self) -> Option<SystemTime> {
        let retry = lock(&self.retry);
        [
            retry.unsaved.as_ref().map(|u| u.pending.next_at),
            retry.restore.as_ref().map(|p| p.next_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn restore_due(&self, now: SystemTime) -> bool {
        lock(&self.retry).restore.is_some_and(|p| now >= p.next_at)
    }

    pub(super) fn unsaved_due(&self, now: SystemTime) -> bool {
        lock(&self.retry)
            .unsaved
            .as_ref()
            .is_some_and(|u| now >= u.pending.next_at)
    }

    /// Store retries are tried at once (focus, resume, the network back).
    pub(super) fn retry_now(&self) {
        let now = self.clock.now();
        let mut retry = lock(&self.retry);
        if let Some(u) = retry.unsaved.as_mut() {
            u.pending.next_at = now;
        }
        if let Some(p) = retry.restore.as_mut() {
            p.next_at = now;
        }
    }

    // ------------------------------------------------------------------------ the step

    async fn hold(&self, policy: LockPolicy) -> Result<Held<'_>, AuthError> {
        let commit = order::enter(Level::Commit);
        let gate = self.gate.lock().await;
        let process_order = order::enter(Level::CommitProcess);
        let process = match &self.lock {
            Some(_) if policy == LockPolicy::ThisProcess => None,
            Some(l) => match l.acquire(self.lock_timeout).await {
                Ok(guard) => Some(guard),
                Err(e) if policy == LockPolicy::BestEffort => {
                    tracing::warn!(code = e.code(), "changing the session without the lock");
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(Held {
            _gate: gate,
            _process: process,
            _order: [commit, process_order],
        })
    }

    /// What the store holds now (under the slot's locks), as it is.
    async fn read_raw(&self) -> Result<Option<StoredSession>, StoreError> {
        persist::load::<StoredSession>(&self.store, &self.key).await
    }

    /// The session the store holds for the processes to use: none when the user signed
    /// the stored one out (its signed-out mark: it stays only until its revocation is
    /// queued).
    async fn read(&self) -> Result<Option<StoredSession>, StoreError> {
        let stored = self.read_raw().await?;
        Ok(stored.filter(|s| {
            self.parse(s.clone())
                .map_or(true, |session| !self.marker.holds(&session.session_id))
        }))
    }

    fn parse(&self, stored: StoredSession) -> Result<Session, AuthError> {
        Session::from_stored(stored, self.margin)
    }

    /// Publishes `session` (or none) in memory.
    fn publish(&self, session: Option<Session>) {
        self.memory.send_replace(session);
    }

    fn back_off(&self, pending: &mut Pending) {
        pending.attempt = pending.attempt.saturating_add(1);
        pending.next_at = self.clock.now() + self.cfg.backoff(pending.attempt);
    }

    // ------------------------------------------------------------------------ changes

    /// A new session (a sign-in): stored, then published. Returns the sessions it
    /// displaces — the one in memory, and one another process stored meanwhile that this
    /// one never saw — each still live on the server. A session that cannot be stored is
    /// an error, and nothing changes.
    pub(super) async fn commit(&self, session: Session) -> Result<Vec<Session>, AuthError> {
        let held = self.hold(LockPolicy::Required).await?;
        let current = self.current();
        let overwritten = match self.read_raw().await {
            Ok(Some(stored)) => self.parse(stored).ok().filter(|s| {
                s.session_id != session.session_id
                    && current
                        .as_ref()
                        .is_none_or(|c| c.session_id != s.session_id)
            }),
            _ => None,
        };
        persist::save(&self.store, &self.key, &session.to_stored()).await?;
        crate::crash::point(CrashPoint::SignInAfterPersist);
        *lock(&self.retry) = StoreRetry::default();
        if let Some(signed_out) = &overwritten {
            // A signed-out copy kept for its owed revocation: the caller queues that now.
            self.marker.remove(&signed_out.session_id);
        }
        let displaced = overwritten
            .into_iter()
            .chain(current.filter(|c| c.session_id != session.session_id))
            .collect();
        self.publish(Some(session));
        drop(held);
        Ok(displaced)
    }

    /// Offers a session that replaces the one `expected` names (a refresh's answer, or an
    /// unsaved session whose save is retried): stored and published if this process's
    /// session still has one of the `expected` refresh tokens and the store still holds
    /// one; otherwise this process or the store has moved on, and the offered session is
    /// nobody's.
    pub(super) async fn replace_if_unchanged(
        &self,
        expected: &[RefreshToken],
        fresh: Session,
    ) -> Replaced {
        let commit = order::enter(Level::Commit);
        let gate = self.gate.lock().await;
        if self
            .current()
            .is_none_or(|c| !expected.contains(&c.refresh_token))
        {
            return Replaced::Stale;
        }
        let process_order = order::enter(Level::CommitProcess);
        let process = match &self.lock {
            Some(l) => match l.acquire(self.lock_timeout).await {
                Ok(guard) => Some(guard),
                // The server has rotated the token: the new session is kept (in memory,
                // unsaved) and the old token is never sent again.
                Err(e) => return self.keep_unsaved(expected, fresh, e),
            },
            None => None,
        };
        match self.read().await {
            Ok(Some(stored)) if expected.contains(&stored.refresh_token) => {}
            Ok(other) => {
                tracing::info!(
                    "another process ended or replaced the session meanwhile; following it"
                );
                lock(&self.retry).unsaved = None;
                let held = Held {
                    _gate: gate,
                    _process: process,
                    _order: [commit, process_order],
                };
                return Replaced::Lost(self.follow_locked(other, held).await);
            }
            Err(e) => tracing::warn!(
                code = e.code(),
                "could not re-read the stored session before saving; saving anyway"
            ),
        }
        // The commit lock is held until the write has really returned, so that a late
        // write cannot land over another process's.
        let hold = process.map(|g| Box::new(g) as crate::store::Hold);
        match persist::save_holding(&self.store, &self.key, &fresh.to_stored(), hold).await {
            Ok(()) => {
                crate::crash::point(CrashPoint::RefreshAfterPersist);
                lock(&self.retry).unsaved = None;
                self.publish(Some(fresh.clone()));
                drop((gate, commit, process_order));
                Replaced::Saved
            }
            Err(e) => self.keep_unsaved(expected, fresh, AuthError::Storage(e)),
        }
    }

    /// A session the store could not take: published anyway, marked unsaved with the
    /// token the store still holds; the save is retried with back-off.
    fn keep_unsaved(&self, expected: &[RefreshToken], fresh: Session, e: AuthError) -> Replaced {
        tracing::warn!(
            code = e.code(),
            "the refreshed session could not be saved; kept in memory, retrying"
        );
        let stored_token = self
            .unsaved_stored_token()
            .or_else(|| expected.first().cloned())
            .unwrap_or_else(|| fresh.refresh_token.clone());
        {
            let mut retry = lock(&self.retry);
            let attempt = retry
                .unsaved
                .as_ref()
                .map_or(0, |u| u.pending.attempt)
                .saturating_add(1);
            retry.unsaved = Some(Unsaved {
                stored_token,
                pending: Pending {
                    attempt,
                    next_at: self.clock.now() + self.cfg.backoff(attempt),
                },
            });
        }
        self.publish(Some(fresh));
        Replaced::Unsaved(e)
    }

    /// Retries the save of the unsaved session, if one is due: [`Self::replace_if_unchanged`]
    /// with the session in memory, against the token the store held under it.
    pub(super) async fn retry_unsaved_save(&self) -> Option<Replaced> {
        let unsaved = lock(&self.retry).unsaved.clone()?;
        let Some(session) = self.current() else {
            lock(&self.retry).unsaved = None;
            return None;
        };
        let expected = [unsaved.stored_token.clone(), session.refresh_token.clone()];
        Some(self.replace_if_unchanged(&expected, session).await)
    }

    /// Takes what the store holds now as this process's session: another process's
    /// refresh, sign-in or sign-out. A session this process holds that the store no
    /// longer names is nobody's: the caller revokes it.
    pub(super) async fn follow(&self, ours: &[RefreshToken]) -> Result<Followed, AuthError> {
        // A stored session is written whole, so a read needs no cross-process lock; the
        // write that may follow (a refresh's answer) re-reads under it.
        let held = self.hold(LockPolicy::ThisProcess).await?;
        match self.read().await {
            Ok(Some(stored)) if ours.contains(&stored.refresh_token) => Ok(Followed::Unchanged),
            Ok(other) => {
                if let Some(stored) = &other {
                    // Unreadable data from another process is an error here, not an end.
                    self.parse(stored.clone())?;
                }
                Ok(self.follow_locked(other, held).await)
            }
            Err(e) => Err(AuthError::Storage(e)),
        }
    }

    async fn follow_locked(&self, other: Option<StoredSession>, held: Held<'_>) -> Followed {
        let current = self.current();
        let adopted = other.and_then(|s| self.parse(s).ok());
        let followed = match (adopted, current) {
            (Some(adopted), current) => {
                let same_session = current
                    .as_ref()
                    .is_some_and(|c| c.session_id == adopted.session_id);
                lock(&self.retry).unsaved = None;
                self.publish(Some(adopted.clone()));
                Followed::Adopted {
                    session: Box::new(adopted),
                    same_session,
                }
            }
            (None, Some(current)) => {
                *lock(&self.retry) = StoreRetry::default();
                self.publish(None);
                let _ = current;
                Followed::Ended
            }
            (None, None) => Followed::Unchanged,
        };
        drop(held);
        followed
    }

    /// Changes the session in memory with `change` (a fresh user object): stored too while
    /// the store still holds this session. `false` when there is no session, or `change`
    /// changed nothing.
    pub(super) async fn update(
        &self,
        change: impl FnOnce(&mut Session) -> bool,
    ) -> Result<bool, AuthError> {
        let held = self.hold(LockPolicy::Required).await?;
        let Some(mut session) = self.current() else {
            return Ok(false);
        };
        if !change(&mut session) {
            return Ok(false);
        }
        let ours = matches!(
            self.read().await,
            Ok(Some(stored)) if stored.refresh_token == session.refresh_token
        );
        if ours {
            persist::save(&self.store, &self.key, &session.to_stored()).await?;
        }
        self.publish(Some(session));
        drop(held);
        Ok(true)
    }
}

fn as_store_error(e: AuthError) -> StoreError {
    match e {
        AuthError::Storage(s) => s,
        other => StoreError::Failed(other.to_string()),
    }
}

impl SessionSlot {
    /// Reads the stored session into memory (at start, and again while the store could
    /// not be read). `signed_out` says whether the user had signed it out — its
    /// revocation queued by a sign-out that did not finish, or owed by the signed-out mark
    /// (and then queued by `signed_out` now) — and whether the revocation is queued in the
    /// store: only then is the stored copy removed; otherwise it stays, still marked, as
    /// the durable copy of the tokens the revocation needs.
    pub(in crate::client) async fn restore<F>(
        &self,
        signed_out: impl FnOnce(Session, bool) -> F,
    ) -> Restored
    where
        F: std::future::Future<Output = SignedOut>,
    {
        let held = match self.hold(LockPolicy::BestEffort).await {
            Ok(held) => held,
            Err(e) => return Restored::Unreadable(as_store_error(e)),
        };
        if self.current().is_some() {
            lock(&self.retry).restore = None;
            return Restored::AlreadySignedIn;
        }
        let restored = match self.read_raw().await {
            Ok(Some(stored)) => match self.parse(stored) {
                Ok(session) => {
                    let marked = self.marker.holds(&session.session_id);
                    match signed_out(session.clone(), marked).await {
                        SignedOut::No => {
                            self.publish(Some(session));
                            Restored::Session
                        }
                        SignedOut::Queued => {
                            tracing::info!("finishing a sign-out that was interrupted");
                            let removed = self.store.delete(&self.key).await;
                            if removed.is_ok() {
                                self.marker.remove(&session.session_id);
                            } else {
                                self.marker.add(&session.session_id);
                            }
                            Restored::FinishedSignOut { removed }
                        }
                        SignedOut::Owed => {
                            tracing::warn!(
                                "a signed-out session's revocation cannot be queued yet; \
                                 its stored copy stays, marked signed out"
                            );
                            Restored::FinishedSignOut { removed: Ok(()) }
                        }
                    }
                }
                Err(e) => {
                    let _ = self.store.delete(&self.key).await;
                    Restored::Corrupt(e.to_string())
                }
            },
            Ok(None) => Restored::Empty,
            Err(StoreError::Corrupt(why)) => {
                let _ = self.store.delete(&self.key).await;
                Restored::Corrupt(why)
            }
            Err(e) => {
                let mut retry = lock(&self.retry);
                match retry.restore.as_mut() {
                    Some(p) => self.back_off(p),
                    None => {
                        retry.restore = Some(Pending {
                            attempt: 1,
                            next_at: self.clock.now() + self.cfg.backoff(1),
                        });
                    }
                }
                drop(retry);
                drop(held);
                return Restored::Unreadable(e);
            }
        };
        lock(&self.retry).restore = None;
        drop(held);
        restored
    }
}

impl SessionSlot {
    /// Ends the session in memory and removes the stored one as `removal` says. `None`
    /// when there was no session, or not the `expected` one. A removal the store refused
    /// after a user's sign-out leaves the signed-out marker, so that no start restores the
    /// session.
    pub(in crate::client) async fn remove(
        &self,
        removal: Removal,
        expected: Expect<'_>,
    ) -> Option<(Session, Result<(), StoreError>)> {
        let commit = order::enter(Level::Commit);
        let gate = self.gate.lock().await;
        if !self.current().is_some_and(|c| expected.holds(&c)) {
            return None;
        }
        let process_order = order::enter(Level::CommitProcess);
        // A local sign-out must succeed even if the lock cannot be had (a stuck process).
        let process = match &self.lock {
            Some(l) => l.acquire(self.lock_timeout).await.ok(),
            None => None,
        };
        let session = self.current()?;
        if removal == Removal::KeepOwed {
            self.marker.add(&session.session_id);
            *lock(&self.retry) = StoreRetry::default();
            self.publish(None);
            drop((process, gate, commit, process_order));
            return Some((session, Ok(())));
        }
        let remove = match self.read_raw().await {
            Ok(Some(stored)) => self
                .parse(stored)
                .map_or(true, |s| s.session_id == session.session_id),
            Ok(None) => false,
            Err(_) => true,
        };
        let removed = if remove {
            self.store.delete(&self.key).await
        } else {
            Ok(())
        };
        if removed.is_err() && removal == Removal::UserSignOut {
            self.marker.add(&session.session_id);
        }
        *lock(&self.retry) = StoreRetry::default();
        self.publish(None);
        drop((process, gate, commit, process_order));
        Some((session, removed))
    }

    /// Removes the stored session if the user signed it out and its revocation is queued
    /// now (`queued`: the sessions whose revocations were just queued): its copy was kept
    /// only because the revocation could not be queued.
    pub(in crate::client) async fn remove_signed_out(&self, queued: &HashSet<String>) {
        let Ok(held) = self.hold(LockPolicy::BestEffort).await else {
            return;
        };
        if let Ok(Some(stored)) = self.read_raw().await
            && let Ok(session) = self.parse(stored)
            && queued.contains(&session.session_id)
            && self.marker.holds(&session.session_id)
            && self.store.delete(&self.key).await.is_ok()
        {
            self.marker.remove(&session.session_id);
        }
        drop(held);
    }
}
