//! The end-to-end harness: the real `tessera` app in a WebKit window (under Xvfb), driven
//! through WebDriver (`tauri-driver` → `WebKitWebDriver`), with its session in a real
//! Secret Service, against an in-process GoTrue emulator. Run by `scripts/e2e` (inside
//! `xvfb-run` and `scripts/with-keyring`).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::NewSessionError;
use fantoccini::{Client, ClientBuilder};
use gotrue_emulator::Config;
use serde_json::{Value, json};
pub use tessera_test_support::Env;

pub use tessera_test_support::PASSWORD;

mod inspect;
mod page;
pub use inspect::*;
pub use page::*;

/// `target/debug` of this workspace, or `TESSERA_BIN_DIR` (the bench's release builds).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TESSERA_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(root.join("target"))
        .join("debug")
}

/// The app under test: this workspace's build, or `TESSERA_APP_BIN` (the binary of an
/// unpacked package, for the install test).
pub fn app_bin() -> PathBuf {
    std::env::var_os("TESSERA_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("tessera"))
}

fn tauri_driver() -> PathBuf {
    std::env::var_os("TAURI_DRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join("target/tools/bin/tauri-driver")
        })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One test's world: the emulator environment (its `emu`, `http` and helpers, through
/// `Deref`), tauri-driver for the app, and the app's keyring profile.
#[allow(missing_debug_implementations)]
pub struct Harness {
    pub env: Env,
    pub profile: String,
    driver: Child,
    port: u16,
    pub log: PathBuf,
}

impl std::ops::Deref for Harness {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A test that failed may leave its app running; the next test's app would then hand
        // over to it (single instance) and exit.
        kill_stray_apps();
    }
}

/// Ends every `tessera` process started from this workspace's binary and waits until they
/// are gone (they hold the single-instance lock until they exit).
pub fn kill_stray_apps() {
    stop_apps(Duration::ZERO);
}

/// Waits up to `grace` for `tessera` processes of this workspace to quit on their own,
/// then ends the rest, and waits until the single-instance name is free.
pub fn stop_apps(grace: Duration) {
    let app = app_bin();
    let running = || {
        Command::new("pgrep")
            .arg("-f")
            .arg(app.as_os_str())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let quit_by = Instant::now() + grace;
    while running() && Instant::now() < quit_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("pkill")
        .arg("-f")
        .arg(app.as_os_str())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() {
        if Instant::now() >= deadline {
            // Not an assert: this also runs while a failed test unwinds.
            eprintln!("a tessera process did not exit within 10 s");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_until_no_instance();
}

/// Waits until no app instance holds the single-instance D-Bus name (the bus releases it
/// a moment after the process is gone). An app started before that would hand its
/// arguments to the one that is leaving.
fn wait_until_no_instance() {
    let Ok(conn) = zbus::blocking::Connection::session() else {
        return; // no session bus: no single-instance name either
    };
    let Ok(bus) = zbus::blocking::fdo::DBusProxy::new(&conn) else {
        return;
    };
    let Ok(name) = zbus::names::BusName::try_from(SINGLE_INSTANCE_NAME) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while bus.name_has_owner(name.clone()).unwrap_or(false) {
        if Instant::now() >= deadline {
            eprintln!("an app instance kept the single-instance name for 10 s");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the WebDriver chain is ready: `GET /status` through tauri-driver answers
/// `ready: true` from WebKitWebDriver behind it (an open port alone is not enough: the
/// native driver may still be starting, and tauri-driver then drops the request).
async fn wait_for_webdriver(http: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://127.0.0.1:{port}/status");
    loop {
        let last = match http.get(&url).timeout(Duration::from_secs(5)).send().await {
            Ok(r) => match r.json::<Value>().await {
                Ok(v) if v["value"]["ready"] == json!(true) => return,
                Ok(v) => v.to_string(),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "WebDriver not ready within 60 s: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(Config::for_tests()).await
    }

    pub async fn with(config: Config) -> Self {
        Self::with_env(config, &[]).await
    }

    /// As [`Harness::with`], with more environment for the app (e.g. a logout hook URL).
    pub async fn with_env(config: Config, app_env: &[(&str, &str)]) -> Self {
        let env = Env::with(config).await;
        let (url, key) = (env.emu.url().to_owned(), env.emu.anon_key().to_owned());
        let mut all = vec![
            ("TESSERA_AUTH_URL", url.as_str()),
            ("TESSERA_ANON_KEY", &key),
        ];
        all.extend_from_slice(app_env);
        Self::launch(env, &all).await
    }

    /// The app as a user starts it: no server configured, so it runs its embedded server
    /// on `port` (`TESSERA_EMULATOR_PORT`), with its data folder under `data`
    /// (`XDG_DATA_HOME`). The harness's own emulator is not the app's server then.
    pub async fn embedded(port: u16, data: &Path) -> Self {
        let port = port.to_string();
        Self::unconfigured(data, &[("TESSERA_EMULATOR_PORT", &port)]).await
    }

    /// The app with no server configured, its data folder under `data` (`XDG_DATA_HOME`)
    /// and `app_env` (e.g. `TESSERA_EMBEDDED=off`).
    pub async fn unconfigured(data: &Path, app_env: &[(&str, &str)]) -> Self {
        let env = Env::with(Config::for_tests()).await;
        let data = data.to_string_lossy().into_owned();
        let mut all = vec![("XDG_DATA_HOME", data.as_str())];
        all.extend_from_slice(app_env);
        Self::launch(env, &all).await
    }

    /// Starts tauri-driver, which starts the app with `app_env` (and its profile).
    async fn launch(env: Env, app_env: &[(&str, &str)]) -> Self {
        let profile = format!(
            "e2e-{}",
            std::process::id() as u128 * 1000 + (Instant::now().elapsed().as_nanos() % 1000)
        );
        let profile = format!("{profile}-{}", free_port());
        let port = free_port();
        let native = free_port();
        let log = std::env::temp_dir().join(format!("tessera-{profile}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let driver = Command::new(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env_remove("TESSERA_AUTH_URL")
            .env_remove("TESSERA_ANON_KEY")
            .env("TESSERA_PROFILE", &profile)
            .env("TESSERA_LOG", "info")
            .envs(app_env.iter().copied())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("tauri-driver (scripts/e2e installs it)");
        wait_for_webdriver(&env.http, port).await;
        Self {
            env,
            profile,
            driver,
            port,
            log,
        }
    }

    /// Starts the app in a new WebDriver session and waits until it shows its state.
    pub async fn open_app(&self) -> Client {
        self.open_app_with(&[]).await
    }

    /// Starts the app with command-line arguments (a deep link on a cold start).
    pub async fn open_app_with(&self, args: &[&str]) -> Client {
        // The app a test closed just before may still be quitting.
        stop_apps(Duration::from_secs(5));
        let client = self.open_program(&app_bin(), args).await;
        wait_status(&client, |s| s != "Loading…").await;
        // The tests read the session's details (ids, expiry) and the event log: open both
        // collapsible sections, as a person who wants to see them does (the choice is kept).
        client
            .execute(
                "localStorage.setItem('tessera.details', 'open'); \
                 for (const id of ['details', 'events']) { \
                   const d = document.getElementById(id); if (d) d.open = true; }",
                vec![],
            )
            .await
            .unwrap();
        client
    }

    /// Starts `program` (the app, or another Tauri app: the bench's empty window) in a new
    /// WebDriver session, with the harness's environment, and returns as soon as the
    /// session is open (the page may still be loading).
    pub async fn open_program(&self, program: &Path, args: &[&str]) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert(
            "tauri:options".into(),
            json!({ "application": program.to_string_lossy(), "args": args }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let connect = || async {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(caps.clone());
            tokio::time::timeout(Duration::from_secs(45), builder.connect(&url)).await
        };
        match connect().await.expect("WebDriver session within 45 s") {
            Ok(client) => client,
            // The request did not get an answer (the native driver dropped it): once more,
            // with no app of an unanswered attempt left to take the single-instance lock.
            Err(
                e @ (NewSessionError::Failed(_)
                | NewSessionError::FailedC(_)
                | NewSessionError::Lost(_)),
            ) => {
                eprintln!(
                    "WebDriver new session failed at the transport level ({e}); retrying once"
                );
                kill_stray_apps();
                let _ = Command::new("pkill").arg("-f").arg(program).status();
                wait_for_webdriver(&self.http, self.port).await;
                connect()
                    .await
                    .expect("WebDriver session within 45 s")
                    .expect("WebDriver session (second attempt)")
            }
            Err(e) => panic!("WebDriver session: {e:?}"),
        }
    }

    /// Another `tessera` process with the same environment (a deep link handed to the
    /// running instance). Returns its exit status.
    pub fn second_instance(&self, url: &str) -> Output {
        Command::new(app_bin())
            .arg(url)
            .env("TESSERA_AUTH_URL", self.emu.url())
            .env("TESSERA_ANON_KEY", self.emu.anon_key())
            .env("TESSERA_PROFILE", &self.profile)
            .output()
            .unwrap()
    }

    /// Starts `tessera` directly (no WebDriver), as the desktop does when a link is
    /// opened, with its log in `log`. The caller ends it.
    pub fn spawn_app(&self, args: &[&str], log: &Path) -> Child {
        let file = std::fs::File::create(log).unwrap();
        Command::new(app_bin())
            .args(args)
            .env("TESSERA_AUTH_URL", self.emu.url())
            .env("TESSERA_ANON_KEY", self.emu.anon_key())
            .env("TESSERA_PROFILE", &self.profile)
            .env("TESSERA_LOG", "info")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap()
    }

    /// Runs `authctl` against the emulator with its own profile (another device).
    pub fn authctl(&self, profile: &str, args: &[&str], stdin: Option<&str>) -> Output {
        authctl_with_stdin(self.emu.url(), self.emu.anon_key(), profile, args, stdin)
    }

    /// Signs `email` in as another device (an `authctl` profile).
    pub fn sign_in_device(&self, profile: &str, email: &str) {
        let out = self.authctl(
            profile,
            &["sign-in", "--email", email, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(
            out.status.success(),
            "authctl sign-in: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Follows the newest emailed link to `email` like a browser and returns the
    /// `tessera://` deep link it redirects to.
    pub async fn deep_link_from_mail(&self, email: &str) -> String {
        let mails = self.emu.mail_for(Some(email)).unwrap();
        self.browser_follow(&mails.last().expect("a mail").action_link)
            .await
    }

    /// Opens a mailed link like a browser (one request, its redirect not followed) and
    /// returns the `tessera://` deep link it redirects to.
    pub async fn browser_follow(&self, link: &str) -> String {
        let resp = self.http.get(link).send().await.unwrap();
        let deep_link = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            deep_link.starts_with("tessera://auth/callback?"),
            "{deep_link}"
        );
        deep_link
    }

    /// The user's live sessions, as the server sees them.
    pub async fn sessions(&self, user_id: &str) -> Vec<Value> {
        self.env.server_sessions(user_id).await
    }
}

/// Runs `authctl` against `url` with `profile` (no standard input).
pub fn authctl_at(url: &str, anon_key: &str, profile: &str, args: &[&str]) -> Output {
    authctl_with_stdin(url, anon_key, profile, args, None)
}

fn authctl_with_stdin(
    url: &str,
    anon_key: &str,
    profile: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(bin_dir().join("authctl"));
    cmd.args(["--url", url, "--anon-key", anon_key, "--profile", profile])
        .args(args);
    tessera_test_support::output_with_stdin(cmd, stdin)
}

/// The current TOTP code for a base32 secret.
pub fn totp_now(secret: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tessera_test_support::totp_at(secret, now)
}

/// The D-Bus name by which the running app is found (tauri-plugin-single-instance:
/// `<identifier>.SingleInstance`).
pub const SINGLE_INSTANCE_NAME: &str = "dev.tessera.desktop.SingleInstance";

/// An app instance that is quitting: it holds the single-instance name, and when the next
/// instance hands it its arguments it leaves the bus without answering. Returns once the
/// name is held; the thread ends after the hand-over attempt (or after `patience`).
pub fn quitting_instance(patience: Duration) -> std::thread::JoinHandle<bool> {
    let (ready, held) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let conn = zbus::blocking::Connection::session().unwrap();
        // The app a test just closed may hold the name a moment longer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = conn.request_name(SINGLE_INSTANCE_NAME) {
            assert!(Instant::now() < deadline, "single-instance name: {e}");
            std::thread::sleep(Duration::from_millis(20));
        }
        ready.send(()).unwrap();
        let deadline = Instant::now() + patience;
        let (calls, called) = std::sync::mpsc::channel();
        let listener = conn.clone();
        std::thread::spawn(move || {
            for msg in zbus::blocking::MessageIterator::from(&listener) {
                let Ok(msg) = msg else { break };
                if msg
                    .header()
                    .member()
                    .is_some_and(|m| m.as_str() == "ExecuteCallback")
                {
                    let _ = calls.send(());
                    break;
                }
            }
        });
        let asked = called
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok();
        drop(conn); // leaves the bus: the caller gets no answer
        asked
    });
    held.recv_timeout(Duration::from_secs(10))
        .expect("the stand-in took the single-instance name");
    thread
}
