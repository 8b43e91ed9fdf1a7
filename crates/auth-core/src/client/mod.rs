//! The session engine: one [`AuthClient`] per app.
//!
//! It owns the session, persists it before announcing it, refreshes it once however many
//! callers ask (and once across processes), keeps it through transient failures, ends it
//! only on the server's definitive word, signs out locally at once, and owes the server its
//! revocations in a durable outbox. One background task sleeps until the next due time.

//!
//! The facade is here (construction, state, events); each job has its own file:
//! `session.rs` (the session value, commit and end, validation), `refresh.rs` (the
//! single-flight refresh, unsaved sessions), `flows.rs` (sign-in and the PKCE flows),
//! `links.rs` (deep links and the account switch they may ask for), `account.rs` (user,
//! MFA, "Your devices"), `outbox.rs` (sign-out and the revocation outbox), `restore.rs`
//! (reading the stored session again when the keyring was locked), `scheduler.rs` (the
//! background task).

mod account;
mod flows;
mod idle;
mod links;
mod outbox;
mod refresh;
mod restore;
mod scheduler;
mod session;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::backend::AuthBackend;
use crate::backend::{
    MfaEnrollment, SignOutScope, SignUpResponse, TokenResponse, User, UserUpdate,
};
use crate::callback::{self, Callback};
use crate::clock::{Clock, SystemClock, from_unix_secs, unix_ms, unix_secs};
use crate::config::{AuthConfig, Metrics};
use crate::error::AuthError;
use crate::lock::ProcessLock;
use crate::model::{
    AuthEvent, AuthStateChange, Connectivity, ErrorView, PendingRevocation, SessionView,
    SignOutOutcome, SignOutReason, SignUpOutcome, UserView,
};
use crate::persist::{self, FlowKind, OutboxEntry, PendingFlow, StoredSession};
use crate::secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};
use crate::store::{SecretStore, Store, StoreError};

use session::Session;

#[derive(Debug, Clone)]
struct State {
    session: Option<Session>,
    connectivity: Connectivity,
}

/// Whether ending a session removes the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// The user signed out in this process: the device is signed out.
    Always,
    /// Only if the stored session is still the one that ended (or unreadable).
    IfSameSession,
}

#[derive(Debug, Default)]
struct Retry {
    attempt: u32,
    next_at: Option<SystemTime>,
    /// The refresh token whose refresh failed, and the error code: callers that come in
    /// before `next_at` with the same token get this answer without a request.
    failed_token: Option<(RefreshToken, String)>,
    /// A refreshed session kept in memory only (its save failed or timed out).
    unsaved: Option<Unsaved>,
    /// The stored session could not be read at start (a locked keyring): read it again.
    restore: Option<Pending>,
}

/// A refreshed session the store does not hold yet. Its superseded refresh token is never
/// sent again; the save is retried with back-off (at once on [`AuthClient::nudge`]).
#[derive(Debug, Clone)]
struct Unsaved {
    /// The refresh token the store still holds (superseded by the live session's).
    stored_token: RefreshToken,
    pending: Pending,
}

/// A retry of a store operation: how many attempts failed, when to try again.
#[derive(Debug, Clone, Copy)]
struct Pending {
    attempt: u32,
    next_at: SystemTime,
}

struct Inner {
    cfg: AuthConfig,
    api: Arc<dyn AuthBackend>,
    hook: Option<crate::hook::LogoutHook>,
    store: Store,
    clock: Arc<dyn Clock>,
    state: watch::Sender<State>,
    events: broadcast::Sender<AuthStateChange>,
    /// Serialises refreshes (single flight).
    refresh_gate: tokio::sync::Mutex<()>,
    /// Serialises the short commit sections (store write + publish).
    commit_gate: tokio::sync::Mutex<()>,
    outbox_gate: tokio::sync::Mutex<()>,
    /// Bumped whenever the session is replaced or removed; a refresh that started under
    /// another epoch is discarded.
    epoch: AtomicU64,
    retry: Mutex<Retry>,
    used_links: Mutex<HashSet<String>>,
    /// Serialises edits of the stored flows (a read-modify-write).
    flows_gate: tokio::sync::Mutex<()>,
    /// A link's session for another user, waiting for the user's answer.
    pending_switch: Mutex<Option<links::PendingSwitch>>,
    /// Bumped whenever something changes that affects the schedule; the background task
    /// wakes on a change it has not seen.
    wake: watch::Sender<u64>,
    stopped: Arc<AtomicBool>,
    /// Held across a refresh (the request included): one refresh per device at a time.
    lock: Option<ProcessLock>,
    /// Held only around a read-compare-write of the stored session, never across a
    /// request: every write or removal of the session takes it, so a refresh can check
    /// that the session it refreshed is still the stored one before saving the result.
    commit_lock: Option<ProcessLock>,
    outbox_lock: Option<ProcessLock>,
    metrics: Metrics,
    scheduler_started: AtomicBool,
    idle: Mutex<idle::Idle>,
}

impl Inner {
    fn reschedule(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.reschedule();
    }
}

/// Builds an [`AuthClient`] (see [`AuthClient::builder`]).
pub struct AuthClientBuilder {
    cfg: AuthConfig,
    store: Arc<dyn SecretStore>,
    clock: Option<Arc<dyn Clock>>,
    backend: Option<Arc<dyn AuthBackend>>,
}

impl std::fmt::Debug for AuthClientBuilder {
    /// The store is left out: a store's own `Debug` may show what it holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClientBuilder")
            .field("url", &self.cfg.url)
            .field("profile", &self.cfg.profile)
            .finish_non_exhaustive()
    }
}

impl AuthClientBuilder {
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The auth server: a new backend needs no change to the engine.
    pub fn backend(mut self, backend: Arc<dyn AuthBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    pub fn build(self) -> Result<AuthClient, AuthError> {
        let backend = match self.backend {
            Some(b) => b,
            None => crate::backend::connect(&self.cfg)?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        AuthClient::from_parts(self.cfg, self.store, clock, backend)
    }
}

/// The engine. Cheap to clone; all clones share one session.
#[derive(Clone)]
pub struct AuthClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("url", &self.inner.cfg.url)
            .field("profile", &self.inner.cfg.profile)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuthClient {
    /// An engine with the real clock.
    pub fn new(cfg: AuthConfig, store: Arc<dyn SecretStore>) -> Result<Self, AuthError> {
        Self::with_clock(cfg, store, Arc::new(SystemClock))
    }

    /// An engine with an injected clock (tests use [`crate::ManualClock`]).
    pub fn with_clock(
        cfg: AuthConfig,
        store: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        Self::builder(cfg, store).clock(clock).build()
    }

    /// An engine with any of its dependencies given: the clock, and the auth server (any
    /// [`AuthBackend`]; by default the one `cfg.backend` names, see
    /// [`crate::backend::connect`]).
    pub fn builder(cfg: AuthConfig, store: Arc<dyn SecretStore>) -> AuthClientBuilder {
        AuthClientBuilder {
            cfg,
            store,
            clock: None,
            backend: None,
        }
    }

    fn from_parts(
        cfg: AuthConfig,
        store: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
        api: Arc<dyn AuthBackend>,
    ) -> Result<Self, AuthError> {
        url::Url::parse(&cfg.callback_base).map_err(|e| {
            AuthError::Config(format!("callback base {:?}: {e}", cfg.callback_base))
        })?;
        let name: String = cfg
            .profile
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let lock = cfg
            .lock_dir
            .as_ref()
            .map(|dir| ProcessLock::new(dir.join(format!("{name}.lock"))));
        let commit_lock = cfg
            .lock_dir
            .as_ref()
            .map(|dir| ProcessLock::new(dir.join(format!("{name}.commit.lock"))));
        let outbox_lock = cfg
            .lock_dir
            .as_ref()
            .map(|dir| ProcessLock::new(dir.join(format!("{name}.outbox.lock"))));
        let (state, _) = watch::channel(State {
            session: None,
            connectivity: Connectivity::Online,
        });
        let (events, _) = broadcast::channel(256);
        let idle_start = clock.now();
        let hook = match &cfg.logout_hook_url {
            Some(url) => Some(crate::hook::LogoutHook::new(
                url,
                cfg.http_timeout,
                &cfg.user_agent,
            )?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store: Store::new(store, cfg.store_timeout),
                hook,
                cfg,
                api,
                clock,
                state,
                events,
                refresh_gate: tokio::sync::Mutex::new(()),
                commit_gate: tokio::sync::Mutex::new(()),
                outbox_gate: tokio::sync::Mutex::new(()),
                epoch: AtomicU64::new(0),
                retry: Mutex::new(Retry::default()),
                used_links: Mutex::new(HashSet::new()),
                pending_switch: Mutex::new(None),
                flows_gate: tokio::sync::Mutex::new(()),
                wake: watch::channel(0).0,
                stopped: Arc::new(AtomicBool::new(false)),
                lock,
                commit_lock,
                outbox_lock,
                metrics: Metrics::default(),
                scheduler_started: AtomicBool::new(false),
                idle: Mutex::new(idle::Idle::new(idle_start)),
            }),
        })
    }

    /// The auth server behind this engine.
    pub fn backend(&self) -> &dyn AuthBackend {
        self.inner.api.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A refreshed session is held in memory because the store could not save it yet
    /// (its save is being retried).
    pub fn has_unsaved_session(&self) -> bool {
        lock(&self.inner.retry).unsaved.is_some()
    }

    /// The settings this engine runs with.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.cfg
    }

    /// Auth events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AuthStateChange> {
        self.inner.events.subscribe()
    }

    /// The current session, as a UI sees it.
    pub fn session(&self) -> Option<SessionView> {
        self.inner
            .state
            .borrow()
            .session
            .as_ref()
            .map(Session::view)
    }

    pub fn connectivity(&self) -> Connectivity {
        self.inner.state.borrow().connectivity.clone()
    }

    /// Restores the stored session (offline too), announces it as `INITIAL_SESSION`, and
    /// starts the background task. A corrupt stored session is reported and removed. A
    /// store that cannot be read (locked, unavailable) is an error here and is read again
    /// later (back-off, and on [`Self::nudge`]); a session found then is announced as
    /// `SIGNED_IN`.
    pub async fn start(&self) -> Result<Option<SessionView>, AuthError> {
        let inner = &self.inner;
        let mut failure = None;
        // Under the commit lock: another process may be writing the session right now (a
        // half-written chunked entry is not corrupt), or signing in after a sign-out we
        // are about to finish.
        let process = match self.commit_lock().await {
            Ok(guard) => guard,
            Err(e) => {
                tracing::warn!(code = e.code(), "restoring the session without the lock");
                None
            }
        };
        match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await {
            Ok(Some(stored)) => match Session::from_stored(stored, inner.cfg.refresh_margin) {
                Ok(session) if self.sign_out_was_interrupted(&session).await => {
                    // A sign-out queued its revocation, then the process ended before it
                    // removed the session: finish it (the revocation is still queued).
                    tracing::info!("finishing a sign-out that was interrupted");
                    if let Err(e) = inner.store.delete(&inner.cfg.key("session")).await {
                        failure = Some(AuthError::Storage(e));
                    }
                }
                Ok(session) => self.set_session(Some(session)),
                Err(e) => {
                    let _ = inner.store.delete(&inner.cfg.key("session")).await;
                    failure = Some(AuthError::Storage(StoreError::Corrupt(e.to_string())));
                }
            },
            Ok(None) => {}
            Err(StoreError::Corrupt(why)) => {
                let _ = inner.store.delete(&inner.cfg.key("session")).await;
                failure = Some(AuthError::Storage(StoreError::Corrupt(why)));
            }
            Err(e) => {
                // A locked or unavailable keyring: not "signed out" for good. Read it again
                // on a backing-off timer and on every nudge (focus).
                lock(&inner.retry).restore = Some(Pending {
                    attempt: 1,
                    next_at: inner.clock.now() + inner.cfg.backoff(1),
                });
                failure = Some(AuthError::Storage(e));
            }
        }
        drop(process);
        if let Some(e) = &failure {
            tracing::warn!(code = e.code(), "could not restore the stored session");
            self.emit_error(e);
        }
        self.emit(AuthEvent::InitialSession, None);
        self.spawn_scheduler();
        match failure {
            Some(e @ AuthError::Storage(StoreError::Corrupt(_)))
            | Some(e @ AuthError::Storage(_)) => Err(e),
            _ => Ok(self.session()),
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

    /// Stops the background task (also done when the last clone is dropped).
    pub fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.reschedule();
    }

    /// Wakes the background task to re-check everything now (after resume from sleep,
    /// a network change, or when the app regains focus).
    pub fn nudge(&self) {
        let now = self.inner.clock.now();
        {
            // Store operations waiting to be retried are tried again now.
            let mut retry = lock(&self.inner.retry);
            if let Some(u) = retry.unsaved.as_mut() {
                u.pending.next_at = now;
            }
            if let Some(p) = retry.restore.as_mut() {
                p.next_at = now;
            }
        }
        self.inner.reschedule();
    }

    // --------------------------------------------------------------------------- events

    fn emit_full(
        &self,
        event: AuthEvent,
        reason: Option<SignOutReason>,
        error: Option<ErrorView>,
        connectivity: Option<Connectivity>,
    ) {
        let payload = AuthStateChange {
            event,
            reason,
            at: unix_ms(self.inner.clock.now()),
            session: self.session(),
            error,
            connectivity,
        };
        let _ = self.inner.events.send(payload);
    }

    fn emit(&self, event: AuthEvent, reason: Option<SignOutReason>) {
        self.emit_full(event, reason, None, None);
    }

    fn emit_error(&self, e: &AuthError) {
        self.emit_full(AuthEvent::AuthError, None, Some(ErrorView::from(e)), None);
    }

    fn set_session(&self, session: Option<Session>) {
        self.inner.state.send_modify(|s| s.session = session);
        self.inner.reschedule();
    }

    fn current(&self) -> Option<Session> {
        self.inner.state.borrow().session.clone()
    }

    fn set_connectivity(&self, c: Connectivity) {
        let changed = self.inner.state.borrow().connectivity != c;
        self.inner.state.send_modify(|s| s.connectivity = c.clone());
        if changed {
            self.emit_full(AuthEvent::Connectivity, None, None, Some(c));
        }
    }
}
