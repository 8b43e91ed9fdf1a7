//! `tessera-real-app`: the app in its real window against a real GoTrue, by hand — how
//! `docs/fidelity.md`'s "the app once" was run. Not a test of the suite: it needs a server
//! a person started (with its SMTP pointed at this program's sink) and prints what
//! happened, step by step, with screenshots in `target/screenshots/real-*.png`.
//!
//! ```text
//! xvfb-run -a scripts/with-keyring target/debug/tessera-real-app http://127.0.0.1:9997 <anon key> 127.0.0.1:2525
//! ```
//! The server must confirm addresses by mail (`GOTRUE_MAILER_AUTOCONFIRM=false`) and allow
//! `tessera://**` as a redirect.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use gotrue_contract::smtp::SmtpSink;
use tessera_e2e::*;

/// The newest mail to `to`, its first link opened as a browser would: the deep link.
async fn link_from_mail(sink: &SmtpSink, to: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let mails = sink.mails_to(to);
        if mails.len() >= count {
            break mails[count - 1].clone();
        }
        assert!(Instant::now() < deadline, "no mail number {count} to {to}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let link = gotrue_emulator::mail_links(&mail.html)
        .into_iter()
        .next()
        .expect("a link in the mail");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(&link).send().await.unwrap();
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, key, smtp] = args.as_slice() else {
        eprintln!("usage: tessera-real-app URL ANON_KEY SMTP_LISTEN_ADDR");
        std::process::exit(2);
    };
    let sink = SmtpSink::start(smtp).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let h = Harness::unconfigured(
        data.path(),
        &[("TESSERA_AUTH_URL", url), ("TESSERA_ANON_KEY", key)],
    )
    .await;
    let open = |link: &str| {
        let out = Command::new(app_bin())
            .arg(link)
            .env("TESSERA_AUTH_URL", url)
            .env("TESSERA_ANON_KEY", key)
            .env("TESSERA_PROFILE", &h.profile)
            .output()
            .unwrap();
        assert!(out.status.success(), "the second instance failed");
    };
    let step = |what: &str| println!("- {what}");
    let id = uuid_like();
    let (from, to) = (
        format!("real-{id}@tessera.dev"),
        format!("moved-{id}@tessera.dev"),
    );
    let app = h.open_app().await;
    step(&format!(
        "started against {url}: {}",
        text(&app, "auth-status").await
    ));

    fill(&app, "email", &from).await;
    fill(&app, "password", tessera_test_support::PASSWORD).await;
    click(&app, "sign-up").await;
    wait_text(&app, "message", |t| t.contains("Check your email")).await;
    step("sign-up: the confirmation mail is asked for");
    open(&link_from_mail(&sink, &from, 1).await);
    wait_status(&app, |s| s == format!("Signed in as {from}")).await;
    step("the stock template's link, through /verify and back to the app: signed in");
    screenshot(&app, "real-signed-in").await;

    fill(&app, "new-email", &to).await;
    click(&app, "change-email").await;
    wait_text(&app, "email-change-text", |t| {
        t.contains("confirmation link")
    })
    .await;
    open(&link_from_mail(&sink, &from, 2).await);
    wait_text(&app, "message", |t| t.contains("One address is confirmed")).await;
    step("email change: the current address's link says the other is still to come");
    open(&link_from_mail(&sink, &to, 1).await);
    wait_status(&app, |s| s == format!("Signed in as {to}")).await;
    step("email change: the new address's link finishes it in the app");
    screenshot(&app, "real-email-changed").await;

    click(&app, "sign-out-global").await;
    wait_status(&app, |s| s == "Signed out").await;
    step(&format!(
        "sign-out everywhere: {}",
        text(&app, "message").await
    ));
    app.close().await.unwrap();
}

/// A short name no other run used.
fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}
