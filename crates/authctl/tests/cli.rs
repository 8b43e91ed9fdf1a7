//! `authctl` as a user runs it: real processes, the emulator over HTTP, the session in a
//! real OS credential store. They need one, so they are `#[ignore]`d in a plain `cargo
//! test`; `scripts/test` runs them inside `scripts/with-keyring` (gnome-keyring) with
//! `--ignored`, and `scripts/windows-tests` runs them again with the Windows `authctl.exe`
//! under Wine (`TESSERA_AUTHCTL`, see `support::authctl`).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use gotrue_emulator::Config;
use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn sign_in_status_user_refresh_sign_out() {
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    create_user(&emu, "cli@example.com").await;
    let ctl = Ctl::new(&emu);
    ctl.sign_in("cli@example.com");
    let status = ctl.ok(&["status"], None);
    assert!(status.contains("signed in as cli@example.com"), "{status}");
    let json: Value = serde_json::from_str(&ctl.ok(&["status", "--json"], None)).unwrap();
    assert_eq!(json["signedIn"], true);
    assert_eq!(json["session"]["user"]["email"], "cli@example.com");
    assert!(json["session"].get("refreshToken").is_none() && !json.to_string().contains("eyJ"));
    assert!(ctl.ok(&["user"], None).contains("cli@example.com"));
    assert!(ctl.ok(&["refresh"], None).starts_with("refreshed"));
    let out = ctl.ok(&["sign-out", "--scope", "local"], None);
    assert!(
        out.contains("signed out on this device") && out.contains("the server confirmed"),
        "{out}"
    );
    assert!(ctl.ok(&["status"], None).contains("not signed in"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn local_sign_out_succeeds_offline_and_is_delivered_later() {
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    let user_id = create_user(&emu, "offline-cli@example.com").await;
    let ctl = Ctl::new(&emu);
    ctl.sign_in("offline-cli@example.com");
    // The server is unreachable: every connection to it is dropped.
    let http = reqwest::Client::new();
    let fault = serde_json::json!({"path": "*", "drop": true, "times": 1000});
    let r = http
        .post(format!("{}/_emulator/faults", emu.url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let started = Instant::now();
    let out = ctl.run(&["sign-out", "--scope", "local"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued"));
    assert!(ctl.ok(&["status"], None).contains("not signed in"));
    assert!(ctl.ok(&["outbox"], None).contains("scope=local"));
    assert_eq!(
        get(&emu, &format!("/_emulator/sessions?user_id={user_id}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    http.delete(format!("{}/_emulator/faults", emu.url()))
        .send()
        .await
        .unwrap();
    assert!(
        ctl.ok(&["outbox", "flush"], None)
            .contains("0 revocation(s) still pending")
    );
    assert!(
        get(&emu, &format!("/_emulator/sessions?user_id={user_id}"))
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn sign_out_others_then_global_at_the_server() {
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    let user_id = create_user(&emu, "scopes-cli@example.com").await;
    let (laptop, phone) = (Ctl::new(&emu), Ctl::new(&emu));
    laptop.sign_in("scopes-cli@example.com");
    phone.sign_in("scopes-cli@example.com");
    assert_eq!(live_sessions(&emu, &user_id).await.len(), 2);

    let out = laptop.ok(&["sign-out", "--scope", "others"], None);
    assert!(
        out.contains("this device stays signed in (others); the server confirmed"),
        "{out}"
    );
    assert_eq!(live_sessions(&emu, &user_id).await.len(), 1);
    assert!(
        laptop
            .ok(&["user"], None)
            .contains("scopes-cli@example.com")
    );
    let out = phone.run(&["user"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session_not_found"));

    // Global is the default scope.
    let out = laptop.ok(&["sign-out"], None);
    assert!(
        out.contains("signed out on this device (global); the server confirmed"),
        "{out}"
    );
    assert!(live_sessions(&emu, &user_id).await.is_empty());
    assert!(laptop.ok(&["status"], None).contains("not signed in"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn two_processes_on_an_expiring_session_refresh_once() {
    let emu = emulator(Config {
        jwt_exp: Duration::from_secs(6),
        ..tessera_test_support::config_with_codes()
    })
    .await;
    create_user(&emu, "pair@example.com").await;
    let ctl = Ctl::new(&emu);
    ctl.sign_in("pair@example.com");
    tokio::time::sleep(Duration::from_millis(5000)).await; // inside the refresh margin, still valid
    reqwest::Client::new()
        .delete(format!("{}/_emulator/stats", emu.url()))
        .send()
        .await
        .unwrap();
    let a = ctl
        .cmd(emu.url())
        .arg("user")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = ctl
        .cmd(emu.url())
        .arg("user")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) =
        blocking(move || (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())).await;
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let stats = get(&emu, "/_emulator/stats").await;
    assert_eq!(stats["refresh_token_grants"], 1, "{stats}");
    assert_eq!(stats["user_requests"], 2);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn errors_are_one_line_with_a_code_and_passwords_never_go_in_argv() {
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    create_user(&emu, "err@example.com").await;
    let ctl = Ctl::new(&emu);
    let out = ctl.run(
        &["sign-in", "--email", "err@example.com", "--password-stdin"],
        Some("wrong-password\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("authctl: invalid_credentials:"), "{err}");
    let out = ctl.run(
        &[
            "sign-in",
            "--email",
            "err@example.com",
            "--password",
            PASSWORD,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "there is no --password flag");
    let out = ctl.run(&["sign-out", "--scope", "everywhere"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_input"));
    // No Secret Service: a clear error, never a plaintext fallback. (Linux's authctl: the
    // store is reached over D-Bus, which an address can break; the other platforms'
    // stores are always there.)
    if cfg!(target_os = "linux") && !testing_another_build() {
        let out = ctl
            .cmd(emu.url())
            .arg("status")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("keyring_unavailable"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn profiles_otp_anonymous_and_watch() {
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    create_user(&emu, "otp-cli@example.com").await;
    let a = Ctl::new(&emu);
    let b = Ctl::new(&emu);
    assert!(
        a.ok(&["otp", "send", "--email", "otp-cli@example.com"], None)
            .contains("sent")
    );
    let mails = get(&emu, "/_emulator/mail?to=otp-cli@example.com").await;
    let code = mails[0]["otp"].as_str().unwrap().to_owned();
    assert!(
        a.ok(
            &[
                "otp",
                "verify",
                "--email",
                "otp-cli@example.com",
                "--code",
                &code
            ],
            None
        )
        .contains("otp-cli@example.com")
    );
    assert!(
        b.ok(&["status"], None).contains("not signed in"),
        "profiles are separate"
    );
    assert!(
        b.ok(&["sign-in", "--anonymous"], None)
            .contains("anonymous")
    );

    let mut watch = a
        .cmd(emu.url())
        .arg("watch")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let first = blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await;
    stop_as_ctrl_c(&mut watch).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["event"], "INITIAL_SESSION");
    assert_eq!(first["session"]["user"]["email"], "otp-cli@example.com");
}

/// Ends `authctl watch` as Ctrl-C does, and kills it only if it is still there after five
/// seconds: gnome-keyring-daemon 42.1 can drop off the bus when a client is killed in the
/// middle of a call, failing the other tests that use it at that moment.
async fn stop_as_ctrl_c(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let pid = child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn your_devices_list_and_revoke() {
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    create_user(&emu, "devices-cli@example.com").await;
    let (laptop, phone, tablet) = (Ctl::new(&emu), Ctl::new(&emu), Ctl::new(&emu));
    for ctl in [&laptop, &phone, &tablet] {
        ctl.sign_in("devices-cli@example.com");
    }
    let list: Vec<Value> = serde_json::from_str(&laptop.ok(&["sessions", "--json"], None)).unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter()
            .all(|d| d["userAgent"].as_str().unwrap().starts_with("authctl/"))
    );
    let phone_id = serde_json::from_str::<Value>(&phone.ok(&["status", "--json"], None)).unwrap()
        ["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = laptop.ok(&["sessions", "revoke", &phone_id], None);
    assert!(out.contains("signed out session"), "{out}");
    let text = laptop.ok(&["sessions"], None);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("(this device)") && !text.contains(&phone_id));
    let out = phone.run(&["user"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session_not_found"));
    assert!(
        tablet
            .ok(&["user"], None)
            .contains("devices-cli@example.com")
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn the_same_commands_against_a_supertokens_backend() {
    let emu = emulator(tessera_test_support::config_with_codes()).await; // for the Ctl helper only
    let st = supertokens_emulator::start(supertokens_emulator::Config::for_tests())
        .await
        .unwrap();
    reqwest::Client::new()
        .post(format!("{}/_emulator/users", st.url()))
        .json(&serde_json::json!({"email": "st-cli@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let ctl = Ctl::new(&emu);
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = ctl.cmd(&st.url());
        cmd.args(["--backend", "supertokens"]).args(args);
        output_with_stdin(cmd, stdin)
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = ok(run(
        &[
            "sign-in",
            "--email",
            "st-cli@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    assert!(out.contains("signed in as st-cli@example.com"), "{out}");
    assert!(ok(run(&["refresh"], None)).starts_with("refreshed"));
    assert!(ok(run(&["user"], None)).contains("st-cli@example.com"));
    let out = ok(run(&["sign-out", "--scope", "local"], None));
    assert!(out.contains("the server confirmed"), "{out}");
    assert!(ok(run(&["status"], None)).contains("not signed in"));
    let out = run(&["otp", "send", "--email", "st-cli@example.com"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported_by_backend"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service: run inside scripts/with-keyring"]
async fn recover_with_the_emailed_code_sets_a_new_password_and_ends_other_sessions() {
    const EMAIL: &str = "forgot@example.com";
    const NEW_PASSWORD: &str = "a-new-horse-42";
    let emu = emulator(tessera_test_support::config_with_codes()).await;
    let user_id = create_user(&emu, EMAIL).await;
    let (laptop, phone) = (Ctl::new(&emu), Ctl::new(&emu));
    phone.sign_in(EMAIL);
    let last_code = || {
        let mails = emu.mail_for(Some(EMAIL)).unwrap();
        let mail = mails.last().unwrap();
        assert_eq!(mail.mail_type, "recovery");
        mail.otp.clone().expect("a code in the mail")
    };

    // --send-only: the mail, nothing else.
    let out = laptop.ok(&["recover", "--email", EMAIL, "--send-only"], None);
    assert!(out.contains("sent a password-recovery mail"), "{out}");
    assert!(out.contains("--have-code"), "{out}");
    assert_eq!(emu.mail_for(Some(EMAIL)).unwrap().len(), 1);
    assert!(laptop.ok(&["status"], None).contains("not signed in"));
    // A wrong code changes nothing.
    let wrong = if last_code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let out = laptop.run(
        &["recover", "--email", EMAIL, "--have-code", "--code-stdin"],
        Some(&format!("{wrong}\n{NEW_PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("authctl: "));
    assert!(laptop.ok(&["status"], None).contains("not signed in"));

    // One run: the mail is sent, then the code it carries is read from stdin.
    let mut child = laptop
        .cmd(emu.url())
        .args(["recover", "--email", EMAIL, "--code-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (first, mut stdout) = blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        (line, stdout)
    })
    .await;
    assert!(first.contains("sent a password-recovery mail"), "{first}");
    let code = last_code();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{code}\n{NEW_PASSWORD}\n").as_bytes()).unwrap();
    drop(stdin);
    let (rest, out) = blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        (rest, child.wait_with_output().unwrap())
    })
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rest.contains(&format!("password changed for {EMAIL}")),
        "{rest}"
    );
    assert!(rest.contains("signed out every other session"), "{rest}");
    assert!(!first.contains(NEW_PASSWORD) && !rest.contains(NEW_PASSWORD));

    // This device is signed in; the phone's session is gone at the server.
    let laptop_session = serde_json::from_str::<Value>(&laptop.ok(&["status", "--json"], None))
        .unwrap()["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let live: Vec<String> = get(&emu, &format!("/_emulator/sessions?user_id={user_id}"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(live, [laptop_session]);
    let out = phone.run(&["user"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session_not_found"));

    // The old password fails, the new one works.
    let tablet = Ctl::new(&emu);
    let sign_in = ["sign-in", "--email", EMAIL, "--password-stdin"];
    let out = tablet.run(&sign_in, Some(&format!("{PASSWORD}\n")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_credentials"));
    let out = tablet.ok(&sign_in, Some(&format!("{NEW_PASSWORD}\n")));
    assert!(out.contains(&format!("signed in as {EMAIL}")), "{out}");
}
