//! Signing out and being signed out in the real window: each scope with a second device,
//! offline (delivered later), revoked elsewhere, and "Your devices".

use std::time::Duration;

use serde_json::json;
use tessera_e2e::*;

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
