//! `authctl server set|show|forget` and the saved server every command then uses. The
//! checks need no keyring (the server commands never open it); the per-server sessions
//! do, so that test is `#[ignore]`d like cli.rs's (run inside scripts/with-keyring).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use gotrue_emulator::{Config, EmulatorHandle};
use serde_json::Value;
use support::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(out: &Output, code: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert!(err.starts_with(&format!("authctl: {code}: ")), "{err}");
}

fn api_root(emu: &EmulatorHandle) -> String {
    format!("{}/auth/v1", emu.url())
}

fn show_json(ctl: &Ctl<'_>, extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.extend(["server", "show", "--json"]);
    serde_json::from_str(&ctl.ok_saved(&args, None)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_set_checks_the_server_and_refuses_what_is_wrong() {
    let emu = emulator(Config::for_tests()).await;
    let ctl = Ctl::new(&emu);
    let file = ctl.config_dir.path().join("authctl.json");
    let set = |url: &str, key: Option<&str>| {
        let mut args = vec!["server", "set", url];
        if let Some(key) = key {
            args.extend(["--anon-key", key]);
        }
        ctl.run_saved(&args, None)
    };
    let key = Some(emu.anon_key());
    refused(
        &set(emu.url(), Some(emu.service_role_key())),
        "secret_api_key",
    );
    refused(&set(emu.url(), Some("sb_secret_abcdef")), "secret_api_key");
    refused(&set(emu.url(), None), "missing_api_key");
    refused(&set(emu.url(), Some("not-a-key")), "invalid_api_key");
    refused(&set("abc.supabase.co", key), "invalid_url");
    refused(&set("http://abc.supabase.co", key), "insecure_url");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    refused(&set(&closed, key), "server_unreachable");
    refused(&set(&format!("{}/_emulator", emu.url()), key), "not_gotrue");
    assert!(!file.exists(), "nothing is saved from a failed check");

    let out = ctl.set_server(&emu);
    assert!(out.contains("Connected to a Supabase auth server"), "{out}");
    assert!(out.contains(&format!("at {}.", api_root(&emu))), "{out}");
    assert!(out.contains("Key: legacy anon key."), "{out}");
    assert!(out.contains("New accounts: open."), "{out}");
    assert!(out.contains("Email confirmation:"), "{out}");
    assert!(out.contains("Sign-in providers:"), "{out}");
    assert!(out.contains(&file.display().to_string()), "{out}");
    assert!(
        !out.contains(emu.anon_key()),
        "the key is never printed whole"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["url"], api_root(&emu), "the API root the check found");
    assert_eq!(saved["anonKey"], emu.anon_key());
    // Only its owner may read it (Unix modes; on Windows the file is in the user's own
    // profile folder, whose ACL already says so).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let entries: Vec<_> = std::fs::read_dir(ctl.config_dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file is left");

    // A failed check leaves the saved server as it was.
    refused(&set(&closed, key), "server_unreachable");
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(again, saved);

    // --json: what the server offers, as ServerInfo.
    let info: Value = serde_json::from_str(&ctl.ok_saved(
        &[
            "server",
            "set",
            &api_root(&emu),
            "--anon-key",
            emu.anon_key(),
            "--json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(info["url"], api_root(&emu));
    assert_eq!(info["keyKind"], "legacyAnon");
    assert_eq!(info["signupEnabled"], true);
    assert!(info["providers"].is_array());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_show_tells_which_server_and_where_it_comes_from() {
    let emu = emulator(Config::for_tests()).await;
    let other = emulator(Config::for_tests()).await;
    let ctl = Ctl::new(&emu);
    let file = ctl.config_dir.path().join("authctl.json");
    ctl.set_server(&emu);

    let text = ctl.ok_saved(&["server", "show"], None);
    assert!(
        text.contains(&format!(
            "server: {} (saved in {})",
            api_root(&emu),
            file.display()
        )),
        "{text}"
    );
    let key = emu.anon_key();
    let masked = format!("{}…{}", &key[..4], &key[key.len() - 4..]);
    assert!(
        text.contains(&format!("key:    {masked} (saved in")),
        "{text}"
    );
    assert!(
        text.contains("Connected to a Supabase auth server"),
        "{text}"
    );
    assert!(!text.contains(key));

    let json = show_json(&ctl, &[]);
    assert_eq!(json["url"], api_root(&emu));
    assert_eq!(json["source"], "saved");
    assert_eq!(json["anonKey"], masked);
    assert_eq!(json["anonKeySource"], "saved");
    assert_eq!(json["configFile"], file.display().to_string());
    assert_eq!(json["server"]["url"], api_root(&emu));
    assert!(json["error"].is_null());

    // --url and TESSERA_AUTH_URL win over the saved server.
    let json = show_json(
        &ctl,
        &["--url", other.url(), "--anon-key", other.anon_key()],
    );
    assert_eq!(json["url"], other.url());
    assert_eq!(json["source"], "flag");
    assert_eq!(json["anonKeySource"], "flag");
    assert_eq!(json["server"]["url"], api_root(&other));
    let mut cmd = ctl.bare_cmd();
    cmd.env("TESSERA_AUTH_URL", other.url())
        .args(["server", "show", "--json"]);
    let json: Value = serde_json::from_str(&succeeded(&["show"], cmd.output().unwrap())).unwrap();
    assert_eq!(json["url"], other.url());
    assert_eq!(json["source"], "env");

    // The saved server is a GoTrue: a SuperTokens backend neither uses nor saves one.
    let json = show_json(&ctl, &["--backend", "supertokens"]);
    assert_eq!(json["source"], "default");
    assert_eq!(json["backend"], "supertokens");
    assert!(json["server"].is_null() && json["error"].is_null());
    refused(
        &ctl.run_saved(
            &[
                "--backend",
                "supertokens",
                "server",
                "set",
                other.url(),
                "--anon-key",
                other.anon_key(),
            ],
            None,
        ),
        "invalid_input",
    );
    assert_eq!(show_json(&ctl, &[])["url"], api_root(&emu));

    // A saved server that is down: reported, and still the one in use.
    ctl.set_server(&other);
    other.shutdown().await;
    let text = ctl.ok_saved(&["server", "show"], None);
    assert!(
        text.contains("check:  failed: server_unreachable:"),
        "{text}"
    );
    let json = show_json(&ctl, &[]);
    assert_eq!(json["source"], "saved");
    assert_eq!(json["error"]["code"], "server_unreachable");
    assert!(json["server"].is_null());

    // Forgotten: the default again.
    let out = ctl.ok_saved(&["server", "forget"], None);
    assert!(out.contains("forgot the saved server"), "{out}");
    assert!(!file.exists());
    let out = ctl.ok_saved(&["server", "forget"], None);
    assert!(out.contains("no saved server"), "{out}");
    let out = ctl.run_saved(&["server", "show", "--json"], None);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["source"], "default");
    assert_eq!(json["url"], "http://127.0.0.1:9999");

    // A saved file that cannot be read is an error, not a silent switch of server.
    std::fs::write(&file, "{not json").unwrap();
    refused(&ctl.run_saved(&["server", "show"], None), "config_error");
    refused(&ctl.run_saved(&["status"], None), "config_error");
    ctl.ok_saved(&["server", "forget"], None);
    assert!(!file.exists());
}

fn status(ctl: &Ctl<'_>) -> Value {
    serde_json::from_str(&ctl.ok_saved(&["status", "--json"], None)).unwrap()
}

fn sign_in_saved(ctl: &Ctl<'_>, email: &str) {
    let out = ctl.ok_saved(
        &["sign-in", "--email", email, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.contains(&format!("signed in as {email}")), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn each_server_keeps_its_own_session() {
    let a = emulator(Config::for_tests()).await;
    let b = emulator(Config::for_tests()).await;
    let alice = create_user(&a, "alice@example.com").await;
    let bob = create_user(&b, "bob@example.com").await;
    let ctl = Ctl::new(&a);

    ctl.set_server(&a);
    sign_in_saved(&ctl, "alice@example.com");
    let on_a = status(&ctl);
    assert_eq!(on_a["session"]["user"]["email"], "alice@example.com");
    let alice_session = on_a["session"]["sessionId"].as_str().unwrap().to_owned();

    // Server B: no session there, and nothing was sent anywhere for A's.
    ctl.set_server(&b);
    assert!(ctl.ok_saved(&["status"], None).contains("not signed in"));
    assert_eq!(status(&ctl)["signedIn"], false);
    let stats = get(&b, "/_emulator/stats").await;
    for counter in [
        "password_grants",
        "refresh_token_grants",
        "logouts",
        "user_requests",
    ] {
        assert_eq!(stats[counter], 0, "{counter}: {stats}");
    }
    let a_stats = get(&a, "/_emulator/stats").await;
    assert_eq!(a_stats["logouts"], 0, "{a_stats}");
    assert_eq!(
        live_sessions(&a, &alice).await,
        std::slice::from_ref(&alice_session)
    );

    sign_in_saved(&ctl, "bob@example.com");
    let on_b = status(&ctl);
    assert_eq!(on_b["session"]["user"]["email"], "bob@example.com");
    let bob_session = on_b["session"]["sessionId"].as_str().unwrap().to_owned();

    // Back to A: Alice's session, untouched; Bob's stays on B for later.
    ctl.set_server(&a);
    let back = status(&ctl);
    assert_eq!(back["session"]["user"]["email"], "alice@example.com");
    assert_eq!(back["session"]["sessionId"], alice_session.as_str());
    assert!(ctl.ok_saved(&["user"], None).contains("alice@example.com"));
    assert_eq!(live_sessions(&a, &alice).await, [alice_session]);
    assert_eq!(live_sessions(&b, &bob).await, [bob_session]);
    let stats = get(&b, "/_emulator/stats").await;
    assert_eq!(stats["password_grants"], 1, "{stats}");
    assert_eq!(stats["logouts"], 0, "{stats}");
    assert_eq!(stats["user_requests"], 0, "A's `user` went to A: {stats}");
    assert_eq!(stats["refresh_token_grants"], 0, "{stats}");

    // --url over the saved server: B's session, for this command only.
    let mut cmd = ctl.bare_cmd();
    cmd.args(["--url", &api_root(&b), "--anon-key", b.anon_key()])
        .args(["status", "--json"]);
    let out = succeeded(&["status"], cmd.output().unwrap());
    assert!(out.contains("bob@example.com"), "{out}");
    assert_eq!(
        status(&ctl)["session"]["user"]["email"],
        "alice@example.com"
    );
}
