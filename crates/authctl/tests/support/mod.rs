//! Helpers shared by the authctl process tests: authctl as a child process, the emulator.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output};

use gotrue_emulator::{Config, Emulator, EmulatorHandle};
use serde_json::Value;

pub use tessera_test_support::{PASSWORD, create_user, output_with_stdin, unique_id};

pub struct Ctl<'a> {
    pub emu: &'a EmulatorHandle,
    pub profile: String,
    /// This "device"'s config folder (`TESSERA_CONFIG_DIR`: the saved server).
    pub config_dir: tempfile::TempDir,
}

impl<'a> Ctl<'a> {
    pub fn new(emu: &'a EmulatorHandle) -> Self {
        Self {
            emu,
            profile: format!("test-{}", unique_id()),
            config_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// authctl with this profile and config folder, and no server given: it uses the saved
    /// server (or the default).
    pub fn bare_cmd(&self) -> Command {
        let mut cmd = authctl();
        cmd.args(["--profile", &self.profile])
            .env("TESSERA_CONFIG_DIR", self.config_dir.path())
            .env_remove("TESSERA_AUTH_URL")
            .env_remove("TESSERA_ANON_KEY");
        cmd
    }

    pub fn cmd(&self, url: &str) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.args(["--url", url, "--anon-key", self.emu.anon_key()]);
        cmd
    }

    /// Runs authctl on the saved server (no `--url`, no `--anon-key`).
    pub fn run_saved(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.bare_cmd();
        cmd.args(args);
        output_with_stdin(cmd, stdin)
    }

    pub fn ok_saved(&self, args: &[&str], stdin: Option<&str>) -> String {
        succeeded(args, self.run_saved(args, stdin))
    }

    /// `server set` to an emulator (its root URL and anon key).
    pub fn set_server(&self, emu: &EmulatorHandle) -> String {
        self.ok_saved(
            &["server", "set", emu.url(), "--anon-key", emu.anon_key()],
            None,
        )
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
        succeeded(args, self.run(args, stdin))
    }

    pub fn sign_in(&self, email: &str) {
        let out = self.ok(
            &["sign-in", "--email", email, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.contains(&format!("signed in as {email}")), "{out}");
    }
}

/// The authctl under test: this build's, or another platform's build through a launcher
/// (`TESSERA_AUTHCTL=authctl.exe TESSERA_AUTHCTL_RUNNER=scripts/wine-run`: the Windows
/// build under Wine, talking to this emulator on loopback).
pub fn authctl() -> Command {
    let Some(exe) = another_build() else {
        return Command::new(env!("CARGO_BIN_EXE_authctl"));
    };
    match std::env::var_os("TESSERA_AUTHCTL_RUNNER").filter(|v| !v.is_empty()) {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// Another platform's authctl under test (`TESSERA_AUTHCTL`), if any.
fn another_build() -> Option<std::ffi::OsString> {
    std::env::var_os("TESSERA_AUTHCTL").filter(|v| !v.is_empty())
}

/// Whether the authctl under test is another platform's build.
pub fn testing_another_build() -> bool {
    another_build().is_some()
}

/// The standard output of a run that must have succeeded.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "authctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub async fn emulator(config: Config) -> EmulatorHandle {
    Emulator::start(config).await.unwrap()
}

pub async fn get(emu: &EmulatorHandle, path: &str) -> Value {
    reqwest::get(format!("{}{path}", emu.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The ids of the user's live sessions at the server.
pub async fn live_sessions(emu: &EmulatorHandle, user_id: &str) -> Vec<String> {
    get(emu, &format!("/_emulator/sessions?user_id={user_id}"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs blocking process work off the test's runtime (the emulator runs on it).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
