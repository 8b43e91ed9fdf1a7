//! A real user's app in the real window: connecting a project in Settings → Server (each
//! server keeps its own session), the sign-in screen following the server, forgot
//! password, the demo mailbox, resending a confirmation and queued sign-outs.

use std::time::Duration;

use gotrue_emulator::Config;
use tessera_e2e::*;

/// Opens Settings and connects the project at `url` with `key`.
async fn connect(app: &fantoccini::Client, url: &str, key: &str) {
    click(app, "open-settings").await;
    fill(app, "server-url", url).await;
    fill(app, "anon-key", key).await;
    click(app, "save-server").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_project_is_checked_connected_and_each_server_keeps_its_session() {
    // Started as a user starts it: the embedded demo server. The harness's emulator plays
    // the person's own Supabase project.
    let data = tempfile::tempdir().unwrap();
    let h = Harness::embedded(free_port(), data.path()).await;
    let user = h.create_user("project@example.com").await;
    let app = h.open_app().await;
    fill(&app, "email", "demo@tessera.dev").await;
    fill(&app, "password", "tessera-demo").await;
    click(&app, "sign-in").await;
    wait_status(&app, |s| s == "Signed in as demo@tessera.dev").await;

    // What is wrong is said, and nothing changes.
    click(&app, "open-settings").await;
    screenshot(&app, "settings").await;
    fill(&app, "server-url", "abcdefgh.supabase.co").await;
    fill(&app, "anon-key", h.emu.anon_key()).await;
    click(&app, "save-server").await;
    wait_text(&app, "server-check", |t| t.contains("is not a URL")).await;
    fill(&app, "server-url", h.emu.url()).await;
    fill(&app, "anon-key", h.emu.service_role_key()).await;
    click(&app, "save-server").await;
    wait_text(&app, "server-check", |t| t.contains("secret key")).await;
    screenshot(&app, "settings-secret-key-refused").await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    fill(&app, "server-url", &closed).await;
    fill(&app, "anon-key", h.emu.anon_key()).await;
    click(&app, "save-server").await;
    wait_text(&app, "server-check", |t| t.contains("cannot be reached")).await;
    assert!(text(&app, "backend").await.contains("demo server"));

    // The real project: checked, saved, switched to. Its sign-in screen follows its
    // settings (the test project has GitHub and Google on).
    fill(&app, "server-url", h.emu.url()).await;
    fill(&app, "anon-key", h.emu.anon_key()).await;
    click(&app, "save-server").await;
    wait_text(&app, "message", |t| t.starts_with("Connected to")).await;
    wait_status(&app, |s| s == "Signed out").await;
    wait_text(&app, "backend", |t| t.contains(h.emu.url())).await;
    wait_text(&app, "oauth-github", |t| t.contains("GitHub")).await;
    screenshot(&app, "sign-in-project").await;
    sign_in(&app, "project@example.com").await;
    assert_eq!(h.sessions(&user).await.len(), 1);

    // Back to the demo server: its session was kept, and is there again.
    click(&app, "open-settings").await;
    click(&app, "use-demo-server").await;
    wait_status(&app, |s| s == "Signed in as demo@tessera.dev").await;
    // The project's session was neither revoked nor used meanwhile.
    assert_eq!(h.sessions(&user).await.len(), 1);

    // And to the project again: its session is restored, not a new sign-in.
    connect(&app, h.emu.url(), h.emu.anon_key()).await;
    wait_status(&app, |s| s == "Signed in as project@example.com").await;
    assert_eq!(h.sessions(&user).await.len(), 1);

    // The choice is kept: a restart comes back to the project, signed in.
    app.close().await.unwrap();
    let app = h.open_app().await;
    wait_status(&app, |s| s == "Signed in as project@example.com").await;
    assert!(text(&app, "backend").await.contains(h.emu.url()));
    app.close().await.unwrap();
}

/// A build without the embedded server (`--no-embedded`; here the same build with
/// `TESSERA_EMBEDDED=off`) and no server configured: the first screen asks for a project.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn without_an_embedded_server_the_first_start_asks_for_a_project() {
    let data = tempfile::tempdir().unwrap();
    let h = Harness::unconfigured(data.path(), &[("TESSERA_EMBEDDED", "off")]).await;
    h.create_user("first@example.com").await;
    let app = h.open_app().await;
    wait_text(&app, "settings-intro", |t| {
        t.starts_with("Connect your Supabase project to start")
    })
    .await;
    let shown = |id: &'static str| {
        let app = app.clone();
        async move {
            app.execute(
                "const e = document.getElementById(arguments[0]); \
                 return e.closest('[hidden]') === null && !e.hidden;",
                vec![serde_json::json!(id)],
            )
            .await
            .unwrap()
            .as_bool()
            .unwrap()
        }
    };
    assert!(shown("settings").await, "Settings is the first screen");
    assert!(!shown("use-demo-server").await, "no demo server to offer");
    assert!(!shown("close-settings").await, "nowhere to go back to");
    screenshot(&app, "first-start-no-embedded").await;

    // Connected, it is an ordinary sign-in screen for that project.
    fill(&app, "server-url", h.emu.url()).await;
    fill(&app, "anon-key", h.emu.anon_key()).await;
    click(&app, "save-server").await;
    wait_text(&app, "backend", |t| t.contains(h.emu.url())).await;
    sign_in(&app, "first@example.com").await;
    app.close().await.unwrap();
    let log = std::fs::read_to_string(&h.log).unwrap();
    assert!(log.contains("embedded server is turned off"), "{log}");
    assert!(!log.contains("embedded=true"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_locked_server_is_shown_read_only_and_the_screen_follows_its_settings() {
    let h = Harness::with(Config {
        disable_signup: true,
        anonymous_users: false,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    let app = h.open_app().await;
    // Sign-ups are off, guests too: no "Create account", no "Continue without an account".
    wait_text(&app, "sign-in", |t| t == "Sign in").await;
    let hidden = |id: &'static str| {
        let app = app.clone();
        async move {
            let v = app
                .execute(
                    "return document.getElementById(arguments[0]).closest('[hidden]') !== null \
                     || document.getElementById(arguments[0]).hidden",
                    vec![serde_json::json!(id)],
                )
                .await
                .unwrap();
            v.as_bool().unwrap()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !(hidden("sign-up").await && hidden("anonymous").await) {
        assert!(
            std::time::Instant::now() < deadline,
            "the screen did not follow the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!hidden("oauth-github").await);
    click(&app, "open-settings").await;
    wait_text(&app, "server-locked", |t| {
        t.contains("built for one server")
    })
    .await;
    assert!(hidden("save-server").await);
    assert!(hidden("use-demo-server").await);
    screenshot(&app, "settings-locked").await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn forgot_password_sets_a_new_one_and_signs_out_other_devices() {
    let h = Harness::start().await;
    let user = h.create_user("forgot@example.com").await;
    let laptop = format!("{}-laptop", h.profile);
    h.sign_in_device(&laptop, "forgot@example.com");
    assert_eq!(h.sessions(&user).await.len(), 1);
    let app = h.open_app().await;
    fill(&app, "email", "forgot@example.com").await;
    click(&app, "forgot-password").await;
    wait_text(&app, "message", |t| t.contains("reset its password")).await;
    let link = h.deep_link_from_mail("forgot@example.com").await;
    assert!(h.second_instance(&link).status.success());
    wait_text(&app, "recovery-email", |t| t == "forgot@example.com").await;
    screenshot(&app, "recovery").await;
    fill(&app, "recovery-password", "a-new-password-2").await;
    click(&app, "recovery-save").await;
    wait_text(&app, "message", |t| {
        t.contains("other devices were signed out")
    })
    .await;
    wait_status(&app, |s| s == "Signed in as forgot@example.com").await;
    // The laptop's session is gone; only this app's is left.
    assert_eq!(h.sessions(&user).await.len(), 1);
    // The new password works.
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    fill(&app, "email", "forgot@example.com").await;
    fill(&app, "password", "a-new-password-2").await;
    click(&app, "sign-in").await;
    wait_status(&app, |s| s == "Signed in as forgot@example.com").await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_demo_mailbox_opens_a_magic_link() {
    let data = tempfile::tempdir().unwrap();
    let h = Harness::embedded(free_port(), data.path()).await;
    let app = h.open_app().await;
    fill(&app, "email", "demo@tessera.dev").await;
    click(&app, "send-code").await;
    wait_text(&app, "message", |t| t.contains("emailed")).await;
    click(&app, "open-mailbox").await;
    wait_text(&app, "mail-list", |t| t.contains("demo@tessera.dev")).await;
    let codes = texts(&app, "#mail-list .mail-code").await;
    assert!(codes.iter().any(|c| c.len() == 6), "{codes:?}");
    screenshot(&app, "mailbox").await;
    click_css(&app, "#mail-list .mail-open").await;
    wait_status(&app, |s| s == "Signed in as demo@tessera.dev").await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn confirmation_is_explained_and_can_be_sent_again() {
    let h = Harness::with(Config {
        autoconfirm: false,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    let app = h.open_app().await;
    wait_text(&app, "confirm-hint", |t| {
        t.contains("confirm their address")
    })
    .await;
    fill(&app, "email", "new@example.com").await;
    fill(&app, "password", PASSWORD).await;
    click(&app, "sign-up").await;
    wait_text(&app, "message", |t| t.contains("Check your email")).await;
    assert_eq!(h.emu.mail_for(Some("new@example.com")).unwrap().len(), 1);
    click(&app, "resend-confirmation").await;
    wait_text(&app, "message", |t| t.contains("again")).await;
    assert_eq!(h.emu.mail_for(Some("new@example.com")).unwrap().len(), 2);
    // The resent mail's link, as GoTrue's stock template has it: the browser opens the
    // server's /verify, which confirms the address and redirects to the app with a code.
    let mails = h.emu.mail_for(Some("new@example.com")).unwrap();
    let link = h.browser_follow(&mails.last().unwrap().action_link).await;
    assert!(link.starts_with("tessera://auth/callback?"), "{link}");
    assert!(h.second_instance(&link).status.success());
    wait_status(&app, |s| s == "Signed in as new@example.com").await;
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_queued_sign_out_is_shown_until_the_server_is_told() {
    let h = Harness::start().await;
    let user = h.create_user("queued@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "queued@example.com").await;
    h.fault(serde_json::json!({"path": "/logout", "drop": true, "times": 1000}))
        .await;
    click(&app, "sign-out-local").await;
    wait_status(&app, |s| s == "Signed out").await;
    wait_text(&app, "pending-sign-outs-text", |t| {
        t == "1 sign-out is waiting for the server."
    })
    .await;
    screenshot(&app, "sign-out-waiting").await;
    // "Try again now" while the server still cannot be reached: it stays queued.
    click(&app, "retry-sign-outs").await;
    wait_text(&app, "message", |t| t.contains("stays queued")).await;
    assert_eq!(h.sessions(&user).await.len(), 1);
    // The server is back: the engine delivers it on its own, and the line goes away.
    h.clear_faults().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !text(&app, "pending-sign-outs-text").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiting sign-out stayed shown"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(h.sessions(&user).await.is_empty());
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn an_email_change_is_confirmed_from_both_addresses() {
    // GoTrue's default: a code to the current address and one to the new address.
    let h = Harness::with(Config {
        autoconfirm: false,
        ..tessera_test_support::config_with_codes()
    })
    .await;
    h.create_user("before@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "before@example.com").await;
    fill(&app, "new-email", "after@example.com").await;
    click(&app, "change-email").await;
    wait_text(&app, "email-change-text", |t| {
        t.contains("after@example.com")
    })
    .await;
    screenshot(&app, "email-change").await;
    let code = |to: &str| {
        h.emu
            .mail_for(Some(to))
            .unwrap()
            .last()
            .unwrap()
            .otp
            .clone()
            .expect("a code in the mail")
    };
    fill(
        &app,
        "email-change-code-current",
        &code("before@example.com"),
    )
    .await;
    click(&app, "email-change-verify-current").await;
    wait_text(&app, "message", |t| t.contains("sent to after@example.com")).await;
    assert_eq!(
        text(&app, "auth-status").await,
        "Signed in as before@example.com"
    );
    fill(&app, "email-change-code-new", &code("after@example.com")).await;
    click(&app, "email-change-verify-new").await;
    wait_text(&app, "message", |t| t.contains("now after@example.com")).await;
    wait_status(&app, |s| s == "Signed in as after@example.com").await;
    app.close().await.unwrap();
}

/// Every visible control of the current view, as an accessibility tree names it: role,
/// accessible name (label, `aria-label`, text or placeholder) and whether Tab reaches it.
async fn controls(app: &fantoccini::Client) -> Vec<serde_json::Value> {
    let v = app
        .execute(
            r#"const out = [];
               for (const el of document.querySelectorAll('button, input, summary, a[href], select, textarea, dialog[open]')) {
                 if (el.closest('[hidden]') || el.hidden || !el.getClientRects().length) continue;
                 const label = el.labels && el.labels.length ? el.labels[0].innerText : '';
                 const name = (el.getAttribute('aria-label') || label || el.innerText || el.placeholder || el.alt || '').trim();
                 out.push({ role: el.getAttribute('role') || el.tagName.toLowerCase(), id: el.id, name,
                            tabbable: el.tabIndex >= 0 && !el.disabled });
               }
               return out;"#,
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Writes the dump beside the screenshots and checks every control has a name and is
/// reachable with Tab.
async fn check_controls(app: &fantoccini::Client, view: &str) {
    let list = controls(app).await;
    assert!(!list.is_empty(), "{view}: no controls");
    let dump: Vec<String> = list
        .iter()
        .map(|c| {
            format!(
                "{} #{} {:?} tabbable={}",
                c["role"], c["id"], c["name"], c["tabbable"]
            )
        })
        .collect();
    let dir = bin_dir().parent().unwrap().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("a11y-{view}.txt")), dump.join("\n")).unwrap();
    for c in &list {
        assert!(
            !c["name"].as_str().unwrap().is_empty(),
            "{view}: a control without a name: {c}"
        );
        assert_eq!(c["tabbable"], true, "{view}: not reachable with Tab: {c}");
    }
}

async fn press(app: &fantoccini::Client, key: &str) {
    app.active_element()
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
}

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn every_control_is_named_and_the_keyboard_alone_signs_in() {
    let h = Harness::start().await;
    h.create_user("keys@example.com").await;
    let app = h.open_app().await;
    check_controls(&app, "sign-in").await;

    // Tab from the email field to the password field, type, Enter: signed in.
    fill(&app, "email", "keys@example.com").await;
    press(&app, TAB).await;
    let focused = app
        .active_element()
        .await
        .unwrap()
        .attr("id")
        .await
        .unwrap();
    assert_eq!(focused.as_deref(), Some("password"));
    press(&app, PASSWORD).await;
    press(&app, ENTER).await;
    wait_status(&app, |s| s == "Signed in as keys@example.com").await;
    assert_eq!(text(&app, "avatar").await, "KE");
    wait_text(&app, "account-line", |t| {
        t.contains("Signed in with password")
    })
    .await;
    check_controls(&app, "signed-in").await;
    screenshot(&app, "signed-in").await;

    // Settings opens, Escape closes it.
    click(&app, "open-settings").await;
    wait_text(&app, "settings-title", |t| t == "Server").await;
    check_controls(&app, "settings").await;
    press(&app, ESCAPE).await;
    wait_text(&app, "settings-title", |t| t.is_empty()).await;
    assert_eq!(
        text(&app, "auth-status").await,
        "Signed in as keys@example.com"
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn the_theme_follows_the_desktop() {
    let background = |app: fantoccini::Client| async move {
        let v = app
            .execute(
                "return getComputedStyle(document.body).backgroundColor",
                vec![],
            )
            .await
            .unwrap();
        v.as_str().unwrap().to_owned()
    };
    let h = Harness::start().await;
    let app = h.open_app().await;
    assert_eq!(background(app.clone()).await, "rgb(246, 247, 251)");
    app.close().await.unwrap();
    // A desktop in dark mode (GTK's dark variant, which WebKitGTK passes on as
    // `prefers-color-scheme: dark`).
    let dark = Harness::with_env(Config::for_tests(), &[("GTK_THEME", "Adwaita:dark")]).await;
    let app = dark.open_app().await;
    assert_eq!(background(app.clone()).await, "rgb(17, 21, 28)");
    screenshot(&app, "sign-in-dark").await;
    app.close().await.unwrap();
}

/// What a phone-sized window shows: its width, how wide the page is, the controls smaller
/// than 44 × 44 px, and the pairs of controls in `main` that sit side by side.
async fn phone_layout(app: &fantoccini::Client) -> serde_json::Value {
    app.execute(
        r#"const visible = [...document.querySelectorAll('header button, main button, main input, main summary')]
             .filter((el) => !el.closest('[hidden]') && el.getClientRects().length);
           const name = (el) => el.id || el.textContent.trim();
           const small = [];
           for (const el of visible) {
             const r = el.getBoundingClientRect();
             if (r.width < 44 || r.height < 44) small.push(`${name(el)} ${Math.round(r.width)}x${Math.round(r.height)}`);
           }
           const boxes = visible.filter((el) => el.closest('main')).map((el) => [el, el.getBoundingClientRect()]);
           const sideBySide = [];
           for (let i = 0; i < boxes.length; i++) {
             for (let j = i + 1; j < boxes.length; j++) {
               const [a, ra] = boxes[i];
               const [b, rb] = boxes[j];
               if (ra.top < rb.bottom - 1 && rb.top < ra.bottom - 1) sideBySide.push(`${name(a)} | ${name(b)}`);
             }
           }
           return { width: innerWidth, pageWidth: document.documentElement.scrollWidth,
                    controls: visible.length, small, sideBySide };"#,
        vec![],
    )
    .await
    .unwrap()
}

/// Checks the current view at a phone's width: nothing wider than the screen, one column,
/// every control at least 44 px each way.
async fn check_phone_layout(app: &fantoccini::Client, view: &str) {
    let layout = phone_layout(app).await;
    let width = layout["width"].as_u64().unwrap();
    assert!((380..=400).contains(&width), "{view}: {layout}");
    assert!(
        layout["pageWidth"].as_u64().unwrap() <= width,
        "{view}: wider than the screen: {layout}"
    );
    assert!(layout["controls"].as_u64().unwrap() > 3, "{view}: {layout}");
    assert_eq!(layout["small"], serde_json::json!([]), "{view}: {layout}");
    assert_eq!(
        layout["sideBySide"],
        serde_json::json!([]),
        "{view}: {layout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn at_a_phones_size_the_ui_is_one_column_with_touch_sized_controls() {
    let h = Harness::start().await;
    h.create_user("phone@example.com").await;
    let app = h.open_app().await;
    // An iPhone 14's screen in CSS pixels: the desktop window resized to it.
    app.set_window_size(390, 844).await.unwrap();
    wait_text(&app, "auth-status", |s| s == "Signed out").await;
    check_phone_layout(&app, "sign-in").await;
    screenshot(&app, "phone-sign-in").await;

    sign_in(&app, "phone@example.com").await;
    check_phone_layout(&app, "signed-in").await;
    screenshot(&app, "phone-signed-in").await;

    // A desktop-sized window keeps the two-column layout (the rules are for narrow screens).
    app.set_window_size(980, 720).await.unwrap();
    let wide = phone_layout(&app).await;
    assert!(!wide["sideBySide"].as_array().unwrap().is_empty(), "{wide}");
    app.close().await.unwrap();
}
