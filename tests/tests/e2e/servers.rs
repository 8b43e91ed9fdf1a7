//! What the server asks for and which server it is: two-factor sign-in, the logout hook, a
//! SuperTokens backend, and the embedded server closed to everyone but the app.

use std::time::Duration;

use serde_json::json;
use tessera_e2e::*;

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
