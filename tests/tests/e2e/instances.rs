//! One session across instances and processes: a link finished by a second instance, a
//! link that starts the app or arrives while it quits, two windows, and the app beside two
//! `authctl` processes.

use std::time::Duration;

use fantoccini::Locator;
use tessera_e2e::*;

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
