//! Helpers for engine tests: engines wired to the shared emulator environment
//! ([`tessera_test_support::Env`]), event capture.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthClient, AuthConfig, AuthEvent, AuthStateChange, Clock, ManualClock, MemoryStore,
    SecretStore,
};
use tokio::sync::broadcast;

pub use tessera_test_support::{Env, PASSWORD};

pub mod failing;

/// Engines on the environment's emulator.
#[allow(async_fn_in_trait)]
pub trait Engines {
    /// Engine settings for the emulator, with short time-outs and back-off.
    fn config(&self) -> AuthConfig;
    /// An engine with its own memory store and a manual clock, started.
    async fn device(&self) -> Device;
    async fn device_with(&self, store: Arc<MemoryStore>, cfg: AuthConfig) -> Device;
}

impl Engines for Env {
    fn config(&self) -> AuthConfig {
        let mut cfg = AuthConfig::new(self.emu.url(), self.emu.anon_key());
        cfg.http_timeout = Duration::from_secs(2);
        cfg.store_timeout = Duration::from_secs(2);
        cfg.retry_initial = Duration::from_millis(200);
        cfg.retry_max = Duration::from_secs(5);
        cfg
    }

    async fn device(&self) -> Device {
        self.device_with(Arc::new(MemoryStore::new()), self.config())
            .await
    }

    async fn device_with(&self, store: Arc<MemoryStore>, cfg: AuthConfig) -> Device {
        let clock = Arc::new(ManualClock::starting_now());
        let client = AuthClient::with_clock(
            cfg,
            store.clone() as Arc<dyn SecretStore>,
            clock.clone() as Arc<dyn Clock>,
        )
        .unwrap();
        let events = Events(client.subscribe());
        client.start().await.unwrap();
        Device {
            client,
            store,
            clock,
            events,
        }
    }
}

pub struct Device {
    pub client: AuthClient,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub events: Events,
}

impl Device {
    pub async fn sign_in(&mut self, email: &str) -> auth_core::SessionView {
        self.client
            .sign_in_with_password(email, &auth_core::Password::new(PASSWORD))
            .await
            .unwrap()
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

pub struct Events(pub broadcast::Receiver<AuthStateChange>);

impl Events {
    /// The next event of `kind` (skipping others), waiting at most 5 s.
    pub async fn expect(&mut self, kind: AuthEvent) -> AuthStateChange {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, self.0.recv()).await {
                Ok(Ok(e)) if e.event == kind => return e,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("event channel: {e}"),
                Err(_) => panic!("no {kind:?} event within 5 s"),
            }
        }
    }

    /// Every event already queued.
    pub fn drain(&mut self) -> Vec<AuthStateChange> {
        let mut out = Vec::new();
        while let Ok(e) = self.0.try_recv() {
            out.push(e);
        }
        out
    }

    /// Whether any event already queued is of `kind` (they are drained).
    pub fn drained_any(&mut self, kind: AuthEvent) -> bool {
        self.drain().iter().any(|e| e.event == kind)
    }

    /// Events that arrive within `wait`.
    pub async fn collect(&mut self, wait: Duration) -> Vec<AuthStateChange> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(e)) = tokio::time::timeout(
            deadline.saturating_duration_since(tokio::time::Instant::now()),
            self.0.recv(),
        )
        .await
        {
            out.push(e);
        }
        out
    }
}

/// Waits (5 s at most) until the user has `n` live sessions at the server (revocations
/// are delivered in the background).
pub async fn wait_server_sessions(env: &Env, user_id: &str, n: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while env.server_sessions(user_id).await.len() != n {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        settle().await;
    }
}

/// Lets the background task run.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}
