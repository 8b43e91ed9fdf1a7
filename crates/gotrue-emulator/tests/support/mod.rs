//! Shared helpers for the emulator's HTTP contract tests.
#![allow(dead_code, clippy::unwrap_used)]

use gotrue_emulator::{Config, Emulator, EmulatorHandle, MailTemplates, new_jwt_secret};
use reqwest::Method;
use serde_json::{Value, json};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use gotrue_wire::{
    Reply, access, claims, fragment, params_of, pkce, query, refresh_token, user_id,
};

/// The well-known `service_role` key of Supabase's local stack (signed with the default secret).
pub const DEMO_SERVICE_ROLE_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU";
/// The well-known `anon` key of Supabase's local stack.
pub const DEMO_ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";

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

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.url(), path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let mut req = self
            .http
            .request(method, url)
            .header("apikey", self.emu.anon_key());
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        self.send(Method::GET, path, bearer, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body), &[]).await
    }

    pub async fn post_auth(&self, path: &str, bearer: &str, body: Option<Value>) -> Reply {
        self.send(Method::POST, path, Some(bearer), body, &[]).await
    }

    pub async fn sign_up(&self, email: &str) -> Value {
        self.post("/signup", json!({"email": email, "password": PASSWORD}))
            .await
            .assert_ok()
            .clone()
    }

    pub async fn sign_in(&self, email: &str) -> Value {
        self.post(
            "/token?grant_type=password",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .assert_ok()
        .clone()
    }

    pub async fn refresh(&self, token: &str) -> Reply {
        self.post(
            "/token?grant_type=refresh_token",
            json!({ "refresh_token": token }),
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let key = self.emu.service_role_key().to_owned();
        self.send(method, path, Some(&key), body, &[]).await
    }

    pub async fn mails(&self, to: &str) -> Vec<Value> {
        let reply = self.get(&format!("/_emulator/mail?to={to}"), None).await;
        reply.json.as_array().cloned().unwrap_or_default()
    }

    pub async fn last_mail(&self, to: &str) -> Value {
        self.mails(to).await.pop().expect("a captured mail")
    }

    pub async fn sessions(&self, user_id: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/_emulator/sessions?user_id={user_id}"), None)
            .await;
        reply.json.as_array().cloned().unwrap_or_default()
    }

    pub async fn advance(&self, secs: i64) {
        self.post("/_emulator/time", json!({ "advance_secs": secs }))
            .await
            .assert_ok();
    }
}

/// An embedded emulator with its database in a fresh folder (kept for the test's life).
pub async fn embedded_server() -> (Env, tempfile::TempDir) {
    embedded_server_with(MailTemplates::gotrue_defaults()).await
}

/// [`embedded_server`] with these mail templates (`MailTemplates::with_codes()` for a
/// mailbox that shows the one-time codes).
pub async fn embedded_server_with(mail_templates: MailTemplates) -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        bcrypt_cost: 4,
        mail_templates,
        ..Config::embedded(new_jwt_secret(), dir.path().join("emulator.sqlite"), 0)
    };
    (Env::with(config).await, dir)
}

/// A confirmed user with [`PASSWORD`], made in process.
pub async fn confirmed_user(env: &Env, email: &str) {
    env.emu
        .create_user(gotrue_emulator::NewUser::confirmed(email, PASSWORD))
        .await
        .unwrap();
}
