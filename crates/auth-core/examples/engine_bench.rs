//! Engine benchmarks against an in-process GoTrue emulator (not timed tests):
//!
//! - refresh requests made by 1000 concurrent `access_token()` calls on an expired session
//!   (counted by the server);
//! - background wake-ups and refreshes per idle signed-in hour (simulated time);
//! - local sign-out latency until `SIGNED_OUT` is delivered, online and with the server
//!   unreachable (median and p99 over many runs).
//!
//! Run: `cargo run --release -p auth-core --example engine_bench`
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auth_core::{
    AuthClient, AuthConfig, AuthEvent, Clock, ManualClock, MemoryStore, Password, SecretStore,
    SignOutScope,
};
use gotrue_emulator::{Config, Emulator, EmulatorHandle};
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-9";

async fn device(emu: &EmulatorHandle, clock: Arc<ManualClock>) -> AuthClient {
    let cfg = AuthConfig::new(emu.url(), emu.anon_key());
    let client = AuthClient::with_clock(
        cfg,
        Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>,
        clock as Arc<dyn Clock>,
    )
    .unwrap();
    client.start().await.unwrap();
    client
}

async fn stats(http: &reqwest::Client, emu: &EmulatorHandle) -> Value {
    http.get(format!("{}/_emulator/stats", emu.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let emu = Emulator::start(Config::for_tests()).await.unwrap();
    let http = reqwest::Client::new();
    http.post(format!("{}/admin/users", emu.url()))
        .bearer_auth(emu.service_role_key())
        .json(&json!({"email": "bench@example.com", "password": PASSWORD, "email_confirm": true}))
        .send()
        .await
        .unwrap();
    let password = Password::new(PASSWORD);

    // 1. Refresh coalescing.
    println!("## Refresh coalescing (expired session, concurrent access_token() calls)\n");
    println!("| callers | refresh requests (server count) |\n|---:|---:|");
    for n in [1usize, 10, 100, 1000] {
        let clock = Arc::new(ManualClock::starting_now());
        let client = device(&emu, clock.clone()).await;
        client
            .sign_in_with_password("bench@example.com", &password)
            .await
            .unwrap();
        http.delete(format!("{}/_emulator/stats", emu.url()))
            .send()
            .await
            .unwrap();
        clock.advance(Duration::from_secs(3600));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.access_token().await.map(|_| ()) })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        println!(
            "| {n} | {} |",
            stats(&http, &emu).await["refresh_token_grants"]
        );
        client.sign_out(SignOutScope::Local).await.unwrap();
    }

    // 2. Idle wake-ups.
    println!("\n## Idle signed-in engine (simulated 24 h, 1 h access tokens)\n");
    let clock = Arc::new(ManualClock::starting_now());
    let client = device(&emu, clock.clone()).await;
    client
        .sign_in_with_password("bench@example.com", &password)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let w0 = client.metrics().wakeups.load(Ordering::SeqCst);
    let r0 = client.metrics().refresh_requests.load(Ordering::SeqCst);
    for _ in 0..(24 * 60) {
        clock.advance(Duration::from_secs(60));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let wakeups = client.metrics().wakeups.load(Ordering::SeqCst) - w0;
    let refreshes = client.metrics().refresh_requests.load(Ordering::SeqCst) - r0;
    println!("| metric | per hour |\n|---|---:|");
    println!("| background wake-ups | {:.2} |", wakeups as f64 / 24.0);
    println!("| refresh requests | {:.2} |", refreshes as f64 / 24.0);
    println!("| (supabase-js ticker, by its constants: 30 s tick) | 120 |");
    client.sign_out(SignOutScope::Local).await.unwrap();

    // 3. Local sign-out latency.
    println!("\n## Local sign-out: call → SIGNED_OUT delivered (engine with in-memory store)\n");
    println!("| server | runs | median | p99 |\n|---|---:|---:|---:|");
    for offline in [false, true] {
        let mut samples = Vec::new();
        for _ in 0..200 {
            let clock = Arc::new(ManualClock::starting_now());
            let client = device(&emu, clock).await;
            client
                .sign_in_with_password("bench@example.com", &password)
                .await
                .unwrap();
            if offline {
                http.post(format!("{}/_emulator/faults", emu.url()))
                    .json(&json!({"path": "/logout", "drop": true, "times": 1}))
                    .send()
                    .await
                    .unwrap();
            }
            let mut events = client.subscribe();
            let started = Instant::now();
            let c = client.clone();
            let signing_out = tokio::spawn(async move { c.sign_out(SignOutScope::Local).await });
            loop {
                if events.recv().await.unwrap().event == AuthEvent::SignedOut {
                    break;
                }
            }
            samples.push(started.elapsed());
            signing_out.await.unwrap().unwrap();
            client.flush_outbox().await.unwrap();
        }
        samples.sort();
        println!(
            "| {} | {} | {:.3} ms | {:.3} ms |",
            if offline {
                "unreachable (connection dropped)"
            } else {
                "online"
            },
            samples.len(),
            percentile(&samples, 0.5).as_secs_f64() * 1000.0,
            percentile(&samples, 0.99).as_secs_f64() * 1000.0
        );
    }
}
