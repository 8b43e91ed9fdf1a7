//! Helpers for engine tests: an emulator on port 0, engines wired to it, event capture.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthClient, AuthConfig, AuthEvent, AuthStateChange, Clock, ManualClock, MemoryStore,
    SecretStore,
};
use gotrue_emulator::{Config, Emulator, EmulatorHandle};
use serde_json::{Value, json};
use tokio::sync::broadcast;

pub const PASSWORD: &str = "correct-horse-9";

pub struct Env {
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
}

impl Env {
    pub async fn start() -> Self {
        Self::with(Config::for_tests()).await
    }

    pub async fn with(config: Config) -> Self {
        let emu = Emulator::start(config).await.unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { emu, http }
    }

    pub fn config(&self) -> AuthConfig {
        let mut cfg = AuthConfig::new(self.emu.url(), self.emu.anon_key());
        cfg.http_timeout = Duration::from_secs(2);
        cfg.store_timeout = Duration::from_secs(2);
        cfg.retry_initial = Duration::from_millis(200);
        cfg.retry_max = Duration::from_secs(5);
        cfg
    }

    /// An engine with its own memory store and a manual clock, started.
    pub async fn device(&self) -> Device {
        self.device_with(Arc::new(MemoryStore::new()), self.config())
            .await
    }

    pub async fn device_with(&self, store: Arc<MemoryStore>, cfg: AuthConfig) -> Device {
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.url())
    }

    pub async fn create_user(&self, email: &str) {
        let r = self
            .http
            .post(self.url("/admin/users"))
            .bearer_auth(self.emu.service_role_key())
            .json(&json!({"email": email, "password": PASSWORD, "email_confirm": true}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    pub async fn fault(&self, fault: Value) {
        let r = self
            .http
            .post(self.url("/_emulator/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    }

    pub async fn clear_faults(&self) {
        self.http
            .delete(self.url("/_emulator/faults"))
            .send()
            .await
            .unwrap();
    }

    pub async fn server_sessions(&self, user_id: &str) -> Vec<Value> {
        self.http
            .get(self.url(&format!("/_emulator/sessions?user_id={user_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn last_mail(&self, to: &str) -> Value {
        let mails: Vec<Value> = self
            .http
            .get(self.url(&format!("/_emulator/mail?to={to}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        mails.last().cloned().expect("a mail")
    }

    /// Moves the emulator's clock (server-side expiry).
    pub fn advance_server(&self, secs: i64) {
        self.emu.clock().advance_ms(secs * 1000);
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

/// Lets the background task run.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}
