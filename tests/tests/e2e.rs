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
async fn sign_in_survives_a_restart_and_no_token_leaks() {
    let h = Harness::start().await;
    h.create_user("ada@example.com").await;
    let app = h.open_app().await;
    assert_eq!(text(&app, "auth-status").await, "Signed out");
    sign_in(&app, "ada@example.com").await;
    click(&app, "refresh").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&app, "signed-in").await;
    app.close().await.unwrap();

    // Restart: the session comes back from the keyring (INITIAL_SESSION).
    let app = h.open_app().await;
    assert_eq!(
        wait_status(&app, |s| s.starts_with("Signed in")).await,
        "Signed in as ada@example.com"
    );
    let tokens = tokens_in_keyring();
    assert!(tokens.len() >= 2, "the session is in the keyring");
    app.close().await.unwrap();

    // No token in any file the app wrote, nor in its logs.
    let home = std::path::PathBuf::from(std::env::var("HOME").unwrap());
    let hits = files_containing(&home, &tokens);
    assert!(hits.is_empty(), "tokens found in {hits:?}");
    let log = std::fs::read_to_string(&h.log).unwrap();
    assert!(
        log.contains("Tessera started") && log.contains("restored the stored session"),
        "app log: {log}"
    );
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "a token is in the log");
    }
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
