//! The page as a user sees it, through WebDriver: reading text, waiting for it, filling,
//! clicking, signing in, focusing the window, and screenshots.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::{PASSWORD, bin_dir};

/// Saves a screenshot of the window as `target/screenshots/<name>.png`.
pub async fn screenshot(client: &Client, name: &str) {
    let dir = bin_dir().parent().unwrap().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    // WebKit's automation takes the shot after the page's next frame. With hardware
    // acceleration off (src-tauri/src/webview.rs) an idle page draws none, and the
    // command would wait for ever: give it frames for a moment (an invisible pixel that
    // changes each frame, removed after 2 s).
    client
        .execute(
            "const d = document.createElement('div'); \
             d.style.cssText = 'position:fixed;left:0;top:0;width:1px;height:1px;pointer-events:none'; \
             document.body.appendChild(d); \
             const end = performance.now() + 2000; \
             const step = (t) => { d.style.opacity = String((Math.round(t) % 2) / 100); \
               if (t < end) requestAnimationFrame(step); else d.remove(); }; \
             requestAnimationFrame(step);",
            vec![],
        )
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

pub async fn text(client: &Client, id: &str) -> String {
    match client.find(Locator::Id(id)).await {
        Ok(el) => el.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (10 s at most) until `#auth-status` satisfies `ok`; returns the text.
pub async fn wait_status(client: &Client, ok: impl Fn(&str) -> bool) -> String {
    wait_text(client, "auth-status", ok).await
}

pub async fn wait_text(client: &Client, id: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = text(client, id).await;
        if ok(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "#{id} stayed {t:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn fill(client: &Client, id: &str, value: &str) {
    let el = client.wait().for_element(Locator::Id(id)).await.unwrap();
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![serde_json::to_value(&el).unwrap()],
        )
        .await
        .unwrap();
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

/// Clicks `#id` as a person would: once it is shown and enabled (the UI disables every
/// button while an action is in progress; a click on a disabled button does nothing).
pub async fn click(client: &Client, id: &str) {
    click_css(client, &format!("#{id}")).await;
}

/// Clicks the element `css` selects once it is shown and enabled. The UI may re-render it
/// meanwhile (lists are rebuilt when they change): then the new one is clicked.
pub async fn click_css(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outcome = async {
            let el = client.wait().for_element(Locator::Css(css)).await?;
            if el.is_enabled().await? && el.is_displayed().await? {
                el.click().await.map(|()| true)
            } else {
                Ok(false)
            }
        }
        .await;
        match outcome {
            Ok(true) => return,
            Ok(false) => {}
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
            Err(e) => panic!("clicking {css}: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "{css} stayed disabled, hidden or replaced for 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of every element `css` selects, read in one step (no element can go stale
/// between finding it and reading it).
pub async fn texts(client: &Client, css: &str) -> Vec<String> {
    let v = client
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)",
            vec![json!(css)],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

pub async fn sign_in(client: &Client, email: &str) {
    fill(client, "email", email).await;
    fill(client, "password", PASSWORD).await;
    click(client, "sign-in").await;
    wait_status(client, |s| s == format!("Signed in as {email}")).await;
}

/// Moves the keyboard focus between the app's windows the way a window manager would, so
/// that each gets a real focus-in (there is no window manager under Xvfb).
pub fn focus_app_windows() {
    let out = Command::new("xdotool")
        .args(["search", "--name", "^Tessera$"])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for id in ids.iter().chain(ids.iter()) {
        let _ = Command::new("xdotool")
            .args(["windowfocus", "--sync", id])
            .output();
        std::thread::sleep(Duration::from_millis(150));
    }
}
