//! A project with GoTrue's stock settings, in the real window: its templates mail links
//! only, its flows last five minutes, its Redirect URLs must hold the app's callback. What
//! the person sees for each (docs/fidelity.md lists what the real server does).

use gotrue_emulator::Config;
use tessera_e2e::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_stock_project_finishes_links_in_the_app() {
    let h = Harness::with(Config {
        autoconfirm: false,
        ..Config::for_tests()
    })
    .await;
    let app = h.open_app().await;

    // Settings names the Redirect URLs entry the project needs.
    click(&app, "open-settings").await;
    wait_text(&app, "redirect-url", |t| t == "tessera://auth/callback**").await;
    screenshot(&app, "settings-redirect-url").await;
    click(&app, "close-settings").await;

    // A sign-up confirmed after GoTrue's five minutes: confirmed, but signed in by nobody.
    fill(&app, "email", "stock@example.com").await;
    fill(&app, "password", tessera_test_support::PASSWORD).await;
    click(&app, "sign-up").await;
    wait_text(&app, "message", |t| t.contains("Check your email")).await;
    h.advance_server(301);
    let link = h.deep_link_from_mail("stock@example.com").await;
    assert!(h.second_instance(&link).status.success());
    wait_text(&app, "message", |t| {
        t.contains("stock@example.com is confirmed — sign in")
    })
    .await;
    screenshot(&app, "confirmed-sign-in").await;
    fill(&app, "password", tessera_test_support::PASSWORD).await;
    click(&app, "sign-in").await;
    wait_status(&app, |s| s == "Signed in as stock@example.com").await;

    // An email change through the two mailed links, both opened on this computer.
    fill(&app, "new-email", "moved@example.com").await;
    click(&app, "change-email").await;
    wait_text(&app, "email-change-text", |t| {
        t.contains("confirmation link to moved@example.com")
    })
    .await;
    let first = h.deep_link_from_mail("stock@example.com").await;
    assert!(h.second_instance(&first).status.success());
    wait_text(&app, "message", |t| {
        t.contains("Now open the link sent to stock@example.com")
    })
    .await;
    let second = h.deep_link_from_mail("moved@example.com").await;
    assert!(h.second_instance(&second).status.success());
    wait_text(&app, "message", |t| {
        t == "Your email address is now moved@example.com."
    })
    .await;
    wait_status(&app, |s| s == "Signed in as moved@example.com").await;
    app.close().await.unwrap();
}
