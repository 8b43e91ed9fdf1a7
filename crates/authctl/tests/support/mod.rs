//! Helpers shared by the authctl process tests: authctl as a child process, the emulator.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use gotrue_emulator::{Config, Emulator, EmulatorHandle};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct-horse-9";

pub struct Ctl<'a> {
    pub emu: &'a EmulatorHandle,
    pub profile: String,
}

impl<'a> Ctl<'a> {
    pub fn new(emu: &'a EmulatorHandle) -> Self {
        Self {
            emu,
            profile: format!("test-{}", uuid()),
        }
    }

    pub fn cmd(&self, url: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authctl"));
        cmd.args([
            "--url",
            url,
            "--anon-key",
            self.emu.anon_key(),
            "--profile",
            &self.profile,
        ]);
        cmd
    }

    pub fn run_at(&self, url: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.cmd(url);
        cmd.args(args);
        output_with_stdin(cmd, stdin)
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_at(self.emu.url(), args, stdin)
    }

    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "authctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn sign_in(&self, email: &str) {
        let out = self.ok(
            &["sign-in", "--email", email, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.contains(&format!("signed in as {email}")), "{out}");
    }
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

pub fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub async fn emulator(config: Config) -> EmulatorHandle {
    Emulator::start(config).await.unwrap()
}

pub async fn create_user(emu: &EmulatorHandle, email: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/admin/users", emu.url()))
        .bearer_auth(emu.service_role_key())
        .json(&json!({"email": email, "password": PASSWORD, "email_confirm": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id"].as_str().unwrap().to_owned()
}

pub async fn get(emu: &EmulatorHandle, path: &str) -> Value {
    reqwest::get(format!("{}{path}", emu.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs blocking process work off the test's runtime (the emulator runs on it).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
