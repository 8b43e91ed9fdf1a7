//! The session engine: one [`AuthClient`] per app.
//!
//! It owns the session, persists it before announcing it, refreshes it once however many
//! callers ask (and once across processes), keeps it through transient failures, ends it
//! only on the server's definitive word, signs out locally at once, and owes the server its
//! revocations in a durable outbox. One background task sleeps until the next due time.
//!
//! The facade is here (construction, state, events); each job has its own file:
//! `slot.rs` (the stored session's one owner: every change of the session goes through
//! it), `order.rs` (the locks and the order they are taken in), `session.rs` (the session
//! value, sign-in's commit, the end of a session, validation), `refresh.rs` (the one
//! refresh path and its back-off), `flows.rs` (sign-in and the PKCE flows), `links.rs`
//! (deep links and the account switch they may ask for), `account.rs` (user, MFA, "Your
//! devices"), `outbox.rs` (sign-out and the revocation outbox), `restore.rs` (the start,
//! and the store's retries), `scheduler.rs` (the background task), `idle.rs` (the idle
//! sign-out).

mod account;
mod flows;
mod idle;
mod links;
mod marker;
mod order;
mod outbox;
mod refresh;
mod restore;
mod scheduler;
mod session;
mod sign_out;
mod slot;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
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
    MfaEnrollment, OtpType, SignOutScope, SignUpResponse, TokenResponse, User, UserUpdate,
};
use crate::callback::{self, Callback};
use crate::clock::{Clock, SystemClock, from_unix_secs, unix_ms, unix_secs};
use crate::config::{AuthConfig, Metrics, StoreKey};
use crate::crash::CrashPoint;
use crate::error::{ApiCode, AuthError};
use crate::lock::ProcessLock;
use crate::model::{
    AuthEvent, AuthStateChange, Connectivity, ErrorView, PendingRevocation, SessionView,
    SignOutOutcome, SignOutReason, SignUpOutcome, UserView,
};
use crate::persist::{self, FlowKind, HookStatus, OutboxEntry, PendingFlow, StoredSession};
use crate::secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};
use crate::store::{SecretStore, Store, StoreError};

use session::Session;
use slot::{Expect, Followed, Removal, Replaced, Restored, SessionSlot, SignedOut};

struct Inner {
    cfg: AuthConfig,
    api: Arc<dyn AuthBackend>,
    hook: Option<crate::hook::LogoutHook>,
    store: Store,
    clock: Arc<dyn Clock>,
    /// The session: stored and in memory, changed only through it.
    slot: SessionSlot,
    connectivity: watch::Sender<Connectivity>,
    events: broadcast::Sender<AuthStateChange>,
    /// Level 1 of `order.rs`: refreshes in this process (single flight).
    refresh_gate: tokio::sync::Mutex<()>,
    /// Level 2: refreshes across processes, held across the request.
    refresh_lock: Option<ProcessLock>,
    /// The refresh's back-off after a transient failure.
    backoff: Mutex<refresh::Backoff>,
    /// Levels 5 and 6: the outbox's read-modify-write, in and across processes.
    outbox_gate: tokio::sync::Mutex<()>,
    outbox_lock: Option<ProcessLock>,
    /// Revocations the store would not take: owed, in memory, retried (and shown).
    unqueued: Mutex<Vec<OutboxEntry>>,
    /// Every queued revocation is tried at the next round (set by `nudge`).
    outbox_now: AtomicBool,
    used_links: Mutex<HashSet<String>>,
    /// Level 7: the stored flows' read-modify-write.
    flows_gate: tokio::sync::Mutex<()>,
    /// A link's session for another user, waiting for the user's answer.
    pending_switch: Mutex<Option<links::PendingSwitch>>,
    /// Bumped whenever something changes that affects the schedule; the background task
    /// wakes on a change it has not seen (it also wakes on every change of the session).
    wake: watch::Sender<u64>,
    stopped: Arc<AtomicBool>,
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
        let name = cfg.file_name();
        let refresh_lock = cfg
            .lock_dir
            .as_ref()
            .map(|dir| ProcessLock::new(dir.join(format!("{name}.lock"))));
        let outbox_lock = cfg
            .lock_dir
            .as_ref()
            .map(|dir| ProcessLock::new(dir.join(format!("{name}.outbox.lock"))));
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
        let store = Store::new(store, cfg.store_timeout);
        let slot = SessionSlot::new(&cfg, store.clone(), clock.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                slot,
                hook,
                cfg,
                api,
                clock,
                connectivity: watch::channel(Connectivity::Online).0,
                events,
                refresh_gate: tokio::sync::Mutex::new(()),
                refresh_lock,
                backoff: Mutex::new(refresh::Backoff::default()),
                outbox_gate: tokio::sync::Mutex::new(()),
                outbox_lock,
                unqueued: Mutex::new(Vec::new()),
                outbox_now: AtomicBool::new(false),
                used_links: Mutex::new(HashSet::new()),
                pending_switch: Mutex::new(None),
                flows_gate: tokio::sync::Mutex::new(()),
                wake: watch::channel(0).0,
                stopped: Arc::new(AtomicBool::new(false)),
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
        self.inner.slot.has_unsaved()
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
        self.inner.slot.current().as_ref().map(Session::view)
    }

    pub fn connectivity(&self) -> Connectivity {
        self.inner.connectivity.borrow().clone()
    }

    /// Stops the background task (also done when the last clone is dropped).
    pub fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.reschedule();
    }

    /// Tries everything now — a refresh in back-off, the store's retries, the queued
    /// revocations — and wakes the background task: after resume from sleep, when the
    /// network comes back, or when the app regains focus. Once: what fails again backs off
    /// as before.
    pub fn nudge(&self) {
        self.inner.slot.retry_now();
        lock(&self.inner.backoff).try_now(self.inner.clock.now());
        self.outbox_try_now();
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

    fn current(&self) -> Option<Session> {
        self.inner.slot.current()
    }

    fn set_connectivity(&self, c: Connectivity) {
        let changed = self.inner.connectivity.send_if_modified(|old| {
            let changed = *old != c;
            *old = c.clone();
            changed
        });
        if changed {
            self.emit_full(AuthEvent::Connectivity, None, None, Some(c));
        }
    }
}
