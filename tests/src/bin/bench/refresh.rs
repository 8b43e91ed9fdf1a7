//! Scenarios 1 and 2: a thousand callers make one refresh; an idle engine does nothing.

use super::*;

// ----------------------------------------------------------------------------- scenario 1

pub(super) async fn coalescing(b: &Bench) {
    println!("## 1. Refresh coalescing\n");
    println!(
        "Concurrent requests for a valid token on an expired session (Tessera: `access_token()`, \
         auth-js: `getSession()`), counted at the server.\n"
    );
    println!(
        "| concurrent callers | Tessera refresh requests | auth-js refresh requests |\n|---:|---:|---:|"
    );
    for n in [1usize, 10, 100, 1000] {
        let (client, clock) = b
            .signed_in_engine(Arc::new(MemoryStore::new()), "coalesce")
            .await;
        b.reset_stats().await;
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
        let tessera = b.stats().await["refresh_token_grants"].as_u64().unwrap();
        client.sign_out(SignOutScope::Local).await.unwrap();
        let js = b.node(&["coalesce", &n.to_string()]).await;
        assert_eq!(js["failed"], 0, "{js}");
        println!("| {n} | {tessera} | {} |", js["refreshRequests"]);
    }

    // Two processes on one stored session, ten trials.
    const TRIALS: usize = 10;
    let mut tessera = (0, 0);
    let profile = "bench-two-processes";
    b.authctl_sign_in(profile).await;
    for _ in 0..TRIALS {
        b.reset_stats().await;
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let mut cmd = b.authctl_cmd(profile, b.emu.url(), &["refresh"]);
                cmd.stdout(Stdio::null()).stderr(Stdio::piped());
                tokio::spawn(async move { cmd.output().await.unwrap() })
            })
            .collect();
        for r in runs {
            let out = r.await.unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let s = b.stats().await;
        tessera.0 += s["refresh_token_grants"].as_u64().unwrap();
        tessera.1 += s["refresh_token_reuses"].as_u64().unwrap();
    }
    b.authctl(profile, &["sign-out", "--scope", "local"], None)
        .await;

    let file = b.scratch.path().join("auth-js-two-processes.json");
    let file = file.to_str().unwrap();
    b.node(&["save-session", file]).await;
    let mut js = (0, 0);
    for _ in 0..TRIALS {
        b.node(&["expire-file", file]).await;
        b.reset_stats().await;
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let mut cmd = b.node_cmd(&["refresh-file", file]);
                cmd.stdout(Stdio::piped()).stderr(Stdio::null());
                tokio::spawn(async move { cmd.output().await.unwrap() })
            })
            .collect();
        for r in runs {
            assert!(r.await.unwrap().status.success());
        }
        let s = b.stats().await;
        js.0 += s["refresh_token_grants"].as_u64().unwrap();
        js.1 += s["refresh_token_reuses"].as_u64().unwrap();
    }
    println!(
        "\nTwo processes at once on one stored session, {TRIALS} trials (Tessera: two `authctl refresh` \
         on one keyring entry; auth-js: two Node processes, each `getSession()` on an expired \
         session in one shared storage file). A *reuse* is a refresh token sent twice: GoTrue \
         tolerates it for 10 s, after that it revokes the whole session.\n"
    );
    println!("| per trial | Tessera | auth-js |\n|---|---:|---:|");
    println!(
        "| refresh requests | {:.1} | {:.1} |",
        tessera.0 as f64 / TRIALS as f64,
        js.0 as f64 / TRIALS as f64
    );
    println!(
        "| refresh-token reuses | {:.1} | {:.1} |\n",
        tessera.1 as f64 / TRIALS as f64,
        js.1 as f64 / TRIALS as f64
    );
}

// ----------------------------------------------------------------------------- scenario 2

pub(super) async fn idle(b: &Bench) {
    println!("## 2. Idle wake-ups\n");
    println!(
        "A signed-in, idle client with 1 h access tokens, in simulated time (Tessera: a manual \
         clock over 24 h; auth-js: Node's mocked timers and `Date` over 6 h, the emulator's clock \
         moved along).\n"
    );
    let (client, clock) = b
        .signed_in_engine(Arc::new(MemoryStore::new()), "idle")
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let w0 = client.metrics().wakeups.load(Ordering::SeqCst);
    let r0 = client.metrics().refresh_requests.load(Ordering::SeqCst);
    for _ in 0..(24 * 60) {
        clock.advance(Duration::from_secs(60));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let wakeups = (client.metrics().wakeups.load(Ordering::SeqCst) - w0) as f64 / 24.0;
    let refreshes = (client.metrics().refresh_requests.load(Ordering::SeqCst) - r0) as f64 / 24.0;
    client.sign_out(SignOutScope::Local).await.unwrap();
    let js = b.node(&["idle"]).await;
    let js_wakeups = js["wakeupsPerHour"].as_f64().unwrap();
    println!("| per hour | Tessera | auth-js | ratio |\n|---|---:|---:|---:|");
    println!(
        "| timer wake-ups | {wakeups:.2} | {js_wakeups:.0} | {} fewer |",
        ratio(wakeups, js_wakeups)
    );
    println!(
        "| refresh requests | {refreshes:.2} | {:.2} | |\n",
        js["refreshesPerHour"].as_f64().unwrap()
    );
}
