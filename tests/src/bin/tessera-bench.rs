//! Side-by-side benchmarks: Tessera and the official `@supabase/auth-js` against one GoTrue
//! emulator, in one run, on one machine (BENCHMARKS.md). Tessera's scenarios run here (the
//! engine in-process, or the release `authctl` and `tessera` binaries); auth-js's run in
//! Node through `tests/auth-js/bench.mjs`. Prints Markdown tables.
//!
//! Run by `scripts/bench` (release build, inside Xvfb and a private Secret Service).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auth_core::{
    AuthClient, AuthConfig, AuthEvent, Clock, KeyringStore, ManualClock, MemoryStore, Password,
    SecretStore, SignOutScope,
};
use gotrue_emulator::{Config, Emulator, EmulatorHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[path = "bench/app.rs"]
mod app;
#[path = "bench/proxy.rs"]
mod proxy;
#[path = "bench/refresh.rs"]
mod refresh;
#[path = "bench/sign_out.rs"]
mod sign_out;

use refresh::{coalescing, idle};
use sign_out::{revocation, sign_out};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct-horse-9";

struct Bench {
    emu: EmulatorHandle,
    http: reqwest::Client,
    root: PathBuf,
    scratch: tempfile::TempDir,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(tessera: f64, other: f64) -> String {
    if tessera <= 0.0 {
        return "—".into();
    }
    format!("{:.1}×", other / tessera)
}

impl Bench {
    fn release(&self, bin: &str) -> PathBuf {
        self.root.join("target/release").join(bin)
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/stats", self.emu.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn reset_stats(&self) {
        self.http
            .delete(format!("{}/_emulator/stats", self.emu.url()))
            .send()
            .await
            .unwrap();
    }

    async fn fault(&self, fault: Value) {
        self.http
            .post(format!("{}/_emulator/faults", self.emu.url()))
            .json(&fault)
            .send()
            .await
            .unwrap();
    }

    async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/_emulator/faults", self.emu.url()))
            .send()
            .await
            .unwrap();
    }

    fn node_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("node");
        cmd.current_dir(self.root.join("tests/auth-js"))
            .arg("--no-warnings")
            .arg("bench.mjs")
            .args(args)
            .env("BENCH_URL", self.emu.url())
            .env("BENCH_ANON", self.emu.anon_key())
            .env("BENCH_EMAIL", EMAIL)
            .env("BENCH_PASSWORD", PASSWORD)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a bench.mjs command; its last stdout line is JSON.
    async fn node(&self, args: &[&str]) -> Value {
        let out = self.node_cmd(args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|_| {
            panic!(
                "bench.mjs {args:?}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn authctl_cmd(&self, profile: &str, url: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.release("authctl"));
        cmd.args([
            "--url",
            url,
            "--anon-key",
            self.emu.anon_key(),
            "--profile",
            profile,
        ])
        .args(args)
        .env("TESSERA_LOCK_DIR", self.scratch.path().join("locks"));
        cmd
    }

    async fn authctl(&self, profile: &str, args: &[&str], stdin: Option<&str>) -> String {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .authctl_cmd(profile, self.emu.url(), args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "authctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn authctl_sign_in(&self, profile: &str) {
        self.authctl(
            profile,
            &["sign-in", "--email", EMAIL, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    }

    fn engine_config(&self) -> AuthConfig {
        AuthConfig::new(self.emu.url(), self.emu.anon_key())
    }

    async fn engine(
        &self,
        store: Arc<dyn SecretStore>,
        clock: Arc<ManualClock>,
        profile: &str,
    ) -> AuthClient {
        let mut cfg = self.engine_config();
        cfg.profile = profile.into();
        let client = AuthClient::with_clock(cfg, store, clock as Arc<dyn Clock>).unwrap();
        client.start().await.unwrap();
        client
    }

    async fn signed_in_engine(
        &self,
        store: Arc<dyn SecretStore>,
        profile: &str,
    ) -> (AuthClient, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_now());
        let client = self.engine(store, clock.clone(), profile).await;
        client
            .sign_in_with_password(EMAIL, &Password::new(PASSWORD))
            .await
            .unwrap();
        (client, clock)
    }

    /// Time from spawning `cmd` to its first line on stdout (then the process is killed).
    async fn time_to_first_line(mut cmd: Command) -> (Duration, String) {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().unwrap_or_default();
        let elapsed = started.elapsed();
        let _ = child.kill().await;
        (elapsed, line)
    }
}

/// RSS and PSS (KiB) of a process and all its descendants.
fn memory_of_tree(pid: u32) -> (u64, u64) {
    app::Snapshot::of(pid).total()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| size_of(&e.path()))
            .sum()
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

#[tokio::main]
async fn main() {
    let root = std::env::var_os("TESSERA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf()
        });
    let scratch = tempfile::Builder::new()
        .prefix("tessera-bench")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(scratch.path().join("locks")).unwrap();
    let mut config = Config::for_tests();
    config.jwt_exp = Duration::from_secs(3600);
    let emu = Emulator::start(config).await.unwrap();
    let http = reqwest::Client::new();
    emu.create_user(gotrue_emulator::NewUser::confirmed(EMAIL, PASSWORD))
        .await
        .unwrap();
    let b = Bench {
        emu,
        http,
        root,
        scratch,
    };
    let node_version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let auth_js: Value = serde_json::from_str(
        &std::fs::read_to_string(
            b.root
                .join("tests/auth-js/node_modules/@supabase/auth-js/package.json"),
        )
        .unwrap(),
    )
    .unwrap();
    println!(
        "Measured {} on this machine ({} cores): Tessera {} (release) vs @supabase/auth-js {} on Node {node_version}, \
         one gotrue-emulator (1 h access tokens, 10 s reuse interval).\n",
        chrono_like_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env!("CARGO_PKG_VERSION"),
        auth_js["version"].as_str().unwrap_or("?"),
    );

    // `tessera-bench proxy` runs the data proxy's scenario alone.
    if std::env::args().nth(1).as_deref() == Some("proxy") {
        proxy::proxy(&b.emu, EMAIL, PASSWORD).await;
        return;
    }
    // `tessera-bench app` runs the app-against-the-floor scenario alone (to try a lever).
    if std::env::args().nth(1).as_deref() == Some("app") {
        app::app_vs_floor(&b).await;
        return;
    }
    coalescing(&b).await;
    idle(&b).await;
    sign_out(&b).await;
    revocation(&b).await;
    restore(&b).await;
    resources(&b).await;
    proxy::proxy(&b.emu, EMAIL, PASSWORD).await;
    app::app_vs_floor(&b).await;
}

fn chrono_like_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

// ----------------------------------------------------------------------------- scenario 5

async fn restore(b: &Bench) {
    const RUNS: usize = 20;
    println!("## 5. Restore at start\n");
    println!(
        "Process start to `INITIAL_SESSION` with a stored, valid session ({RUNS} runs, median). \
         Tessera: `authctl watch` (release) reading the OS keyring; auth-js: a Node process reading \
         a JSON file (Node has no keyring). *Unreachable*: the server URL points at a closed port.\n"
    );
    let profile = "bench-restore";
    b.authctl_sign_in(profile).await;
    let file = b.scratch.path().join("auth-js-restore.json");
    let file = file.to_str().unwrap().to_owned();
    b.node(&["save-session", &file]).await;
    println!("| server | Tessera | auth-js | ratio |\n|---|---:|---:|---:|");
    for offline in [false, true] {
        // Offline: the same server, every connection to it dropped (a session belongs to
        // its server, so another URL would be another server, with no session).
        if offline {
            b.fault(json!({"path": "*", "drop": true, "times": u32::MAX}))
                .await;
        }
        let url = b.emu.url();
        let mut t = Vec::new();
        let mut j = Vec::new();
        for _ in 0..RUNS {
            let (d, line) =
                Bench::time_to_first_line(b.authctl_cmd(profile, url, &["watch"])).await;
            assert!(
                line.contains("INITIAL_SESSION") && line.contains(EMAIL),
                "{line}"
            );
            t.push(ms(d));
            let mut cmd = b.node_cmd(&["restore", &file, url]);
            cmd.env("BENCH_URL", url);
            let (d, line) = Bench::time_to_first_line(cmd).await;
            assert!(line.contains("\"initialSession\":true"), "{line}");
            j.push(ms(d));
        }
        let (t, j) = (median(t), median(j));
        println!(
            "| {} | {t:.1} ms | {j:.1} ms | {} faster |",
            if offline { "unreachable" } else { "online" },
            ratio(t, j)
        );
    }
    b.clear_faults().await;
    println!();
}

// ----------------------------------------------------------------------------- scenario 6

async fn resources(b: &Bench) {
    println!("## 6. Resource use\n");
    println!("The engine alone against auth-js alone; the whole app is in table 8.\n");
    let profile = "bench-restore"; // signed in above
    let mut engine = b
        .authctl_cmd(profile, b.emu.url(), &["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (engine_rss, engine_pss) = memory_of_tree(engine.id().unwrap());
    let _ = engine.kill().await;

    let file = b.scratch.path().join("auth-js-restore.json");
    let mut node = b
        .node_cmd(&["idleProcess", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (node_rss, node_pss) = memory_of_tree(node.id().unwrap());
    let _ = node.kill().await;

    println!("| idle, signed in | RSS | PSS |\n|---|---:|---:|");
    println!(
        "| Tessera engine alone (`authctl watch`) | {} | {} |",
        mib(engine_rss),
        mib(engine_pss)
    );
    println!(
        "| auth-js alone (Node process, auto-refresh on) | {} | {} |\n",
        mib(node_rss),
        mib(node_pss)
    );
    let node_bin = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v node)\""])
        .output()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap();
    println!("| artefact | size |\n|---|---:|");
    for bin in ["tessera", "authctl", "gotrue-emulator"] {
        println!(
            "| `target/release/{bin}` | {} |",
            mib(size_of(&b.release(bin)) / 1024)
        );
    }
    println!(
        "| `node` binary (runtime auth-js needs outside a browser) | {} |",
        mib(size_of(&node_bin) / 1024)
    );
    println!(
        "| `node_modules/@supabase/auth-js` (installed package) | {} |",
        mib(size_of(&b.root.join("tests/auth-js/node_modules/@supabase/auth-js")) / 1024)
    );
}
