//! Tessera end to end: the real app in a real WebKit window under Xvfb, driven through
//! WebDriver, its session in gnome-keyring, against the GoTrue emulator. These need a
//! display, a Secret Service and tauri-driver, so they are `#[ignore]`d in a plain
//! `cargo test`; `scripts/e2e` (called by `scripts/test`) runs them with `--ignored`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tessera_e2e::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn sign_in_survives_a_restart_and_no_issued_token_leaks() {
    let h = Harness::start().await;
    h.create_user("ada@example.com").await;
    let app = h.open_app().await;
    assert_eq!(text(&app, "auth-status").await, "Signed out");
    // The page's own defences: prototypes frozen (no pollution of Object.prototype by an
    // injected script), and an injected <base> cannot redirect relative URLs.
    let hardened = app
        .execute(
            "const base = document.createElement('base');
             base.href = 'https://evil.example/';
             document.head.appendChild(base);
             const uri = document.baseURI;
             base.remove();
             const webgl = !!document.createElement('canvas').getContext('webgl');
             return { frozen: Object.isFrozen(Object.prototype), base: uri, webgl };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hardened["frozen"], true, "{hardened}");
    assert!(
        !hardened["base"].as_str().unwrap().contains("evil.example"),
        "base-uri is not locked: {hardened}"
    );
    // The webview as src-tauri/src/webview.rs sets it up: no WebGL. (Hardware acceleration
    // is set off too, but as the webview becomes ready, which can come after the web
    // process has set up GL: see BENCHMARKS.md, "What each lever saved".)
    assert_eq!(hardened["webgl"], false, "{hardened}");
    sign_in(&app, "ada@example.com").await;
    // The expiry line, in whole minutes (it changes once a minute, only while on screen).
    let expiry = text(&app, "expiry").await;
    assert!(
        expiry == "valid for less than a minute"
            || expiry
                .strip_prefix("valid for ")
                .and_then(|t| t.strip_suffix(" min"))
                .is_some_and(|m| m.parse::<u32>().is_ok()),
        "{expiry}"
    );
    click(&app, "refresh").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&app, "signed-in").await;
    let webview = webview_contents(&app).await;
    app.close().await.unwrap();

    // The CLI on the app's own session: everything it prints is captured.
    let mut outputs = Vec::new();
    for args in [
        &["status", "--json"][..],
        &["refresh"],
        &["user"],
        &["outbox"],
    ] {
        let out = h.authctl(&h.profile, args, None);
        assert!(out.status.success(), "authctl {args:?}");
        outputs.push(out);
    }

    // Restart: the session comes back from the keyring (INITIAL_SESSION).
    let app = h.open_app().await;
    assert_eq!(
        wait_status(&app, |s| s.starts_with("Signed in")).await,
        "Signed in as ada@example.com"
    );
    assert!(
        tokens_in_keyring().len() >= 2,
        "the session is in the keyring"
    );
    let webview = webview + &webview_contents(&app).await;
    click(&app, "sign-out-global").await;
    wait_status(&app, |s| s == "Signed out").await;
    app.close().await.unwrap();

    // Every token the server issued in this run, searched for in every file under the
    // test's HOME (app data, config, cache, WebKit storage, lock files; the keyring's own
    // encrypted file aside), the app's log, the CLI's output and the webview's DOM and
    // storage.
    let issued: Vec<String> =
        serde_json::from_value(h.get("/_emulator/issued-tokens").await).unwrap();
    assert!(issued.len() >= 6, "sign-in and two refreshes issued tokens");
    let home = std::path::PathBuf::from(std::env::var("HOME").unwrap());
    let hits = files_containing(&home, &issued);
    assert!(hits.is_empty(), "tokens found in {hits:?}");
    let log = std::fs::read_to_string(&h.log).unwrap();
    assert!(
        log.contains("Tessera started") && log.contains("restored the stored session"),
        "app log: {log}"
    );
    // The log an installed app keeps: daily files in the platform's log folder (under
    // HOME here, so the scan above covered them too).
    let file_log = log_folder_text(std::path::Path::new(
        &std::env::var("XDG_DATA_HOME").unwrap(),
    ));
    assert!(
        file_log.contains("Tessera started") && file_log.contains("restored the stored session"),
        "log folder: {file_log}"
    );
    let printed: String = outputs
        .iter()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    for t in &issued {
        assert!(!log.contains(t.as_str()), "a token is in the app's log");
        assert!(
            !file_log.contains(t.as_str()),
            "a token is in the log folder"
        );
        assert!(
            !printed.contains(t.as_str()),
            "a token is in authctl's output"
        );
        assert!(!webview.contains(t.as_str()), "a token reached the webview");
    }
    eprintln!(
        "secrets scan: {} issued tokens, 0 hits in {} files under HOME (the log folder \
         among them), in the app's stderr, {} captured CLI outputs and the webview",
        issued.len(),
        count_files(&home),
        outputs.len()
    );
}

/// Deep links as an attacker sends them (see `links.rs`).
#[path = "links.rs"]
mod links;

/// A real user's app: connecting a project, forgot password, the demo mailbox.
#[path = "project.rs"]
mod project;

/// The data proxy (the `supabase` scheme) in the real window.
#[path = "proxy.rs"]
mod proxy;

/// A project with GoTrue's stock settings: links only, five-minute flows.
#[path = "stock_project.rs"]
mod stock_project;

/// Signing out and being signed out.
#[path = "sign_out.rs"]
mod sign_out;

/// One session across instances, windows and processes.
#[path = "instances.rs"]
mod instances;

/// Two-factor, the logout hook, SuperTokens, the embedded server.
#[path = "servers.rs"]
mod servers;
