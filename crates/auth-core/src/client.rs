//! The session engine: one [`AuthClient`] per app.
//!
//! It owns the session, persists it before announcing it, refreshes it once however many
//! callers ask (and once across processes), keeps it through transient failures, ends it
//! only on the server's definitive word, signs out locally at once, and owes the server its
//! revocations in a durable outbox. One background task sleeps until the next due time.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::api::{
    GoTrueApi, MfaEnrollment, SignOutScope, SignUpResponse, TokenResponse, User, UserUpdate,
};
use crate::backend::{AuthBackend, BackendKind};
use crate::callback::{self, Callback};
use crate::clock::{Clock, SystemClock, from_unix_secs, unix_ms, unix_secs};
use crate::error::AuthError;
use crate::lock::ProcessLock;
use crate::model::{
    AuthEvent, AuthStateChange, Connectivity, ErrorView, SessionView, SignOutReason, UserView,
};
use crate::persist::{self, FlowKind, OutboxEntry, PendingFlow, StoredSession};
use crate::secret::{AccessToken, CodeVerifier, OneTimeCode, Password, RefreshToken};
use crate::store::{SecretStore, Store, StoreError};

/// How long a started PKCE flow may take to come back.
const FLOW_TTL_SECS: i64 = 15 * 60;
/// Flows kept at most (oldest dropped), as supabase-js does.
const MAX_FLOWS: usize = 5;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The API root (`http://127.0.0.1:9999` or `https://<ref>.supabase.co/auth/v1`).
    pub url: String,
    pub anon_key: String,
    /// Names the stored session; two profiles are two independent sessions.
    pub profile: String,
    /// Base of the app's deep links (`tessera://auth`).
    pub callback_base: String,
    /// Refresh this long before expiry (capped at a quarter of the token's lifetime).
    pub refresh_margin: Duration,
    pub http_timeout: Duration,
    pub store_timeout: Duration,
    /// Directory of the cross-process lock file; `None` disables it (single process).
    pub lock_dir: Option<PathBuf>,
    /// Ask the server whether the session is still alive this often (off by default).
    pub validate_interval: Option<Duration>,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Run the background task (refresh on time, deliver queued revocations). A
    /// short-lived command-line call turns it off and does its work explicitly.
    pub background: bool,
    /// `User-Agent` of every request; GoTrue keeps it with the session, and "Your
    /// devices" shows it (`Tessera/0.1.0 (linux)`).
    pub user_agent: String,
    /// PostgREST's root for "Your devices"; by default derived from `url`
    /// (`…/auth/v1` → `…/rest/v1`, a bare GoTrue root → `<root>/rest/v1`).
    pub rest_url: Option<String>,
    /// The app backend's logout endpoint, called with the access token on every
    /// sign-out before the auth server's revocation, with the outbox's guarantees.
    pub logout_hook_url: Option<String>,
    /// Which auth server `url` is: GoTrue (Supabase, the default) or a SuperTokens app
    /// backend's API domain.
    pub backend: crate::backend::BackendKind,
}

impl AuthConfig {
    pub fn new(url: impl Into<String>, anon_key: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            anon_key: anon_key.into(),
            profile: "default".into(),
            callback_base: "tessera://auth".into(),
            refresh_margin: Duration::from_secs(90),
            http_timeout: Duration::from_secs(10),
            store_timeout: Duration::from_secs(10),
            lock_dir: None,
            validate_interval: None,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            background: true,
            user_agent: concat!("tessera-auth-core/", env!("CARGO_PKG_VERSION")).into(),
            rest_url: None,
            logout_hook_url: None,
            backend: crate::backend::BackendKind::GoTrue,
        }
    }

    fn key(&self, what: &str) -> String {
        format!("{}.{what}", self.profile)
    }
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `POST /token?grant_type=refresh_token` requests sent.
    pub refresh_requests: AtomicU64,
    /// Times the background task woke up.
    pub wakeups: AtomicU64,
}

/// What a sign-out did.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SignOutOutcome {
    pub scope: SignOutScope,
    /// The local session is gone (always true for `local` and `global`; false for `others`).
    pub local_done: bool,
    /// The server confirmed the revocation (or said the session was already gone).
    pub server_confirmed: bool,
    /// The revocation waits in the outbox and will be retried.
    pub queued: bool,
    /// The app backend's logout hook failed (it is retried with the revocation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_error: Option<ErrorView>,
}

/// What a sign-up did.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum SignUpOutcome {
    SignedIn { session: SessionView },
    ConfirmationSent { email: String },
}

/// A pending revocation as shown to a user (no tokens).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingRevocation {
    pub id: String,
    pub scope: SignOutScope,
    pub session_id: String,
    pub email: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

#[derive(Clone)]
struct Session {
    access_token: AccessToken,
    refresh_token: RefreshToken,
    expires_in: i64,
    server_expires_at: Option<i64>,
    received_at: SystemTime,
    user: User,
    user_raw: Value,
    session_id: String,
    aal: String,
    refresh_at: SystemTime,
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
    fn build(
        access_token: AccessToken,
        refresh_token: RefreshToken,
        expires_in: i64,
        server_expires_at: Option<i64>,
        received_at: SystemTime,
        user_raw: Value,
        margin: Duration,
    ) -> Result<Self, AuthError> {
        if access_token.is_empty() || refresh_token.is_empty() || expires_in <= 0 {
            return Err(AuthError::InvalidResponse(
                "a session without tokens or lifetime".into(),
            ));
        }
        let user: User = serde_json::from_value(user_raw.clone())
            .map_err(|e| AuthError::InvalidResponse(format!("user: {e}")))?;
        let claims = crate::jwt::decode_claims(access_token.expose_secret()).unwrap_or_default();
        let session_id = claims.session_id.unwrap_or_default();
        let aal = claims.aal.unwrap_or_else(|| "aal1".to_owned());
        let lifetime = Duration::from_secs(expires_in as u64);
        let margin = margin.min(lifetime / 4);
        let jitter = rand::rng().random_range(0..=margin.as_millis() as u64 / 4);
        let expires_at = received_at + lifetime;
        let refresh_at = expires_at - margin - Duration::from_millis(jitter);
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
            refresh_at,
        })
    }

    fn from_response(
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

    fn from_stored(s: StoredSession, margin: Duration) -> Result<Self, AuthError> {
        Self::build(
            AccessToken::new(s.access_token),
            RefreshToken::new(s.refresh_token),
            s.expires_in,
            s.server_expires_at,
            from_unix_secs(s.received_at),
            s.user,
            margin,
        )
    }

    fn to_stored(&self) -> StoredSession {
        StoredSession {
            access_token: self.access_token.expose_secret().to_owned(),
            refresh_token: self.refresh_token.expose_secret().to_owned(),
            expires_in: self.expires_in,
            server_expires_at: self.server_expires_at,
            received_at: unix_secs(self.received_at),
            user: self.user_raw.clone(),
        }
    }

    /// Expiry by this device's clock: receipt time + the server's `expires_in`.
    fn expires_at(&self) -> SystemTime {
        self.received_at + Duration::from_secs(self.expires_in as u64)
    }

    fn skew_secs(&self) -> i64 {
        self.server_expires_at
            .map_or(0, |server| server - unix_secs(self.expires_at()))
    }

    fn view(&self) -> SessionView {
        SessionView {
            user: UserView::from(&self.user),
            session_id: self.session_id.clone(),
            expires_at: unix_secs(self.expires_at()),
            aal: self.aal.clone(),
            clock_skew_secs: self.skew_secs(),
        }
    }
}

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
        let api: Arc<dyn AuthBackend> = match cfg.backend {
            BackendKind::GoTrue => {
                let mut api = GoTrueApi::with_user_agent(
                    &cfg.url,
                    &cfg.anon_key,
                    cfg.http_timeout,
                    &cfg.user_agent,
                )?;
                if let Some(rest) = &cfg.rest_url {
                    api.set_rest_url(rest)?;
                }
                Arc::new(api)
            }
            BackendKind::SuperTokens => Arc::new(crate::supertokens::SuperTokensApi::new(
                &cfg.url,
                cfg.http_timeout,
                &cfg.user_agent,
            )?),
        };
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
                wake: watch::channel(0).0,
                stopped: Arc::new(AtomicBool::new(false)),
                lock,
                commit_lock,
                outbox_lock,
                metrics: Metrics::default(),
                scheduler_started: AtomicBool::new(false),
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
    /// starts the background task. A corrupt stored session is reported and removed.
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
            Err(e) => failure = Some(AuthError::Storage(e)),
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

    // --------------------------------------------------------------------------- commit

    /// Persists a new session, then publishes it. The previous session, if any and
    /// different, is queued for a local revocation (it would otherwise live on the server).
    async fn commit_new_session(
        &self,
        session: Session,
        event: AuthEvent,
    ) -> Result<SessionView, AuthError> {
        let inner = &self.inner;
        crate::crash::point("sign_in:after_response");
        let _commit = inner.commit_gate.lock().await;
        let _process = self.commit_lock().await?;
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
        persist::save(
            &inner.store,
            &inner.cfg.key("session"),
            &session.to_stored(),
        )
        .await?;
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
    async fn end_session(
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

    async fn end_session_with(
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
    async fn end_session_locked(&self, reason: SignOutReason, removal: Removal) -> Option<Session> {
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
    async fn commit_lock(&self) -> Result<Option<crate::lock::ProcessLockGuard>, AuthError> {
        match &self.inner.commit_lock {
            Some(l) => Ok(Some(l.acquire(self.inner.cfg.store_timeout).await?)),
            None => Ok(None),
        }
    }

    /// A session that was refreshed but that nobody keeps (the sign-out or the new
    /// sign-in that replaced it won the race): its new refresh token must not stay
    /// valid on the server, so its revocation is queued like a sign-out's.
    async fn revoke_orphan(&self, orphan: &Session) {
        let mut entry = self.outbox_entry(orphan, SignOutScope::Local);
        // The sign-out or sign-in that won has told the app backend already.
        entry.hook_pending = false;
        if let Err(e) = self.push_outbox(entry).await {
            tracing::warn!(
                code = e.code(),
                "could not queue the revocation of a refreshed session nobody keeps"
            );
        }
    }

    fn reason_for(e: &AuthError) -> SignOutReason {
        match e.code() {
            "session_expired" => SignOutReason::Expired,
            "refresh_token_already_used" => SignOutReason::RefreshFailed,
            _ => SignOutReason::Revoked,
        }
    }

    // --------------------------------------------------------------------------- tokens

    /// A valid access token, refreshing first when it is due. Any number of concurrent
    /// callers share one refresh. While the server cannot be reached, a token that has not
    /// expired yet is still handed out.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        let now = self.inner.clock.now();
        if now < session.refresh_at {
            return Ok(session.access_token);
        }
        match self.refresh_from(&session.refresh_token).await {
            Ok(s) => Ok(s.access_token),
            Err(e) if e.is_retryable() || matches!(e, AuthError::Storage(_)) => {
                match self.current() {
                    Some(s) if self.inner.clock.now() < s.expires_at() => Ok(s.access_token),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Refreshes now (unless a concurrent caller just did).
    pub async fn refresh(&self) -> Result<SessionView, AuthError> {
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        self.refresh_from(&session.refresh_token)
            .await
            .map(|s| s.view())
    }

    /// The single-flight refresh: `seen` is the refresh token the caller saw; if it has
    /// changed by the time the caller gets the gate, someone else refreshed.
    async fn refresh_from(&self, seen: &RefreshToken) -> Result<Session, AuthError> {
        let inner = &self.inner;
        let _gate = inner.refresh_gate.lock().await;
        let session = self.current().ok_or(AuthError::NotSignedIn)?;
        if &session.refresh_token != seen {
            return Ok(session);
        }
        {
            let retry = lock(&inner.retry);
            if let (Some(next), Some((token, code))) = (retry.next_at, &retry.failed_token)
                && token == seen
                && inner.clock.now() < next
            {
                return Err(AuthError::Network(format!(
                    "refresh is backing off after {code}"
                )));
            }
        }
        let epoch = inner.epoch.load(Ordering::SeqCst);
        let _process_lock = match &inner.lock {
            Some(l) => Some(l.acquire(inner.cfg.http_timeout * 2).await?),
            None => None,
        };
        crate::crash::point("refresh:after_lock");
        // Another process on this device may have refreshed or signed out meanwhile. Its
        // stored session is the live one: adopt it, and if it is due too, refresh *its*
        // token (ours may be generations old, and reusing it would make the server revoke
        // the whole session).
        let mut session = session;
        match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await {
            Ok(None) => {
                // Another process signed out: follow it (and delete nothing: a sign-in
                // stored since by yet another process is not ours to remove).
                self.end_session_with(SignOutReason::User, Some(epoch), Removal::IfSameSession)
                    .await;
                return Err(AuthError::NotSignedIn);
            }
            Ok(Some(stored)) if stored.refresh_token != session.refresh_token.expose_secret() => {
                let adopted = Session::from_stored(stored, inner.cfg.refresh_margin)?;
                if inner.clock.now() < adopted.refresh_at {
                    let _commit = inner.commit_gate.lock().await;
                    if inner.epoch.load(Ordering::SeqCst) == epoch {
                        inner.epoch.fetch_add(1, Ordering::SeqCst);
                        self.set_session(Some(adopted.clone()));
                        self.emit(AuthEvent::TokenRefreshed, None);
                    }
                    return Ok(adopted);
                }
                session = adopted;
            }
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(
                code = e.code(),
                "could not re-read the stored session before refresh"
            ),
        }
        inner
            .metrics
            .refresh_requests
            .fetch_add(1, Ordering::SeqCst);
        let result = inner.api.refresh(&session.refresh_token).await;
        match result {
            Ok(mut resp) => {
                crate::crash::point("refresh:after_response");
                if resp.user.is_null() {
                    // The backend's refresh does not describe the user: it has not changed.
                    resp.user = session.user_raw.clone();
                }
                let fresh =
                    Session::from_response(resp, inner.clock.now(), inner.cfg.refresh_margin)?;
                let _commit = inner.commit_gate.lock().await;
                if inner.epoch.load(Ordering::SeqCst) != epoch {
                    // Signed out or replaced in this process while the request ran: the
                    // result is not ours to keep.
                    drop(_commit);
                    if self
                        .current()
                        .is_none_or(|s| s.session_id != fresh.session_id)
                    {
                        self.revoke_orphan(&fresh).await;
                    }
                    return Err(AuthError::NotSignedIn);
                }
                let _process = match self.commit_lock().await {
                    Ok(guard) => guard,
                    Err(e) => {
                        drop(_commit);
                        self.note_failure(seen, &e);
                        return Err(e);
                    }
                };
                // Another process may have signed out or signed in while the request ran:
                // only the session we refreshed may be overwritten.
                match persist::load::<StoredSession>(&inner.store, &inner.cfg.key("session")).await
                {
                    Ok(Some(stored))
                        if stored.refresh_token == session.refresh_token.expose_secret() => {}
                    Ok(stored) => {
                        tracing::info!(
                            "another process ended or replaced the session during a refresh; \
                             the result is discarded"
                        );
                        let adopted = stored
                            .and_then(|s| Session::from_stored(s, inner.cfg.refresh_margin).ok());
                        let same = adopted
                            .as_ref()
                            .is_some_and(|a| a.session_id == fresh.session_id);
                        let result = match adopted {
                            Some(adopted) => {
                                inner.epoch.fetch_add(1, Ordering::SeqCst);
                                let event = if same {
                                    AuthEvent::TokenRefreshed
                                } else {
                                    AuthEvent::SignedIn
                                };
                                self.set_session(Some(adopted.clone()));
                                self.emit(event, None);
                                Ok(adopted)
                            }
                            None => {
                                self.end_session_locked(
                                    SignOutReason::User,
                                    Removal::IfSameSession,
                                )
                                .await;
                                Err(AuthError::NotSignedIn)
                            }
                        };
                        drop(_process);
                        drop(_commit);
                        if !same {
                            self.revoke_orphan(&fresh).await;
                        }
                        return result;
                    }
                    Err(e) => tracing::warn!(
                        code = e.code(),
                        "could not re-read the stored session before saving a refresh"
                    ),
                }
                // Persist before publish: if this fails, the old refresh token stays in use
                // (the server answers its reuse with the new token).
                if let Err(e) =
                    persist::save(&inner.store, &inner.cfg.key("session"), &fresh.to_stored()).await
                {
                    drop(_commit);
                    let e = AuthError::Storage(e);
                    self.note_failure(seen, &e);
                    self.emit_error(&e);
                    return Err(e);
                }
                crate::crash::point("refresh:after_persist");
                inner.epoch.fetch_add(1, Ordering::SeqCst);
                *lock(&inner.retry) = Retry::default();
                self.set_session(Some(fresh.clone()));
                self.emit(AuthEvent::TokenRefreshed, None);
                drop(_commit);
                self.set_connectivity(Connectivity::Online);
                Ok(fresh)
            }
            Err(e) if e.ends_session() => {
                tracing::info!(code = e.code(), "the server ended the session");
                self.end_session(Self::reason_for(&e), Some(epoch)).await;
                Err(e)
            }
            Err(e) => {
                tracing::warn!(code = e.code(), "refresh failed; will retry");
                self.note_failure(seen, &e);
                Err(e)
            }
        }
    }

    /// Records a transient failure: back off (exponential, with jitter), tell the UI.
    fn note_failure(&self, token: &RefreshToken, e: &AuthError) {
        let inner = &self.inner;
        let (attempt, next_at) = {
            let mut retry = lock(&inner.retry);
            retry.attempt = retry.attempt.saturating_add(1);
            let base = inner.cfg.retry_initial.as_millis() as u64;
            let exp = base.saturating_mul(1u64 << retry.attempt.min(16).saturating_sub(1));
            let capped = exp.min(inner.cfg.retry_max.as_millis() as u64);
            let jittered = rand::rng().random_range(capped / 2..=capped.max(1));
            let next = inner.clock.now() + Duration::from_millis(jittered);
            retry.next_at = Some(next);
            retry.failed_token = Some((token.clone(), e.code().to_owned()));
            (retry.attempt, next)
        };
        self.set_connectivity(Connectivity::Retrying {
            attempt,
            next_retry_at: unix_ms(next_at),
            code: e.code().to_owned(),
        });
        inner.reschedule();
    }

    /// Asks the server whether the session is still alive (`GET /user`). A definitive
    /// answer ends it with `SIGNED_OUT` (`revoked`); a transient failure changes nothing.
    pub async fn validate(&self) -> Result<Option<SessionView>, AuthError> {
        if self.current().is_none() {
            return Ok(None);
        }
        let epoch = self.inner.epoch.load(Ordering::SeqCst);
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => return Ok(None),
            Err(e) => return Err(e),
        };
        match self.inner.api.get_user(&token).await {
            Ok(user) => {
                self.update_user_locally(user, false).await?;
                Ok(self.session())
            }
            Err(e) if e.ends_session() || e.code() == "bad_jwt" => {
                let reason = if e.code() == "bad_jwt" {
                    SignOutReason::RefreshFailed
                } else {
                    SignOutReason::Revoked
                };
                self.end_session(reason, Some(epoch)).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn update_user_locally(&self, user_raw: Value, announce: bool) -> Result<(), AuthError> {
        let user: User = serde_json::from_value(user_raw.clone())
            .map_err(|e| AuthError::InvalidResponse(format!("user: {e}")))?;
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
            Ok(Some(stored)) if stored.refresh_token == session.refresh_token.expose_secret()
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

    // --------------------------------------------------------------------------- sign-in

    async fn sign_in_with(
        &self,
        resp: TokenResponse,
        event: AuthEvent,
    ) -> Result<SessionView, AuthError> {
        let session =
            Session::from_response(resp, self.inner.clock.now(), self.inner.cfg.refresh_margin)?;
        self.commit_new_session(session, event).await
    }

    fn report<T>(&self, result: Result<T, AuthError>) -> Result<T, AuthError> {
        if let Err(e) = &result {
            self.emit_error(e);
        }
        result
    }

    fn check_email(email: &str) -> Result<String, AuthError> {
        let email = email.trim();
        if email.is_empty() || !email.contains('@') {
            return Err(AuthError::InvalidInput("enter an email address".into()));
        }
        Ok(email.to_owned())
    }

    pub async fn sign_in_with_password(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<SessionView, AuthError> {
        let email = Self::check_email(email)?;
        let resp = self.inner.api.sign_in_with_password(&email, password).await;
        let resp = self.report(resp)?;
        self.sign_in_with(resp, AuthEvent::SignedIn).await
    }

    pub async fn sign_in_anonymously(&self) -> Result<SessionView, AuthError> {
        let resp = self.inner.api.sign_in_anonymously(None).await;
        let resp = self.report(resp)?;
        self.sign_in_with(resp, AuthEvent::SignedIn).await
    }

    /// Signs up; when the server wants the address confirmed first, the mailed link comes
    /// back to the app as a PKCE callback.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<SignUpOutcome, AuthError> {
        let email = Self::check_email(email)?;
        let (flow, challenge) = self.start_flow(FlowKind::SignUp).await?;
        let redirect = self.callback_url(&flow.id);
        let resp = self
            .inner
            .api
            .sign_up(&email, password, None, Some(&challenge), Some(&redirect))
            .await;
        match self.report(resp) {
            Ok(SignUpResponse::Session(resp)) => {
                self.forget_flow(&flow.id).await;
                let session = self.sign_in_with(*resp, AuthEvent::SignedIn).await?;
                Ok(SignUpOutcome::SignedIn { session })
            }
            Ok(SignUpResponse::ConfirmationSent(user)) => {
                Ok(SignUpOutcome::ConfirmationSent { email: user.email })
            }
            Err(e) => {
                self.forget_flow(&flow.id).await;
                Err(e)
            }
        }
    }

    /// Sends a magic link (which comes back as a PKCE callback) and a 6-digit code.
    pub async fn sign_in_with_otp(&self, email: &str) -> Result<(), AuthError> {
        let email = Self::check_email(email)?;
        let (flow, challenge) = self.start_flow(FlowKind::MagicLink).await?;
        let redirect = self.callback_url(&flow.id);
        let result = self
            .inner
            .api
            .send_otp(&email, true, Some(&challenge), Some(&redirect))
            .await;
        if result.is_err() {
            self.forget_flow(&flow.id).await;
        }
        self.report(result)
    }

    /// Verifies an emailed code (`kind`: `email`, `signup`, `magiclink`, `recovery`, …).
    pub async fn verify_otp(
        &self,
        email: &str,
        code: &OneTimeCode,
        kind: &str,
    ) -> Result<SessionView, AuthError> {
        let email = Self::check_email(email)?;
        if code.is_empty() {
            return Err(AuthError::InvalidInput(
                "enter the code from the email".into(),
            ));
        }
        let resp = self.inner.api.verify_otp(&email, code, kind).await;
        let resp = self.report(resp)?;
        let event = if kind == "recovery" {
            AuthEvent::PasswordRecovery
        } else {
            AuthEvent::SignedIn
        };
        self.sign_in_with(resp, event).await
    }

    /// Sends a password-recovery link (a PKCE callback) and code.
    pub async fn reset_password_for_email(&self, email: &str) -> Result<(), AuthError> {
        let email = Self::check_email(email)?;
        let (flow, challenge) = self.start_flow(FlowKind::Recovery).await?;
        let redirect = self.callback_url(&flow.id);
        let result = self
            .inner
            .api
            .recover(&email, Some(&challenge), Some(&redirect))
            .await;
        self.report(result)
    }

    /// The URL to open in the system browser for an OAuth sign-in (PKCE). The result comes
    /// back through [`AuthClient::handle_callback`].
    pub async fn sign_in_with_oauth(
        &self,
        provider: &str,
        scopes: Option<&str>,
    ) -> Result<String, AuthError> {
        if provider.is_empty()
            || !provider
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(AuthError::InvalidInput(format!(
                "unknown provider {provider:?}"
            )));
        }
        let (flow, challenge) = self.start_flow(FlowKind::OAuth).await?;
        self.inner
            .api
            .authorize_url(provider, &self.callback_url(&flow.id), &challenge, scopes)
    }

    fn callback_url(&self, flow_id: &str) -> String {
        format!(
            "{}/callback?flow={flow_id}",
            self.inner.cfg.callback_base.trim_end_matches('/')
        )
    }

    async fn load_flows(&self) -> Vec<PendingFlow> {
        let key = self.inner.cfg.key("flows");
        match persist::load::<Vec<PendingFlow>>(&self.inner.store, &key).await {
            Ok(flows) => flows.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(code = e.code(), "pending flows unreadable; starting afresh");
                let _ = self.inner.store.delete(&key).await;
                Vec::new()
            }
        }
    }

    async fn start_flow(&self, kind: FlowKind) -> Result<(PendingFlow, String), AuthError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut id = [0u8; 12];
        rand::rng().fill(&mut id);
        let flow = PendingFlow {
            id: URL_SAFE_NO_PAD.encode(id),
            kind,
            verifier,
            created_at: unix_secs(self.inner.clock.now()),
        };
        let now = unix_secs(self.inner.clock.now());
        let mut flows = self.load_flows().await;
        flows.retain(|f| now - f.created_at < FLOW_TTL_SECS);
        flows.push(flow.clone());
        while flows.len() > MAX_FLOWS {
            flows.remove(0);
        }
        persist::save(&self.inner.store, &self.inner.cfg.key("flows"), &flows).await?;
        Ok((flow, challenge))
    }

    /// Takes the flow out of the store (single use).
    async fn take_flow(&self, id: &str) -> Option<PendingFlow> {
        let mut flows = self.load_flows().await;
        let index = flows.iter().position(|f| f.id == id)?;
        let flow = flows.remove(index);
        if let Err(e) = persist::save(&self.inner.store, &self.inner.cfg.key("flows"), &flows).await
        {
            tracing::warn!(code = e.code(), "could not remove a used flow");
        }
        let now = unix_secs(self.inner.clock.now());
        (now - flow.created_at < FLOW_TTL_SECS).then_some(flow)
    }

    async fn forget_flow(&self, id: &str) {
        let _ = self.take_flow(id).await;
    }

    /// Finishes a sign-in (or lands a sign-out) from a deep link or redirect. Anything not
    /// started by this engine, malformed or already used is refused with an `AUTH_ERROR`
    /// event and changes nothing.
    pub async fn handle_callback(&self, url: &str) -> Result<Option<SessionView>, AuthError> {
        let result = self.handle_callback_inner(url).await;
        self.report(result)
    }

    async fn handle_callback_inner(&self, url: &str) -> Result<Option<SessionView>, AuthError> {
        match callback::parse(url, &self.inner.cfg.callback_base)? {
            Callback::Code { flow, code } => {
                if !lock(&self.inner.used_links).insert(format!("code:{code}")) {
                    return Err(AuthError::InvalidCallback(
                        "this link was already used".into(),
                    ));
                }
                let pending = self
                    .take_flow(&flow)
                    .await
                    .filter(|f| f.kind != FlowKind::SignOut)
                    .ok_or_else(|| {
                        AuthError::InvalidCallback(
                            "no sign-in of this app is waiting for this link".into(),
                        )
                    })?;
                let resp = self
                    .inner
                    .api
                    .exchange_code(&code, &CodeVerifier::new(pending.verifier))
                    .await?;
                let event = if pending.kind == FlowKind::Recovery {
                    AuthEvent::PasswordRecovery
                } else {
                    AuthEvent::SignedIn
                };
                self.sign_in_with(resp, event).await.map(Some)
            }
            Callback::Error {
                flow,
                code,
                description,
            } => {
                if let Some(flow) = flow {
                    self.forget_flow(&flow).await;
                }
                Err(AuthError::Api {
                    status: 400,
                    code,
                    message: description,
                })
            }
            Callback::TokenHash { token_hash, kind } => {
                if !lock(&self.inner.used_links)
                    .insert(format!("hash:{}", token_hash.expose_secret()))
                {
                    return Err(AuthError::InvalidCallback(
                        "this link was already used".into(),
                    ));
                }
                let resp = self.inner.api.verify_token_hash(&token_hash, &kind).await?;
                let event = if kind == "recovery" {
                    AuthEvent::PasswordRecovery
                } else {
                    AuthEvent::SignedIn
                };
                self.sign_in_with(resp, event).await.map(Some)
            }
            Callback::SignedOut { state } => {
                self.take_flow(&state)
                    .await
                    .filter(|f| f.kind == FlowKind::SignOut)
                    .ok_or_else(|| {
                        AuthError::InvalidCallback(
                            "no sign-out of this app is waiting for this link".into(),
                        )
                    })?;
                if self.current().is_some() {
                    self.sign_out(SignOutScope::Local).await?;
                }
                Ok(None)
            }
        }
    }

    /// Starts a sign-out that finishes at an external page (e.g. an identity provider's
    /// logout), which sends the browser back to `…/signed-out?state=…`. Returns that URL.
    pub async fn begin_external_sign_out(&self) -> Result<String, AuthError> {
        let (mut flow, _) = self.start_flow(FlowKind::SignOut).await?;
        flow.verifier.clear();
        Ok(format!(
            "{}/signed-out?state={}",
            self.inner.cfg.callback_base.trim_end_matches('/'),
            flow.id
        ))
    }

    // --------------------------------------------------------------------------- user, MFA

    /// The user, fresh from the server.
    pub async fn user(&self) -> Result<User, AuthError> {
        let token = self.access_token().await?;
        let raw = match self.inner.api.get_user(&token).await {
            Ok(raw) => raw,
            Err(e) if e.ends_session() => {
                self.end_session(SignOutReason::Revoked, None).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.update_user_locally(raw.clone(), false).await?;
        serde_json::from_value(raw).map_err(|e| AuthError::InvalidResponse(format!("user: {e}")))
    }

    pub async fn update_user(&self, update: UserUpdate) -> Result<User, AuthError> {
        let token = self.access_token().await?;
        let raw = self.inner.api.update_user(&token, &update).await;
        let raw = self.report(raw)?;
        self.update_user_locally(raw.clone(), true).await?;
        serde_json::from_value(raw).map_err(|e| AuthError::InvalidResponse(format!("user: {e}")))
    }

    pub async fn mfa_enroll(
        &self,
        friendly_name: Option<&str>,
    ) -> Result<MfaEnrollment, AuthError> {
        let token = self.access_token().await?;
        let r = self.inner.api.mfa_enroll(&token, friendly_name).await;
        self.report(r)
    }

    /// Challenges and verifies a TOTP factor; the session becomes `aal2`.
    pub async fn mfa_verify(
        &self,
        factor_id: &str,
        code: &OneTimeCode,
    ) -> Result<SessionView, AuthError> {
        let token = self.access_token().await?;
        let challenge = self.inner.api.mfa_challenge(&token, factor_id).await;
        let challenge = self.report(challenge)?;
        let resp = self
            .inner
            .api
            .mfa_verify(&token, factor_id, &challenge, code)
            .await;
        let resp = self.report(resp)?;
        self.sign_in_with(resp, AuthEvent::MfaChallengeVerified)
            .await
    }

    pub async fn mfa_unenroll(&self, factor_id: &str) -> Result<(), AuthError> {
        let token = self.access_token().await?;
        let r = self.inner.api.mfa_unenroll(&token, factor_id).await;
        self.report(r)?;
        self.user().await.map(|_| ())
    }

    // --------------------------------------------------------------------------- devices

    /// The user's sessions ("Your devices"), most recently active first, through the SQL
    /// functions of `supabase/migrations/*_tessera_your_devices.sql`.
    pub async fn list_sessions(&self) -> Result<Vec<crate::model::DeviceSession>, AuthError> {
        let token = self.access_token().await?;
        let rows = self.inner.api.list_sessions(&token).await?;
        let current = self.current().map(|s| s.session_id).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| {
                // `refreshed_at` has no zone (GoTrue writes UTC); say so for the UI.
                let refreshed = r.refreshed_at.map(|t| {
                    if t.ends_with('Z') || t.contains('+') {
                        t
                    } else {
                        format!("{t}Z")
                    }
                });
                let created_at = r.created_at.unwrap_or_default();
                let last_active_at = refreshed
                    .or(r.updated_at)
                    .unwrap_or_else(|| created_at.clone());
                crate::model::DeviceSession {
                    is_current: r.is_current || (!current.is_empty() && r.id == current),
                    id: r.id,
                    created_at,
                    last_active_at,
                    user_agent: r.user_agent,
                    ip: r.ip,
                    aal: r.aal,
                }
            })
            .collect())
    }

    /// Signs one session out from "Your devices". This device's own session is a local
    /// sign-out (immediate, even offline); another device's is deleted on the server, and
    /// that device learns it at its next refresh or validation (`SIGNED_OUT`, `revoked`).
    pub async fn revoke_session(
        &self,
        session_id: &str,
    ) -> Result<crate::model::RevokeOutcome, AuthError> {
        let id = uuid::Uuid::parse_str(session_id)
            .map_err(|_| AuthError::InvalidInput(format!("{session_id:?} is not a session id")))?
            .to_string();
        if self.current().is_some_and(|s| s.session_id == id) {
            let sign_out = self.sign_out(SignOutScope::Local).await?;
            return Ok(crate::model::RevokeOutcome::ThisDevice { sign_out });
        }
        let token = self.access_token().await?;
        if self.inner.api.revoke_session(&token, &id).await? {
            Ok(crate::model::RevokeOutcome::OtherDevice)
        } else {
            Err(AuthError::Api {
                status: 404,
                code: "device_not_found".into(),
                message: "no such session among yours (it may have ended already)".into(),
            })
        }
    }

    // --------------------------------------------------------------------------- sign-out

    fn outbox_entry(&self, session: &Session, scope: SignOutScope) -> OutboxEntry {
        let now = self.inner.clock.now();
        OutboxEntry {
            id: uuid::Uuid::new_v4().to_string(),
            scope,
            access_token: session.access_token.expose_secret().to_owned(),
            refresh_token: session.refresh_token.expose_secret().to_owned(),
            access_expires_at: unix_secs(session.expires_at()),
            session_id: session.session_id.clone(),
            user_email: session.user.email.clone(),
            created_at: unix_secs(now),
            attempts: 0,
            next_attempt_at: unix_ms(now),
            last_error: None,
            // `others` keeps this session: the backend has nothing to end.
            hook_pending: self.inner.hook.is_some() && scope != SignOutScope::Others,
        }
    }

    async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let key = self.inner.cfg.key("outbox");
        match persist::load::<Vec<OutboxEntry>>(&self.inner.store, &key).await {
            Ok(v) => Ok(v.unwrap_or_default()),
            Err(StoreError::Corrupt(why)) => {
                tracing::warn!("the revocation outbox was unreadable ({why}); removed");
                self.inner.store.delete(&key).await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs a read-modify-write of the outbox under the in-process gate and, when
    /// configured, the cross-process outbox lock (never across an HTTP call).
    async fn edit_outbox(
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

    async fn push_outbox(&self, entry: OutboxEntry) -> Result<(), StoreError> {
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
                    if self
                        .end_session(SignOutReason::User, Some(epoch))
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
                crate::crash::point("sign_out:after_local_remove");
                let delivered = self.deliver(entry.clone()).await;
                crate::crash::point("sign_out:after_server");
                let mut hook_error = None;
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
                let confirmed = delivered.is_ok();
                Ok(SignOutOutcome {
                    scope,
                    local_done: true,
                    server_confirmed: confirmed,
                    queued: queued && !confirmed,
                    hook_error,
                })
            }
            SignOutScope::Others => {
                let session = self.current().ok_or(AuthError::NotSignedIn)?;
                let token = self.access_token().await?;
                match self.inner.api.logout(&token, SignOutScope::Others).await {
                    Ok(()) => Ok(SignOutOutcome {
                        scope,
                        local_done: false,
                        server_confirmed: true,
                        queued: false,
                        hook_error: None,
                    }),
                    Err(e) if e.ends_session() => {
                        self.end_session(SignOutReason::Revoked, None).await;
                        Err(e)
                    }
                    Err(e) => {
                        let mut entry = self.outbox_entry(&session, SignOutScope::Others);
                        entry.access_token.clear();
                        entry.refresh_token.clear();
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

    async fn remove_outbox_entry(&self, id: &str) -> Result<(), StoreError> {
        self.edit_outbox(|entries| entries.retain(|e| e.id != id))
            .await
            .map(|_| ())
    }

    async fn save_outbox(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let key = self.inner.cfg.key("outbox");
        if entries.is_empty() {
            self.inner.store.delete(&key).await
        } else {
            persist::save(&self.inner.store, &key, &entries).await
        }
    }

    /// Sends one revocation. `Ok` when the server confirmed or said the session is gone.
    async fn deliver(
        &self,
        mut entry: OutboxEntry,
    ) -> Result<OutboxEntry, (OutboxEntry, AuthError)> {
        let api = &self.inner.api;
        let token = if entry.scope == SignOutScope::Others {
            // Revoking the others needs this device's live session; without one there is
            // nothing left to protect (a later local/global sign-out superseded it).
            match self.current() {
                None => return Ok(entry),
                Some(s) if s.session_id != entry.session_id => return Ok(entry),
                Some(_) => match self.access_token().await {
                    Ok(t) => t,
                    Err(e) if e.ends_session() || matches!(e, AuthError::NotSignedIn) => {
                        return Ok(entry);
                    }
                    Err(e) => return Err((entry, e)),
                },
            }
        } else {
            let now = unix_secs(self.inner.clock.now());
            if now + 30 >= entry.access_expires_at {
                // The access token expired meanwhile: refresh first, then revoke.
                match self.refresh_entry(&mut entry).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(entry),
                    Err(e) => return Err((entry, e)),
                }
            }
            AccessToken::new(entry.access_token.clone())
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
                Err(e) => return Err((entry, e)),
            }
        }
        let mut result = api.logout(&token, entry.scope).await;
        // The backend judged the access token expired (clocks differ): refresh, retry once.
        if let Err(e) = &result
            && e.code() == "try_refresh_token"
            && entry.scope != SignOutScope::Others
        {
            result = match self.refresh_entry(&mut entry).await {
                Ok(true) => {
                    api.logout(&AccessToken::new(entry.access_token.clone()), entry.scope)
                        .await
                }
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
        }
        match result {
            Ok(()) => Ok(entry),
            Err(e) if e.session_already_gone() => Ok(entry),
            Err(e) => Err((entry, e)),
        }
    }

    /// Refreshes a queued revocation's tokens. `Ok(false)`: the server says the session is
    /// already gone, so there is nothing left to revoke.
    async fn refresh_entry(&self, entry: &mut OutboxEntry) -> Result<bool, AuthError> {
        match self
            .inner
            .api
            .refresh(&RefreshToken::new(entry.refresh_token.clone()))
            .await
        {
            Ok(resp) => {
                entry.access_token = resp.access_token.expose_secret().to_owned();
                entry.refresh_token = resp.refresh_token.expose_secret().to_owned();
                entry.access_expires_at = unix_secs(self.inner.clock.now()) + resp.expires_in;
                Ok(true)
            }
            Err(e) if e.ends_session() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A failed delivery: count it, note the error, back off (exponential, with jitter).
    fn failed_entry(&self, mut entry: OutboxEntry, e: &AuthError) -> OutboxEntry {
        entry.attempts += 1;
        entry.last_error = Some(e.code().to_owned());
        let base = self.inner.cfg.retry_initial.as_millis() as u64;
        let backoff = base
            .saturating_mul(1u64 << entry.attempts.min(16))
            .min(self.inner.cfg.retry_max.as_millis() as u64);
        let jittered = rand::rng().random_range(backoff / 2..=backoff.max(1));
        entry.next_attempt_at = unix_ms(self.inner.clock.now() + Duration::from_millis(jittered));
        entry
    }

    /// Sends every due revocation; returns how many are still pending.
    pub async fn flush_outbox(&self) -> Result<usize, AuthError> {
        self.drain_outbox(true).await
    }

    /// Delivers the due revocations. Entries are read, delivered without holding any lock,
    /// and the results merged back by id, so a concurrent process (or a revocation queued
    /// meanwhile) is never overwritten; delivering one twice is harmless (the server then
    /// says the session is gone, which counts as done).
    async fn drain_outbox(&self, all: bool) -> Result<usize, AuthError> {
        let now = unix_ms(self.inner.clock.now());
        let (due, waiting): (Vec<OutboxEntry>, Vec<OutboxEntry>) = self
            .load_outbox()
            .await?
            .into_iter()
            .partition(|e| all || e.next_attempt_at <= now);
        if due.is_empty() {
            return Ok(waiting.len());
        }
        let mut delivered = HashSet::new();
        let mut failed = Vec::new();
        for entry in due {
            match self.deliver(entry).await {
                Ok(done) => {
                    tracing::info!(scope = done.scope.as_str(), "revocation delivered");
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
            })
            .collect())
    }

    // --------------------------------------------------------------------------- scheduler

    fn spawn_scheduler(&self) {
        if !self.inner.cfg.background || self.inner.scheduler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.subscribe();
        let stopped = self.inner.stopped.clone();
        let clock = self.inner.clock.clone();
        tokio::spawn(scheduler(weak, wake, stopped, clock));
    }

    /// The next moment something is due, if anything.
    async fn next_due(&self) -> Option<SystemTime> {
        let mut due: Vec<SystemTime> = Vec::new();
        if let Some(session) = self.current() {
            let retry_at = lock(&self.inner.retry).next_at;
            due.push(retry_at.unwrap_or(session.refresh_at));
            if let Some(every) = self.inner.cfg.validate_interval {
                due.push(self.inner.clock.now() + every);
            }
        }
        if let Ok(entries) = self.load_outbox().await
            && let Some(first) = entries.iter().map(|e| e.next_attempt_at).min()
        {
            due.push(std::time::UNIX_EPOCH + Duration::from_millis(first.max(0) as u64));
        }
        due.into_iter().min()
    }

    /// One round of due work. The first round after start retries every pending
    /// revocation at once (conditions may have changed while the app was closed).
    async fn run_due(&self, first: bool) {
        let now = self.inner.clock.now();
        if let Some(session) = self.current() {
            let retry_at = lock(&self.inner.retry).next_at;
            if now >= retry_at.unwrap_or(session.refresh_at) {
                let _ = self.refresh_from(&session.refresh_token).await;
            }
        }
        let _ = self.drain_outbox(first).await;
    }
}

async fn scheduler(
    weak: Weak<Inner>,
    mut wake: watch::Receiver<u64>,
    stopped: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
) {
    let mut validate_next: Option<SystemTime> = None;
    let mut first = true;
    loop {
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let next = {
            let Some(inner) = weak.upgrade() else { return };
            let client = AuthClient { inner };
            client.run_due(first).await;
            first = false;
            // Changes made by the work just done are already accounted for below.
            wake.borrow_and_update();
            if let Some(every) = client.inner.cfg.validate_interval {
                let now = clock.now();
                match validate_next {
                    Some(at) if now >= at => {
                        let _ = client.validate().await;
                        validate_next = Some(clock.now() + every);
                    }
                    None => validate_next = Some(now + every),
                    _ => {}
                }
            }
            let mut next = client.next_due().await;
            if let (Some(v), Some(n)) = (validate_next, next) {
                next = Some(v.min(n));
            }
            next
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = clock.sleep_until(at) => {}
                    changed = wake.changed() => if changed.is_err() { return },
                }
            }
            None => {
                if wake.changed().await.is_err() {
                    return;
                }
            }
        }
        if let Some(inner) = weak.upgrade() {
            inner.metrics.wakeups.fetch_add(1, Ordering::SeqCst);
        }
    }
}
