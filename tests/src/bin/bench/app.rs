//! Scenario 8: the app against its floor, an empty Tauri window (`tests/floor`: the same
//! Tauri, the same release profile, one static page, no plugins), in one run:
//! memory of every process idle after 20 s and after the idle period, CPU time over it,
//! cold start to first paint and to the restored session on screen, binary sizes, and a
//! revocation elsewhere seen in the real window after it regains focus.
//!
//! `TESSERA_BENCH_IDLE_SECS` (default 600), `TESSERA_BENCH_RUNS` (default 10) and
//! `TESSERA_BENCH_TRIALS` (default 5; 0 leaves the revocation out) shorten it when a single
//! lever is being tried; the published tables use the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::Client;
use gotrue_emulator::Config;
use serde_json::{Value, json};
use tessera_e2e::{Harness, click, sign_in, stop_apps, wait_status};

use super::{Bench, median, mib, size_of};

const EMAIL: &str = "floor@example.com";
/// The app's focus check asks the server at most this often (the plugin's throttle).
const THROTTLE: Duration = Duration::from_secs(3);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// A process and all its descendants, with their command names.
fn tree(pid: u32) -> Vec<(u32, String)> {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if stat_field(child, 1) == Some(u64::from(parent)) && !pids.contains(&child) {
                pids.push(child);
            }
        }
        i += 1;
    }
    pids.into_iter()
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (p, comm.trim().to_owned())
        })
        .collect()
}

/// A numeric field of `/proc/<pid>/stat`, counted after the command name (0 = state,
/// 1 = ppid, 11 = utime, 12 = stime).
fn stat_field(pid: u32, n: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(n)?
        .parse()
        .ok()
}

fn kib(pid: u32, file: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What one program's processes use at one moment: RSS and PSS (KiB) by process kind,
/// and CPU time (clock ticks) of all of them.
#[derive(Default)]
pub(super) struct Snapshot {
    by_kind: BTreeMap<&'static str, (u64, u64)>,
    ticks: u64,
    /// Threads of the app's own process.
    threads: u64,
}

impl Snapshot {
    pub(super) fn of(pid: u32) -> Self {
        let mut snapshot = Self::default();
        for (p, comm) in tree(pid) {
            let kind = if p == pid {
                snapshot.threads = kib(p, "status", "Threads:");
                "the app's own process"
            } else if comm.starts_with("WebKitWeb") {
                "WebKitWebProcess"
            } else if comm.starts_with("WebKitNetwork") {
                "WebKitNetworkProcess"
            } else {
                "other processes"
            };
            let entry = snapshot.by_kind.entry(kind).or_default();
            entry.0 += kib(p, "status", "VmRSS:");
            entry.1 += kib(p, "smaps_rollup", "Pss:");
            snapshot.ticks += stat_field(p, 11).unwrap_or(0) + stat_field(p, 12).unwrap_or(0);
        }
        snapshot
    }

    pub(super) fn total(&self) -> (u64, u64) {
        self.by_kind
            .values()
            .fold((0, 0), |(r, p), (rss, pss)| (r + rss, p + pss))
    }

    fn kind(&self, kind: &str) -> (u64, u64) {
        self.by_kind.get(kind).copied().unwrap_or_default()
    }
}

/// Seconds of CPU from clock ticks (`getconf CLK_TCK` is 100 on Linux).
fn cpu_seconds(ticks: u64) -> String {
    format!("{:.2} s", ticks as f64 / 100.0)
}

fn signed_mib(kib: i64) -> String {
    format!("{:+.1} MiB", kib as f64 / 1024.0)
}

struct Programs {
    app: PathBuf,
    app_without_embedded: PathBuf,
    floor: PathBuf,
}

pub async fn app_vs_floor(b: &Bench) {
    let runs = env_number("TESSERA_BENCH_RUNS", 10) as usize;
    let idle = Duration::from_secs(env_number("TESSERA_BENCH_IDLE_SECS", 600));
    let programs = Programs {
        // scripts/bench sets TESSERA_APP_BIN to the release build (or a build to compare).
        app: tessera_e2e::app_bin(),
        app_without_embedded: b.root.join("target/bench/tessera-no-embedded"),
        floor: b.release("tessera-floor"),
    };
    println!("## 8. The app against an empty Tauri window\n");
    println!(
        "The floor is `tests/floor`: Tauri {} with the app's release profile, one window of the \
         same size, one static page, no plugins, no commands. Both under Xvfb (software \
         rendering), one after the other.\n",
        tauri_version(b)
    );

    let mut config = Config::for_tests();
    config.jwt_exp = Duration::from_secs(3600);
    let h = Harness::with(config).await;
    h.create_user(EMAIL).await;
    let app = h.open_app().await;
    sign_in(&app, EMAIL).await;
    app.close().await.unwrap();

    eprintln!("bench: cold starts ({runs} each)");
    let (app_paint, app_initial) = cold_starts(&h, b, &programs.app, runs, true).await;
    let (floor_paint, _) = cold_starts(&h, b, &programs.floor, runs, false).await;
    let trials = env_number("TESSERA_BENCH_TRIALS", 5) as usize;
    eprintln!("bench: revocation trials ({trials} each)");
    let revocation = if trials > 0 {
        revocation(&h, trials).await
    } else {
        String::new()
    };

    // The idle runs restore the session the trials left signed in.
    stop_apps(Duration::from_secs(5));

    // The floor first, with the engine-only anchors beside it (they share nothing with
    // WebKit); then the app alone.
    let anchors = [
        b.authctl_cmd("bench-restore", b.emu.url(), &["watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        b.node_cmd(&[
            "idleProcess",
            b.scratch
                .path()
                .join("auth-js-restore.json")
                .to_str()
                .unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    ];
    let anchor_pids: Vec<u32> = anchors.iter().map(|c| c.id().unwrap()).collect();
    let anchor_start: Vec<Snapshot> = anchor_pids.iter().map(|&p| Snapshot::of(p)).collect();
    eprintln!("bench: the floor idle for {} s", idle.as_secs() + 20);
    let floor = idle_run(Command::new(&programs.floor), idle).await;
    let anchor_end: Vec<Snapshot> = anchor_pids.iter().map(|&p| Snapshot::of(p)).collect();
    for mut anchor in anchors {
        let _ = anchor.kill().await;
    }
    let mut app_cmd = Command::new(&programs.app);
    app_cmd
        .env("TESSERA_AUTH_URL", h.emu.url())
        .env("TESSERA_ANON_KEY", h.emu.anon_key())
        .env("TESSERA_PROFILE", &h.profile);
    eprintln!("bench: the app idle for {} s", idle.as_secs() + 20);
    let tessera = idle_run(app_cmd, idle).await;

    let period = if idle.as_secs().is_multiple_of(60) {
        format!("{} min", idle.as_secs() / 60)
    } else {
        format!("{} s", idle.as_secs())
    };
    println!("| idle, signed in | floor | Tessera | Tessera − floor |\n|---|---:|---:|---:|");
    for (label, at) in [("after 20 s", 0), (&format!("after 20 s + {period}"), 1)] {
        for kind in [
            "the app's own process",
            "WebKitWebProcess",
            "WebKitNetworkProcess",
            "other processes",
        ] {
            let (f, t) = (floor[at].kind(kind), tessera[at].kind(kind));
            if f != (0, 0) || t != (0, 0) {
                memory_row(&format!("{label}: {kind}, RSS / PSS"), f, t);
            }
        }
        let (f, t) = (floor[at].total(), tessera[at].total());
        memory_row(&format!("**{label}: all processes, RSS / PSS**"), f, t);
    }
    println!(
        "| threads of the app's own process (after 20 s + {period}) | {} | {} | {:+} |",
        floor[1].threads,
        tessera[1].threads,
        tessera[1].threads as i64 - floor[1].threads as i64
    );
    let (f_cpu, t_cpu) = (
        floor[1].ticks - floor[0].ticks,
        tessera[1].ticks - tessera[0].ticks,
    );
    println!(
        "| CPU time in {period} idle, all processes | {} | {} | {:+.2} s |",
        cpu_seconds(f_cpu),
        cpu_seconds(t_cpu),
        (t_cpu as f64 - f_cpu as f64) / 100.0
    );
    println!(
        "| cold start → first paint (median of {runs}) | {:.0} ms | {:.0} ms | {:+.0} ms |",
        floor_paint,
        app_paint,
        app_paint - floor_paint
    );
    println!(
        "| cold start → restored session on screen (`INITIAL_SESSION`, median of {runs}) | — | {:.0} ms | |",
        app_initial
    );
    let floor_size = size_of(&programs.floor);
    for (label, bin) in [
        ("binary (default: embedded demo server)", &programs.app),
        (
            "binary without the embedded server (`--no-default-features`)",
            &programs.app_without_embedded,
        ),
    ] {
        let size = size_of(bin);
        println!(
            "| {label} | {} | {} | {} |",
            mib(floor_size / 1024),
            mib(size / 1024),
            signed_mib((size as i64 - floor_size as i64) / 1024)
        );
    }
    println!();
    println!(
        "The engine's share, in the same {period} idle (running beside the floor): \
         `authctl watch` used {} of CPU ({} RSS); auth-js in Node with auto-refresh {} ({} RSS).\n",
        cpu_seconds(anchor_end[0].ticks - anchor_start[0].ticks),
        mib(anchor_end[0].total().0),
        cpu_seconds(anchor_end[1].ticks - anchor_start[1].ticks),
        mib(anchor_end[1].total().0),
    );
    println!("{revocation}");
}

/// A table row: floor, Tessera and the difference, each as RSS / PSS.
fn memory_row(label: &str, floor: (u64, u64), tessera: (u64, u64)) {
    println!(
        "| {label} | {} / {} | {} / {} | {} / {} |",
        mib(floor.0),
        mib(floor.1),
        mib(tessera.0),
        mib(tessera.1),
        signed_mib(tessera.0 as i64 - floor.0 as i64),
        signed_mib(tessera.1 as i64 - floor.1 as i64)
    );
}

fn tauri_version(b: &Bench) -> String {
    let lock = std::fs::read_to_string(b.root.join("Cargo.lock")).unwrap_or_default();
    lock.split("[[package]]")
        .find(|p| p.contains("\nname = \"tauri\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "?".into())
}

/// Starts `cmd`, waits 20 s, takes a snapshot, waits `idle`, takes another, ends it.
async fn idle_run(mut cmd: Command, idle: Duration) -> [Snapshot; 2] {
    let mut child: Child = cmd
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let first = Snapshot::of(pid);
    tokio::time::sleep(idle).await;
    let second = Snapshot::of(pid);
    let _ = child.kill();
    let _ = child.wait();
    stop_apps(Duration::from_secs(5));
    [first, second]
}

/// Starts `program` through WebDriver `runs` times, each from nothing running, and returns
/// the medians (ms) from the process's start to the page's first contentful paint and, for
/// the app, to the restored session on screen (the UI's `tessera:initial-session` mark).
/// A wrapper script notes the start time and `exec`s the program; the page's times are its
/// own (`performance.timeOrigin` plus the entry's time).
async fn cold_starts(
    h: &Harness,
    b: &Bench,
    program: &Path,
    runs: usize,
    is_app: bool,
) -> (f64, f64) {
    let name = program.file_name().unwrap().to_string_lossy();
    let stamp = b.scratch.path().join(format!("{name}.started"));
    let wrapper = b.scratch.path().join(format!("{name}-timed"));
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ndate +%s%N > '{}'\nexec '{}' \"$@\"\n",
            stamp.display(),
            program.display()
        ),
    )
    .unwrap();
    let _ = Command::new("chmod").arg("+x").arg(&wrapper).status();
    let (mut paints, mut initials) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        end_program(program);
        let client = h.open_program(&wrapper, &[]).await;
        let times = page_times(&client, is_app).await;
        let started: f64 = std::fs::read_to_string(&stamp)
            .unwrap()
            .trim()
            .parse::<f64>()
            .unwrap()
            / 1e6;
        paints.push(times.0 - started);
        if let Some(initial) = times.1 {
            initials.push(initial - started);
        }
        let _ = client.close().await;
    }
    end_program(program);
    let initial = if initials.is_empty() {
        f64::NAN
    } else {
        median(initials)
    };
    (median(paints), initial)
}

/// Ends every process of `program` and, for the app, waits until its single-instance name
/// is free.
fn end_program(program: &Path) {
    stop_apps(Duration::from_secs(5));
    let _ = Command::new("pkill").arg("-f").arg(program).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Command::new("pgrep")
        .arg("-f")
        .arg(program)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The page's first contentful paint and (for the app) its restored-session mark, as
/// wall-clock milliseconds, once both are there.
async fn page_times(client: &Client, is_app: bool) -> (f64, Option<f64>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = client
            .execute(
                "const paint = performance.getEntriesByType('paint') \
                   .find((e) => e.name === 'first-contentful-paint'); \
                 const mark = performance.getEntriesByName('tessera:initial-session')[0]; \
                 return { origin: performance.timeOrigin, \
                   paint: paint ? paint.startTime : null, \
                   initial: mark ? mark.startTime : null };",
                vec![],
            )
            .await
            .unwrap_or(json!({}));
        let origin = v["origin"].as_f64();
        let paint = v["paint"].as_f64();
        let initial = v["initial"].as_f64();
        if let (Some(origin), Some(paint)) = (origin, paint)
            && (!is_app || initial.is_some() || Instant::now() + Duration::from_secs(15) > deadline)
        {
            // A build from before the UI had its mark: no restored-session time.
            return (origin + paint, initial.map(|i| origin + i));
        }
        assert!(
            Instant::now() < deadline,
            "no first paint / restored-session mark within 30 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Another device signs out `global`; the app (two windows, idle, signed in) regains focus
/// a second later. Returns the Markdown table.
async fn revocation(h: &Harness, trials: usize) -> String {
    let app = h.open_app().await; // signed in: the session is restored
    wait_status(&app, |s| s.starts_with("Signed in")).await;
    click(&app, "new-window").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let windows = app_windows();
    assert_eq!(windows.len(), 2, "two app windows: {windows:?}");
    let web_processes = web_processes_of_the_app();
    let laptop = format!("{}-laptop", h.profile);
    let (mut after_focus, mut after_revocation) = (Vec::new(), Vec::new());
    let mut throttled = Vec::new();
    for trial in 0..trials * 2 {
        let within_throttle = trial >= trials;
        let (first, second) = if trial % 2 == 0 {
            (&windows[0], &windows[1])
        } else {
            (&windows[1], &windows[0])
        };
        h.sign_in_device(&laptop, EMAIL);
        // A focus that checks the session (past the throttle), as a person switching in;
        // `second` first, so that `first` surely changes hands (xdotool does nothing for
        // the window that has the focus already).
        tokio::time::sleep(THROTTLE + Duration::from_millis(500)).await;
        focus(second);
        tokio::time::sleep(Duration::from_millis(150)).await;
        focus(first);
        watch_signed_out(&app).await;
        tokio::time::sleep(if within_throttle {
            Duration::from_millis(500)
        } else {
            THROTTLE + Duration::from_millis(500)
        })
        .await;
        let out = h.authctl(&laptop, &["sign-out", "--scope", "global"], None);
        assert!(out.status.success(), "the other device signs out");
        let revoked = epoch_ms();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let focused = epoch_ms();
        focus(second);
        if within_throttle {
            // Inside the throttle: no request; the next focus past it sees the sign-out.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let seen_early = signed_out_at(&app).await.is_some();
            tokio::time::sleep(THROTTLE).await;
            let refocused = epoch_ms();
            focus(first);
            let at = wait_signed_out(&app).await;
            throttled.push((seen_early, at - refocused, at - revoked));
        } else {
            let at = wait_signed_out(&app).await;
            after_focus.push(at - focused);
            after_revocation.push(at - revoked);
        }
        eprintln!("bench: revocation trial {} done", trial + 1);
        sign_in(&app, EMAIL).await;
    }
    let _ = app.close().await;
    let early = throttled.iter().filter(|t| t.0).count();
    format!(
        "Revocation elsewhere, seen in the real window: another device signs out `global`; \
         0.5 s later the app's window regains focus (xdotool under Xvfb); the time is the \
         page's own when it shows \"Signed out\". The app asks the server at most once per \
         {} s however many windows gain focus. With its two windows open the app ran \
         {web_processes} web process(es).\n\n\
         | {trials} trials each | focus → `SIGNED_OUT` shown (median) | revocation → shown (median) |\n\
         |---|---:|---:|\n\
         | focus more than {} s after the last check | {:.0} ms | {:.0} ms |\n\
         | focus within {} s of the last check (no request: seen at the next focus past it; seen early in {early}/{trials}) | {:.0} ms after that focus | {:.0} ms |\n",
        THROTTLE.as_secs(),
        THROTTLE.as_secs(),
        median(after_focus),
        median(after_revocation),
        THROTTLE.as_secs(),
        median(throttled.iter().map(|t| t.1).collect()),
        median(throttled.iter().map(|t| t.2).collect()),
    )
}

/// How many `WebKitWebProcess` processes the running app has.
fn web_processes_of_the_app() -> usize {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(tessera_e2e::app_bin())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .map(|pid| {
            tree(pid)
                .iter()
                .filter(|(_, comm)| comm.starts_with("WebKitWeb"))
                .count()
        })
        .sum()
}

/// The app's windows (X ids), named "Tessera".
fn app_windows() -> Vec<String> {
    let out = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--name", "^Tessera$"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn focus(window: &str) {
    let _ = Command::new("xdotool")
        .args(["windowfocus", "--sync", window])
        .output();
}

/// Notes (in the page) the moment the status line turns to "Signed out".
async fn watch_signed_out(app: &Client) {
    app.execute(
        "window.__signedOutAt = null; \
         const el = document.getElementById('auth-status'); \
         new MutationObserver((_, o) => { if (el.textContent === 'Signed out') { \
           window.__signedOutAt = performance.timeOrigin + performance.now(); o.disconnect(); } \
         }).observe(el, { childList: true, characterData: true, subtree: true });",
        vec![],
    )
    .await
    .unwrap();
}

async fn signed_out_at(app: &Client) -> Option<f64> {
    app.execute("return window.__signedOutAt;", vec![])
        .await
        .ok()?
        .as_f64()
}

async fn wait_signed_out(app: &Client) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(at) = signed_out_at(app).await {
            wait_status(app, |s| s == "Signed out").await;
            return at;
        }
        if Instant::now() >= deadline {
            let status = app
                .find(fantoccini::Locator::Id("auth-status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap_or_default();
            panic!("the app did not show the revocation within 20 s (status {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
