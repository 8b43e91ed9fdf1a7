//! Tessera end to end: the real app in a real WebKit window under Xvfb, driven through
//! WebDriver, its session in gnome-keyring, against the GoTrue emulator. These need a
//! display, a Secret Service and tauri-driver, so they are `#[ignore]`d in a plain
//! `cargo test`; `scripts/e2e` (called by `scripts/test`) runs them with `--ignored`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;
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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn each_sign_out_scope_with_a_second_device() {
    let h = Harness::start().await;
    let user = h.create_user("scopes@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "scopes@example.com").await;
    let phone = format!("{}-phone", h.profile);
    h.sign_in_device(&phone, "scopes@example.com");
    assert_eq!(h.sessions(&user).await.len(), 2);

    // Other devices: the app stays signed in, the phone's session is gone.
    click(&app, "sign-out-others").await;
    wait_text(&app, "sign-out-status", |t| {
        t.contains("other devices were signed out")
    })
    .await;
    assert_eq!(h.sessions(&user).await.len(), 1);
    assert!(text(&app, "auth-status").await.starts_with("Signed in"));
    let out = h.authctl(&phone, &["user"], None);
    assert!(!out.status.success(), "the phone was signed out");

    // This device.
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    assert!(h.sessions(&user).await.is_empty());

    // All devices.
    sign_in(&app, "scopes@example.com").await;
    h.sign_in_device(&phone, "scopes@example.com");
    assert_eq!(h.sessions(&user).await.len(), 2);
    click(&app, "sign-out-global").await;
    wait_status(&app, |s| s == "Signed out").await;
    assert!(h.sessions(&user).await.is_empty());
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn offline_sign_out_is_immediate_and_delivered_later() {
    let h = Harness::start().await;
    let user = h.create_user("offline@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "offline@example.com").await;
    h.fault(json!({"path": "/logout", "drop": true, "times": 1000}))
        .await;
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    wait_text(&app, "message", |t| t.contains("could not be reached")).await;
    assert_eq!(
        h.sessions(&user).await.len(),
        1,
        "not yet revoked on the server"
    );
    h.clear_faults().await;
    // The app's background task retries (back-off starting at 1 s) and delivers it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !h.sessions(&user).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_session_revoked_elsewhere_shows_after_focus() {
    let h = Harness::start().await;
    h.create_user("revoked@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "revoked@example.com").await;
    let laptop = format!("{}-laptop", h.profile);
    h.sign_in_device(&laptop, "revoked@example.com");
    click(&app, "new-window").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = h.authctl(&laptop, &["sign-out", "--scope", "global"], None);
    assert!(out.status.success());
    tokio::time::sleep(Duration::from_secs(4)).await; // past the focus-validation throttle
    focus_app_windows();
    wait_status(&app, |s| s == "Signed out").await;
    wait_text(&app, "notice", |t| {
        t.contains("signed out on another device")
    })
    .await;
    screenshot(&app, "revoked").await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn magic_link_finished_by_a_second_instance_and_bad_links_refused() {
    let h = Harness::start().await;
    h.create_user("link@example.com").await;
    let app = h.open_app().await;
    fill(&app, "email", "link@example.com").await;
    click(&app, "send-code").await;
    wait_text(&app, "message", |t| t.contains("emailed")).await;
    let deep_link = h.deep_link_from_mail("link@example.com").await;

    // A malformed link first: an error, state unchanged.
    let out = h.second_instance(
        "tessera://auth/callback?flow=nope&code=00000000-0000-0000-0000-000000000000",
    );
    assert!(
        out.status.success(),
        "the second instance hands the link over and exits"
    );
    wait_text(&app, "error", |t| !t.is_empty()).await;
    assert_eq!(text(&app, "auth-status").await, "Signed out");

    // The real link signs in.
    let out = h.second_instance(&deep_link);
    assert!(out.status.success());
    wait_status(&app, |s| s == "Signed in as link@example.com").await;

    // Replayed: refused, still signed in with the same session.
    let before = text(&app, "session-id").await;
    h.second_instance(&deep_link);
    wait_text(&app, "error", |t| {
        t.contains("already used") || t.contains("no sign-in")
    })
    .await;
    assert_eq!(text(&app, "session-id").await, before);
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn two_windows_stay_in_sync() {
    let h = Harness::start().await;
    h.create_user("windows@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "windows@example.com").await;
    let main = app.window().await.unwrap();
    click(&app, "new-window").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let second = loop {
        let windows = app.windows().await.unwrap();
        if let Some(w) = windows.into_iter().find(|w| *w != main) {
            break w;
        }
        assert!(std::time::Instant::now() < deadline, "no second window");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    app.switch_to_window(second).await.unwrap();
    wait_status(&app, |s| s == "Signed in as windows@example.com").await;
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    app.switch_to_window(main).await.unwrap();
    wait_status(&app, |s| s == "Signed out").await;
    let _ = app.find(Locator::Id("sign-in")).await.unwrap();
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_link_that_starts_the_app_is_not_lost() {
    let h = Harness::start().await;
    h.create_user("cold@example.com").await;
    let app = h.open_app().await;
    screenshot(&app, "sign-in").await;
    fill(&app, "email", "cold@example.com").await;
    click(&app, "send-code").await;
    wait_text(&app, "message", |t| t.contains("emailed")).await;
    app.close().await.unwrap();
    // The app is closed when the user clicks the link: the OS starts it with the URL.
    let deep_link = h.deep_link_from_mail("cold@example.com").await;
    let app = h.open_app_with(&[&deep_link]).await;
    wait_status(&app, |s| s == "Signed in as cold@example.com").await;
    app.close().await.unwrap();
}

/// The app is started with a link while the last instance is still quitting: the
/// hand-over to it fails (it leaves without answering), and the new instance must start
/// on its own with the link, not exit with an error and lose it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_link_opened_while_the_app_is_quitting_is_not_lost() {
    let h = Harness::start().await;
    let user = h.create_user("quitting@example.com").await;
    let app = h.open_app().await;
    fill(&app, "email", "quitting@example.com").await;
    click(&app, "send-code").await;
    wait_text(&app, "message", |t| t.contains("emailed")).await;
    app.close().await.unwrap();
    stop_apps(Duration::from_secs(5));
    let deep_link = h.deep_link_from_mail("quitting@example.com").await;

    let quitting = quitting_instance(Duration::from_secs(20));
    let log = std::env::temp_dir().join(format!("tessera-{}-restart.log", h.profile));
    let mut started = h.spawn_app(&[&deep_link], &log);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.sessions(&user).await.is_empty() {
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(status) = started.try_wait().unwrap() {
            panic!("the app exited ({status}) instead of starting:\n{log_text}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the link did not sign in within 30 s:\n{log_text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(quitting.join().unwrap(), "the hand-over was tried first");
    assert!(
        !tokens_in_keyring_for(&h.profile).is_empty(),
        "the session the link started is in the keyring"
    );
    let _ = started.kill();
    let _ = started.wait();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn two_factor_enrolment_and_sign_in() {
    let h = Harness::start().await;
    let user = h.create_user("mfa@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "mfa@example.com").await;
    click(&app, "mfa-enroll").await;
    let secret = wait_text(&app, "mfa-secret", |t| t.len() >= 16).await;
    assert!(text(&app, "mfa-uri").await.starts_with("otpauth://totp/"));
    app.execute(
        "document.getElementById('mfa-qr').scrollIntoView({block: 'center'})",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&app, "two-factor-setup").await;
    fill(&app, "mfa-enroll-code", &totp_now(&secret)).await;
    click(&app, "mfa-enroll-verify").await;
    wait_text(&app, "aal", |t| t.contains("aal2")).await;

    // Next sign-in asks for the code after the password.
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    fill(&app, "email", "mfa@example.com").await;
    fill(&app, "password", PASSWORD).await;
    click(&app, "sign-in").await;
    app.wait()
        .for_element(fantoccini::Locator::Css("#mfa-step:not([hidden])"))
        .await
        .unwrap();
    fill(&app, "mfa-code", &totp_now(&secret)).await;
    click(&app, "mfa-verify").await;
    wait_text(&app, "aal", |t| t.contains("aal2")).await;
    assert_eq!(
        h.sessions(&user)
            .await
            .iter()
            .filter(|s| s["aal"] == "aal2")
            .count(),
        1
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_app_and_two_authctl_processes_share_one_session() {
    let h = Harness::start().await;
    let user = h.create_user("shared@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "shared@example.com").await;
    h.http
        .delete(format!("{}/_emulator/stats", h.emu.url()))
        .send()
        .await
        .unwrap();

    // Five rounds: the app's Refresh button and two authctl processes on the app's own
    // keyring entry, all at once.
    for _ in 0..5 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (url, key, profile) = (
                    h.emu.url().to_owned(),
                    h.emu.anon_key().to_owned(),
                    h.profile.clone(),
                );
                tokio::task::spawn_blocking(move || authctl_at(&url, &key, &profile, &["refresh"]))
            })
            .collect();
        click(&app, "refresh").await;
        for r in runs {
            let out = r.await.unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The app refreshes once more: it must adopt what the CLI stored, not reuse its own.
    click(&app, "refresh").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = h.get("/_emulator/stats").await;
    assert_eq!(
        stats["refresh_token_reuses"], 0,
        "no refresh token was presented twice: {stats}"
    );
    let grants = stats["refresh_token_grants"].as_u64().unwrap();
    assert!((5..=18).contains(&grants), "{stats}");
    assert_eq!(h.sessions(&user).await.len(), 1, "one live session");
    assert!(
        !tokens_in_keyring_for(&h.profile).is_empty(),
        "the shared session is in the keyring"
    );
    assert!(h.authctl(&h.profile, &["user"], None).status.success());
    assert!(text(&app, "auth-status").await.starts_with("Signed in"));

    // Sign-outs and a refresh at once: the app (this device), one process (global), the
    // other refreshing. Whatever the order, all end signed out and the server forgets it.
    let (url, key, profile) = (
        h.emu.url().to_owned(),
        h.emu.anon_key().to_owned(),
        h.profile.clone(),
    );
    let global = tokio::task::spawn_blocking(move || {
        authctl_at(&url, &key, &profile, &["sign-out", "--scope", "global"])
    });
    let (url, key, profile) = (
        h.emu.url().to_owned(),
        h.emu.anon_key().to_owned(),
        h.profile.clone(),
    );
    let refresh =
        tokio::task::spawn_blocking(move || authctl_at(&url, &key, &profile, &["refresh"]));
    click(&app, "sign-out-local").await;
    assert!(global.await.unwrap().status.success());
    let _ = refresh.await.unwrap(); // may find the session gone: either answer is fine
    focus_app_windows();
    wait_status(&app, |s| s == "Signed out").await;
    let status = h.authctl(&h.profile, &["status"], None);
    assert!(String::from_utf8_lossy(&status.stdout).contains("not signed in"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !h.sessions(&user).await.is_empty() || !tokens_in_keyring_for(&h.profile).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server or the keyring still holds the session"
        );
        let _ = h.authctl(&h.profile, &["outbox", "flush"], None);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("concurrency: 5 rounds of 3 processes, {grants} refreshes, 0 reuses");
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn your_devices_lists_sessions_and_signs_one_out() {
    let h = Harness::start().await;
    let user = h.create_user("devices@example.com").await;
    let phone = format!("{}-phone", h.profile);
    let laptop = format!("{}-laptop", h.profile);
    h.sign_in_device(&phone, "devices@example.com");
    h.sign_in_device(&laptop, "devices@example.com");
    let app = h.open_app().await;
    sign_in(&app, "devices@example.com").await;
    let rows = |n: usize| {
        let app = app.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let found = texts(&app, "#devices li.device").await;
                if found.len() == n {
                    return found;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} rows, not {n}",
                    found.len()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let listed = rows(3).await;
    let mut this_device = 0;
    for text in &listed {
        assert!(text.contains("Sign out this device"), "{text}");
        this_device += usize::from(text.contains("This device"));
    }
    assert_eq!(this_device, 1, "exactly one row is this device");
    assert!(
        wait_text(&app, "devices", |t| t.contains("Tessera on Linux"))
            .await
            .contains("authctl on Linux")
    );
    screenshot(&app, "your-devices").await;

    // Sign the phone out from here: its row goes, the laptop stays signed in.
    let phone_session = serde_json::from_slice::<serde_json::Value>(
        &h.authctl(&phone, &["status", "--json"], None).stdout,
    )
    .unwrap()["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    click_css(
        &app,
        &format!("li[data-session='{phone_session}'] button.revoke"),
    )
    .await;
    rows(2).await;
    wait_text(&app, "devices-status", |t| {
        t.contains("Signed out authctl on Linux")
    })
    .await;
    assert_eq!(h.sessions(&user).await.len(), 2);
    let out = h.authctl(&phone, &["user"], None);
    assert!(!out.status.success(), "the phone was signed out");
    assert!(h.authctl(&laptop, &["user"], None).status.success());

    // This device's own row: a local sign-out.
    let mine = text(&app, "session-id").await;
    click_css(&app, &format!("li[data-session='{mine}'] button.revoke")).await;
    wait_status(&app, |s| s == "Signed out").await;
    assert_eq!(h.sessions(&user).await.len(), 1, "only the laptop is left");
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_logout_hook_is_told_first_and_its_errors_shown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/api/auth/logout");
    let h = Harness::with_env(
        gotrue_emulator::Config::for_tests(),
        &[("TESSERA_LOGOUT_HOOK_URL", &hook)],
    )
    .await;
    let backend = example_logout_backend::start(
        example_logout_backend::Config {
            auth_url: h.emu.url().to_owned(),
            anon_key: h.emu.anon_key().to_owned(),
        },
        ([127, 0, 0, 1], port).into(),
    )
    .await
    .unwrap();
    let user = h.create_user("hooked@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "hooked@example.com").await;
    h.http
        .post(format!("{}/_test/fail-next", backend.url()))
        .json(&json!({"code": "LOGOUT_ERROR"}))
        .send()
        .await
        .unwrap();
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    wait_text(&app, "message", |t| {
        t.contains(
            "could not end the session yet: Could not clear the session's state (LOGOUT_ERROR)",
        )
    })
    .await;
    screenshot(&app, "logout-hook-error").await;
    assert_eq!(
        h.sessions(&user).await.len(),
        1,
        "the backend first, then the revocation"
    );
    // The app retries in the background (back-off from 1 s): the backend, then the server.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !h.sessions(&user).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let calls: serde_json::Value = h
        .http
        .get(format!("{}/_test/calls", backend.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["LOGOUT_ERROR", "ok"]);
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_same_app_on_a_supertokens_backend() {
    let st = supertokens_emulator::start(supertokens_emulator::Config::for_tests())
        .await
        .unwrap();
    let st_url = st.url();
    let h = Harness::with_env(
        gotrue_emulator::Config::for_tests(),
        &[
            ("TESSERA_AUTH_URL", st_url.as_str()),
            ("TESSERA_BACKEND", "supertokens"),
        ],
    )
    .await;
    h.http
        .post(format!("{st_url}/_emulator/users"))
        .json(&json!({"email": "st@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let sessions = |h: &Harness| {
        let url = format!("{st_url}/_emulator/sessions");
        let http = h.http.clone();
        async move {
            let v: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v.as_array().unwrap().len()
        }
    };
    let app = h.open_app().await;
    sign_in(&app, "st@example.com").await;
    assert_eq!(sessions(&h).await, 1);
    click(&app, "refresh").await;
    wait_text(&app, "event-log", |t| t.contains("TOKEN_REFRESHED")).await;
    wait_text(&app, "devices-status", |t| {
        t.contains("cannot list your devices")
    })
    .await;
    screenshot(&app, "supertokens-signed-in").await;
    // Restart: the session comes back from the keyring, as with Supabase.
    app.close().await.unwrap();
    let app = h.open_app().await;
    wait_status(&app, |s| s == "Signed in as st@example.com").await;
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    assert_eq!(
        sessions(&h).await,
        0,
        "signed out at the SuperTokens backend"
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_embedded_server_is_closed_to_everyone_but_the_app() {
    // Started as a user starts it: no server configured, a fresh data folder.
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let h = Harness::embedded(port, data.path()).await;
    let app = h.open_app().await;
    assert_eq!(text(&app, "auth-status").await, "Signed out");
    // The app itself signs in to its server (the demo account it shows).
    fill(&app, "email", "demo@tessera.dev").await;
    fill(&app, "password", "tessera-demo").await;
    click(&app, "sign-in").await;
    wait_status(&app, |s| s == "Signed in as demo@tessera.dev").await;
    click(&app, "refresh").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another process on this machine, or a page in a browser, probes the port.
    let base = format!("http://127.0.0.1:{port}");
    let http = &h.http;
    let send = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap() };
    // The harness's emulator is a test server with Supabase's public demo secret: its
    // keys are the well-known demo keys.
    let (demo_anon, demo_service) = (h.emu.anon_key(), h.emu.service_role_key());
    for path in [
        "/_emulator/issued-tokens",
        "/_emulator/mail",
        "/_emulator/sessions",
        "/auth/v1/_emulator/issued-tokens",
    ] {
        let r = send(
            http.get(format!("{base}{path}"))
                .header("apikey", demo_anon),
        )
        .await;
        assert_eq!(r.status(), 404, "{path}");
    }
    let sign_in = json!({"email": "demo@tessera.dev", "password": "tessera-demo"});
    for key in [demo_anon, demo_service] {
        let r = send(
            http.post(format!("{base}/token?grant_type=password"))
                .header("apikey", key)
                .json(&sign_in),
        )
        .await;
        assert_eq!(r.status(), 401, "a demo key signed in");
    }
    let r = send(
        http.get(format!("{base}/admin/users"))
            .header("apikey", demo_service)
            .bearer_auth(demo_service),
    )
    .await;
    assert_eq!(r.status(), 404, "the admin API answered");
    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    for host in [
        format!("attacker.example:{port}"),
        "attacker.example".into(),
    ] {
        let r = send(http.get(format!("{base}/health")).header("host", host)).await;
        assert_eq!(r.status(), 421);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error_code"], "request_not_allowed");
    }
    // A page's no-preflight POST.
    let r = send(
        http.post(format!("{base}/token?grant_type=password"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(sign_in.to_string()),
    )
    .await;
    assert_eq!(r.status(), 415);
    let r = send(
        http.request(reqwest::Method::OPTIONS, format!("{base}/user"))
            .header("origin", "https://attacker.example")
            .header("access-control-request-method", "GET"),
    )
    .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // At rest: the folder is private, and the app's refresh token is not in it.
    let folder = data.path().join("dev.tessera.desktop");
    let tokens = tokens_in_keyring_for(&h.profile);
    assert!(!tokens.is_empty(), "the app's session is in the keyring");
    let hits = files_containing(&folder, &tokens);
    assert!(hits.is_empty(), "tokens in {hits:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&folder.join("emulator.sqlite")), 0o600);
    }
    // The app's own requests still pass every check: a global sign-out reaches the server.
    click(&app, "sign-out-global").await;
    wait_status(&app, |s| s == "Signed out").await;
    // "Signed out." only when the server confirmed (not "could not be reached").
    wait_text(&app, "message", |t| t == "Signed out.").await;
    app.close().await.unwrap();
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
