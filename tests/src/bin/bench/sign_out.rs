//! Scenarios 3 and 4: sign-out (local, global, others) and a queued revocation delivered.

use super::*;

// ----------------------------------------------------------------------------- scenario 3

pub(super) struct SignOutRow {
    signed_out: usize,
    runs: usize,
    median: f64,
    p99: f64,
    errors: usize,
}

pub(super) async fn tessera_sign_out(
    b: &Bench,
    store: Arc<dyn SecretStore>,
    scope: SignOutScope,
    offline: bool,
    runs: usize,
) -> SignOutRow {
    let mut samples = Vec::new();
    let mut signed_out = 0;
    let mut errors = 0;
    for _ in 0..runs {
        let (client, _clock) = b.signed_in_engine(store.clone(), "signout").await;
        if offline {
            b.fault(json!({"path": "/logout", "drop": true, "times": 1}))
                .await;
        }
        let mut events = client.subscribe();
        let started = Instant::now();
        let c = client.clone();
        let call = tokio::spawn(async move { c.sign_out(scope).await });
        // The time to SIGNED_OUT when there is one (local, global); otherwise the call's.
        let event_at = if scope == SignOutScope::Others {
            None
        } else {
            loop {
                if events.recv().await.unwrap().event == AuthEvent::SignedOut {
                    break Some(started.elapsed());
                }
            }
        };
        let result = call.await.unwrap();
        let returned = started.elapsed();
        errors += usize::from(result.is_err());
        if event_at.is_some() && client.session().is_none() {
            signed_out += 1;
        }
        samples.push(ms(event_at.unwrap_or(returned)));
        b.clear_faults().await;
        if client.session().is_some() {
            client.sign_out(SignOutScope::Local).await.unwrap();
        }
        client.flush_outbox().await.unwrap();
    }
    SignOutRow {
        signed_out,
        runs,
        median: median(samples.clone()),
        p99: percentile(samples, 0.99),
        errors,
    }
}

pub(super) async fn sign_out(b: &Bench) {
    const RUNS: usize = 100;
    println!("## 3. Sign-out latency\n");
    println!(
        "From the call to the local session being gone and `SIGNED_OUT` delivered ({RUNS} runs \
         each, in-memory storage on both sides; *unreachable* = the server drops the `/logout` \
         connection). For `others` the local session stays by design: the column shows how long the \
         call took. \"Signed out\" counts runs that ended with the local session gone.\n"
    );
    println!(
        "| scope | server | Tessera signed out | Tessera median / p99 | auth-js signed out | auth-js median / p99 | auth-js errors |\n|---|---|---:|---:|---:|---:|---|"
    );
    for scope in [
        SignOutScope::Local,
        SignOutScope::Global,
        SignOutScope::Others,
    ] {
        for offline in [false, true] {
            let t = tessera_sign_out(b, Arc::new(MemoryStore::new()), scope, offline, RUNS).await;
            let js = b
                .node(&[
                    "signout",
                    scope.as_str(),
                    if offline { "offline" } else { "online" },
                    &RUNS.to_string(),
                ])
                .await;
            let js_errors = js["errors"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{v}× {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "—".into());
            let t_note = if t.errors > 0 {
                format!(" ({} queued, error returned)", t.errors)
            } else {
                String::new()
            };
            println!(
                "| {} | {} | {}/{}{t_note} | {:.3} / {:.3} ms | {}/{} | {:.3} / {:.3} ms | {js_errors} |",
                scope.as_str(),
                if offline { "unreachable" } else { "online" },
                t.signed_out,
                t.runs,
                t.median,
                t.p99,
                js["signedOutLocally"],
                js["runs"],
                js["medianMs"].as_f64().unwrap(),
                js["p99Ms"].as_f64().unwrap(),
            );
        }
    }
    println!(
        "\nWith Tessera's real storage, the OS keyring (gnome-keyring over D-Bus): call → \
         `SIGNED_OUT` for a `local` sign-out, 30 runs (one keyring write to queue the \
         revocation, one delete of the session):\n"
    );
    println!("| store | server | median | p99 |\n|---|---|---:|---:|");
    for offline in [false, true] {
        let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::for_platform("tessera-bench"));
        let row = tessera_sign_out(b, store, SignOutScope::Local, offline, 30).await;
        let (m, p) = (row.median, row.p99);
        println!(
            "| OS keyring | {} | {m:.3} ms | {p:.3} ms |",
            if offline { "unreachable" } else { "online" }
        );
    }
    println!();
}

// ----------------------------------------------------------------------------- scenario 4

pub(super) async fn revocation(b: &Bench) {
    println!("## 4. Remote revocation delay\n");
    println!(
        "Device B signs out `global`; how long until device A (signed in, idle, fresh 1 h token) \
         shows `SIGNED_OUT`.\n"
    );
    // Tessera, A regains focus: the app calls validate().
    let mut samples = Vec::new();
    for _ in 0..20 {
        let (a, _) = b
            .signed_in_engine(Arc::new(MemoryStore::new()), "device-a")
            .await;
        let (other, _) = b
            .signed_in_engine(Arc::new(MemoryStore::new()), "device-b")
            .await;
        let mut events = a.subscribe();
        other.sign_out(SignOutScope::Global).await.unwrap();
        let started = Instant::now();
        assert_eq!(a.validate().await.unwrap(), None);
        let ended = loop {
            let e = events.recv().await.unwrap();
            if e.event == AuthEvent::SignedOut {
                break e;
            }
        };
        samples.push(ms(started.elapsed()));
        assert_eq!(ended.reason, Some(auth_core::SignOutReason::Revoked));
    }
    let on_focus = median(samples);
    // Tessera without focus: simulated time until its own refresh finds the session gone.
    let (a, clock) = b
        .signed_in_engine(Arc::new(MemoryStore::new()), "device-a")
        .await;
    let (other, _) = b
        .signed_in_engine(Arc::new(MemoryStore::new()), "device-b")
        .await;
    other.sign_out(SignOutScope::Global).await.unwrap();
    let still = a.session().is_some();
    let mut simulated = 0u64;
    while a.session().is_some() && simulated < 4 * 3600 {
        clock.advance(Duration::from_secs(30));
        simulated += 30;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let js = b.node(&["revocation"]).await;
    println!("| device A | Tessera | auth-js |\n|---|---:|---:|");
    println!(
        "| still signed in right after B's sign-out | {} | {} |",
        if still { "yes" } else { "no" },
        if js["getSessionStillReturnsSession"] == true {
            "yes"
        } else {
            "no"
        }
    );
    println!(
        "| A regains focus (Tessera validates with the server) | **{on_focus:.2} ms** | no check: until the refresh below |"
    );
    println!(
        "| A stays idle: first refresh finds the session gone | {simulated} s (simulated) | {} s (simulated) |\n",
        js["simulatedSecondsUntilSignedOut"]
    );
}
