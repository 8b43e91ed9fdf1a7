//! What Tessera's test suites share: an emulator on a free port with the helpers tests use
//! to observe and provoke it ([`Env`]), and running a program (`authctl`) with input on
//! its standard input ([`output_with_stdin`]). It knows nothing of the engine, so the
//! engine's own tests can use it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use gotrue_emulator::{Config, Emulator, EmulatorHandle, MailTemplates, NewUser};
use serde_json::Value;

/// The password of every user the suites create.
pub const PASSWORD: &str = "correct-horse-9";

/// An emulator on a free port of 127.0.0.1 and an HTTP client for its test routes
/// (`/_emulator/*`). It stops when dropped.
#[derive(Debug)]
pub struct Env {
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
}

/// [`Config::for_tests`] with mail templates that show the one-time code too (a project
/// that edited GoTrue's stock templates, which mail links only): what the suites that
/// type a code need.
pub fn config_with_codes() -> Config {
    Config {
        mail_templates: MailTemplates::with_codes(),
        ..Config::for_tests()
    }
}

/// The TOTP code (SHA-1, six digits, 30-second steps: what GoTrue enrols) of a base32
/// `secret` at `at`, in seconds since the epoch.
pub fn totp_at(secret: &str, at: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap_or_else(|e| panic!("a base32 TOTP secret: {e:?}"));
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        "test".into(),
    )
    .unwrap_or_else(|e| panic!("a TOTP: {e:?}"))
    .generate(at)
}

/// The link a mail of the emulator's carries straight to the app when the project's
/// template is `{{ .RedirectTo }}&token_hash={{ .TokenHash }}&type=<type>` with an https
/// base that hands over to the app (App Links, Universal Links): the deep link the OS
/// passes on. With the `tessera:` base itself, GoTrue's `html/template` would render it
/// `#ZgotmplZ…`.
pub fn token_hash_link(mail: &Value) -> String {
    format!(
        "{}&token_hash={}&type={}",
        mail["redirect_to"].as_str().unwrap(),
        mail["token_hash"].as_str().unwrap(),
        mail["type"].as_str().unwrap()
    )
}

impl Env {
    /// With [`config_with_codes`].
    pub async fn start() -> Self {
        Self::with(config_with_codes()).await
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
        format!("{}{path}", self.emu.url())
    }

    /// A confirmed user with [`PASSWORD`]; returns its id.
    pub async fn create_user(&self, email: &str) -> String {
        create_user(&self.emu, email).await
    }

    /// `GET` an emulator route, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Adds a fault (`POST /_emulator/faults`).
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

    /// The live sessions of a user, as the server sees them.
    pub async fn server_sessions(&self, user_id: &str) -> Vec<Value> {
        self.get(&format!("/_emulator/sessions?user_id={user_id}"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The request counters (`/_emulator/stats`).
    pub async fn stats(&self) -> Value {
        self.get("/_emulator/stats").await
    }

    /// Asks the server for a magic link to `email` the way an attacker would for their
    /// own account: a plain HTTP call, no app, no PKCE. Returns the mail.
    pub async fn magic_link_without_the_app(&self, email: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/otp"))
            .header("apikey", self.emu.anon_key())
            .json(&serde_json::json!({"email": email, "create_user": false}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        self.last_mail(email)
    }

    /// The newest mail sent to `to`, as JSON.
    pub fn last_mail(&self, to: &str) -> Value {
        let mails = self.emu.mail_for(Some(to)).unwrap();
        serde_json::to_value(mails.last().expect("a mail")).unwrap()
    }

    /// Moves the emulator's clock (server-side expiry).
    pub fn advance_server(&self, secs: i64) {
        self.emu.clock().advance_ms(secs * 1000);
    }
}

/// A confirmed user with [`PASSWORD`] in `emu`; returns its id.
pub async fn create_user(emu: &EmulatorHandle, email: &str) -> String {
    emu.create_user(NewUser::confirmed(email, PASSWORD))
        .await
        .unwrap()
}

/// Runs `cmd` to the end, writing `stdin` (if any) to it; stdout and stderr are captured.
pub fn output_with_stdin(mut cmd: Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A name no other test of this run uses (profiles, addresses).
pub fn unique_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
