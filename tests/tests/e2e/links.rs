//! Deep links as an attacker sends them, in the real window: a forged link never switches
//! the signed-in account, and a link for another account asks first.

use std::time::Duration;

use tessera_e2e::*;

/// Waits until the user has no live session at the server (the app revokes through its
/// outbox, in the background).
async fn wait_no_sessions(h: &Harness, user_id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !h.sessions(user_id).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{user_id} still has a live session"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_forged_confirm_link_leaves_the_victim_signed_in() {
    let h = Harness::start().await;
    h.create_user("victim@example.com").await;
    let attacker = h.create_user("attacker@example.com").await;
    let app = h.open_app().await;
    sign_in(&app, "victim@example.com").await;
    let before = text(&app, "session-id").await;

    // The attacker mails themselves a magic link (no app involved) and sends the victim
    // its confirm form; the victim's desktop hands it to the running app.
    let mail = h.magic_link_without_the_app("attacker@example.com").await;
    let forged = format!(
        "tessera://auth/confirm?token_hash={}&type=magiclink",
        mail["token_hash"].as_str().unwrap()
    );
    let out = h.second_instance(&forged);
    assert!(out.status.success(), "the second instance hands it over");
    wait_text(&app, "error", |t| t.contains("no sign-in of this app")).await;
    assert_eq!(
        text(&app, "auth-status").await,
        "Signed in as victim@example.com"
    );
    assert_eq!(text(&app, "session-id").await, before);
    assert!(
        h.sessions(&attacker).await.is_empty(),
        "the attacker's account got no session"
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, a Secret Service and tauri-driver: run scripts/e2e"]
async fn a_link_for_another_account_asks_naming_both_and_no_keeps_the_user() {
    let h = Harness::start().await;
    h.create_user("alice@example.com").await;
    let bob = h.create_user("bob@example.com").await;
    let app = h.open_app().await;
    // A link asked for Bob, then Alice signs in with her password before it is clicked.
    fill(&app, "email", "bob@example.com").await;
    click(&app, "send-code").await;
    wait_text(&app, "message", |t| t.contains("emailed")).await;
    sign_in(&app, "alice@example.com").await;
    let before = text(&app, "session-id").await;

    let link = h.deep_link_from_mail("bob@example.com").await;
    assert!(h.second_instance(&link).status.success());
    wait_text(&app, "switch-incoming", |t| t == "bob@example.com").await;
    assert_eq!(text(&app, "switch-current").await, "alice@example.com");
    screenshot(&app, "account-switch").await;
    assert_eq!(
        text(&app, "auth-status").await,
        "Signed in as alice@example.com",
        "nothing changes while the question is open"
    );
    // The question carries who, never the link's tokens (secrets scan).
    let webview = webview_contents(&app).await;
    let issued: Vec<String> =
        serde_json::from_value(h.get("/_emulator/issued-tokens").await).unwrap();
    assert!(issued.len() >= 4, "Alice's and Bob's tokens are live");
    click(&app, "switch-decline").await;
    wait_text(&app, "message", |t| t.contains("stayed signed in")).await;
    assert_eq!(text(&app, "session-id").await, before);
    wait_no_sessions(&h, &bob).await;
    let log = std::fs::read_to_string(&h.log).unwrap();
    for t in &issued {
        assert!(!webview.contains(t.as_str()), "a token reached the webview");
        assert!(!log.contains(t.as_str()), "a token is in the app's log");
    }
    app.close().await.unwrap();
}
