//! Engine settings ([`AuthConfig`]) and the counters benchmarks read ([`Metrics`]).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::error::AuthError;

/// Engine settings. `Debug` leaves the API key out (an embedded server's key is the
/// install's own).
#[derive(Clone)]
pub struct AuthConfig {
    /// The API root (`http://127.0.0.1:9999` or `https://<ref>.supabase.co/auth/v1`).
    pub url: String,
    /// The project's public API key, sent as `apikey` (and as the bearer when no one is
    /// signed in): the legacy anon JWT or a publishable key (`sb_publishable_…`, not a
    /// JWT). The engine never reads it.
    pub anon_key: String,
    /// Names the stored session; two profiles are two independent sessions.
    pub profile: String,
    /// A stable name for the server stored sessions belong to, when its URL is not stable
    /// (the app's embedded server may move to another port); default: the normalised
    /// `url` (see [`AuthConfig::issuer`]).
    pub server_id: Option<String>,
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
    /// Attempts at the logout hook before a revocation goes to the auth server without
    /// it (a hook answering 404 or 410 is given up on at once): a broken app backend must
    /// not keep a signed-out session alive.
    pub logout_hook_max_attempts: u32,
    /// A hook that cannot be reached at all (no answer: the network may be down for every
    /// server) is given up on only once the sign-out is at least this old as well, so a
    /// short outage does not skip it.
    pub logout_hook_patience: Duration,
    /// Which auth server `url` is: GoTrue (Supabase, the default) or a SuperTokens app
    /// backend's API domain.
    pub backend: BackendKind,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("url", &self.url)
            .field("profile", &self.profile)
            .field("server_id", &self.server_id)
            .field("callback_base", &self.callback_base)
            .field("backend", &self.backend)
            .field("rest_url", &self.rest_url)
            .field("logout_hook_url", &self.logout_hook_url)
            .field("lock_dir", &self.lock_dir)
            .field("background", &self.background)
            .finish_non_exhaustive()
    }
}

/// The entry a Supabase project's Redirect URLs (`GOTRUE_URI_ALLOW_LIST`) needs for an app
/// whose links come back to `callback_base`: GoTrue matches the redirect with a glob whose
/// separators are `.` and `/`, and the app's `…/callback?flow=<id>` carries a query, so an
/// exact URL does not match and `**` is needed. A redirect that does not match is replaced
/// by the project's Site URL without an error, and the link never reaches the app.
pub fn redirect_allow_list_entry(callback_base: &str) -> String {
    format!("{}/callback**", callback_base.trim_end_matches('/'))
}

impl AuthConfig {
    pub fn new(url: impl Into<String>, anon_key: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            anon_key: anon_key.into(),
            profile: "default".into(),
            server_id: None,
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
            logout_hook_max_attempts: 5,
            logout_hook_patience: Duration::from_secs(3600),
            backend: BackendKind::GoTrue,
        }
    }

    /// The wait before retry number `attempt` (1, 2, …) of anything that failed for a
    /// transient reason (a refresh, a queued revocation): `retry_initial · 2^(attempt-1)`,
    /// at most `retry_max`, with jitter (a uniform pick in its upper half) so that many
    /// devices do not come back at once.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let base = u64::try_from(self.retry_initial.as_millis()).unwrap_or(u64::MAX);
        let max = u64::try_from(self.retry_max.as_millis()).unwrap_or(u64::MAX);
        let exp = base.saturating_mul(1u64 << attempt.clamp(1, 32).saturating_sub(1).min(31));
        let capped = exp.min(max).max(1);
        Duration::from_millis(rand::rng().random_range(capped / 2..=capped))
    }

    /// The server a stored session belongs to: `url` with its scheme and host in lower
    /// case, the default port and any trailing `/` left out
    /// (`https://abc.supabase.co/auth/v1`).
    pub fn issuer(&self) -> String {
        if let Some(id) = self.server_id.as_deref().filter(|id| !id.trim().is_empty()) {
            return id.trim().to_owned();
        }
        match url::Url::parse(self.url.trim()) {
            Ok(url) => {
                let mut issuer = url.origin().ascii_serialization();
                issuer.push_str(url.path().trim_end_matches('/'));
                issuer
            }
            Err(_) => self.url.trim().trim_end_matches('/').to_owned(),
        }
    }

    /// The secret-store entry of `what` for this profile on this server:
    /// `<profile>@<issuer>.<what>`. A session belongs to the server that issued it: pointed
    /// at another server, the engine finds nothing, sends nothing and deletes nothing, and
    /// the session is there again when it comes back.
    pub(crate) fn key(&self, what: StoreKey) -> String {
        format!("{}@{}.{}", self.profile, self.issuer(), what.name())
    }

    /// The profile as a file name (the lock files, the signed-out marker).
    pub(crate) fn file_name(&self) -> String {
        self.profile
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    }
}

/// What the engine keeps in the secret store, one entry each per profile and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKey {
    /// The session (`persist::StoredSession`).
    Session,
    /// Revocations still owed to the server.
    Outbox,
    /// The PKCE flows this device started.
    Flows,
}

impl StoreKey {
    fn name(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Outbox => "outbox",
            Self::Flows => "flows",
        }
    }
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `POST /token?grant_type=refresh_token` requests sent.
    pub refresh_requests: AtomicU64,
    /// Times the background task woke up.
    pub wakeups: AtomicU64,
    /// Revocations sent to the auth server without the logout hook's confirmation (it
    /// failed too often, or does not exist): the app backend was not told.
    pub logout_hooks_skipped: AtomicU64,
}

/// Which backend a configuration names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendKind {
    #[default]
    GoTrue,
    SuperTokens,
}

impl std::str::FromStr for BackendKind {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "gotrue" | "supabase" => Ok(Self::GoTrue),
            "supertokens" => Ok(Self::SuperTokens),
            other => Err(AuthError::Config(format!(
                "unknown auth backend {other:?} (gotrue or supertokens)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter() {
        let mut cfg = AuthConfig::new("http://127.0.0.1:9999", "k");
        cfg.retry_initial = Duration::from_millis(1000);
        cfg.retry_max = Duration::from_millis(5000);
        for _ in 0..100 {
            let first = cfg.backoff(1).as_millis();
            assert!((500..=1000).contains(&first), "{first}");
            let third = cfg.backoff(3).as_millis();
            assert!((2000..=4000).contains(&third), "{third}");
            let capped = cfg.backoff(40).as_millis();
            assert!((2500..=5000).contains(&capped), "{capped}");
        }
        assert!(cfg.backoff(0) <= Duration::from_millis(1000));
    }
}
