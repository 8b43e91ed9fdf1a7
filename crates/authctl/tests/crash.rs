//! The crash run (issue 5): `authctl` is killed with SIGKILL at each step of sign-in,
//! refresh and sign-out — at named steps (auth-core's `crash-points` feature), and at
//! random moments from outside — many times, then started again. The session must be
//! either valid (the server accepts it) or ended with the sign-out's revocation still
//! owed; never silently lost, never two live copies; queued revocations survive.
//!
//! Needs a Secret Service and the feature: `scripts/with-keyring cargo test -p authctl
//! --features crash-points --test crash -- --ignored` (`scripts/test` runs it).
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};
use std::time::Duration;

use gotrue_emulator::Config;
use serde_json::Value;
use support::*;

const REPEATS: usize = 3;

/// The two crash tests run one after the other: with both SIGKILLing processes in the
/// middle of Secret Service calls at once, gnome-keyring-daemon 42.1 was seen to drop off
/// the bus (about one run in ten), which fails the test for the daemon's sake, not ours.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(9)
}

fn status(ctl: &Ctl<'_>) -> Value {
    serde_json::from_str(&ctl.ok(&["status", "--json"], None)).unwrap()
}

fn password() -> String {
    format!("{PASSWORD}\n")
}

/// After a restart the stored session, if any, must be the server's one live session of
/// this device and usable; if none, nothing of this device may stay live once the outbox
/// is flushed.
async fn assert_consistent(ctl: &Ctl<'_>, user_id: &str, context: &str) -> bool {
    let st = status(ctl);
    if st["signedIn"] == true {
        let session_id = st["session"]["sessionId"].as_str().unwrap().to_owned();
        let user = blocking_ok(ctl, &["user"]).await;
        assert!(
            user.contains(&session_id) || user.contains('@'),
            "{context}: {user}"
        );
        blocking_ok(ctl, &["refresh"]).await;
        let flushed = blocking_ok(ctl, &["outbox", "flush"]).await;
        assert!(flushed.contains("0 revocation(s)"), "{context}: {flushed}");
        let live = live_sessions(ctl.emu, user_id).await;
        assert!(
            live.contains(&session_id),
            "{context}: the stored session is live at the server ({live:?})"
        );
        true
    } else {
        let flushed = blocking_ok(ctl, &["outbox", "flush"]).await;
        assert!(flushed.contains("0 revocation(s)"), "{context}: {flushed}");
        false
    }
}

async fn blocking_ok(ctl: &Ctl<'_>, args: &[&str]) -> String {
    // The emulator runs on this test's runtime: block on a separate thread.
    let mut cmd = ctl.cmd(ctl.emu.url());
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "authctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn sign_in(ctl: &Ctl<'_>, email: &str) {
    let mut cmd = ctl.cmd(ctl.emu.url());
    cmd.args(["sign-in", "--email", email, "--password-stdin"]);
    let out = tokio::task::spawn_blocking(move || output_with_stdin(cmd, Some(&password())))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs authctl with `TESSERA_CRASH_AT=step` and checks that it died of SIGKILL there.
async fn crash(ctl: &Ctl<'_>, step: &'static str, args: Vec<String>, stdin: bool) {
    let mut cmd = ctl.cmd(ctl.emu.url());
    cmd.env("TESSERA_CRASH_AT", step).args(&args);
    let out = tokio::task::spawn_blocking(move || {
        output_with_stdin(cmd, stdin.then(password).as_deref())
    })
    .await
    .unwrap();
    assert!(
        killed(&out),
        "authctl {args:?} should have died at {step}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service and --features crash-points: see the module docs"]
async fn killed_at_every_step_the_session_is_valid_or_explicitly_ended() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let emu = emulator(Config::for_tests()).await;
    let mut runs = 0;
    for step in auth_core::crash::STEPS.iter().copied() {
        for round in 0..REPEATS {
            let email = format!("crash-{}-{round}@example.com", step.replace(':', "-"));
            let user_id = create_user(&emu, &email).await;
            let ctl = Ctl::new(&emu);
            let context = format!("{step} (round {round})");
            let (group, _) = step.split_once(':').unwrap();
            match group {
                "sign_in" => {
                    let args = ["sign-in", "--email", &email, "--password-stdin"];
                    crash(&ctl, step, args.map(String::from).to_vec(), true).await;
                    let signed_in = assert_consistent(&ctl, &user_id, &context).await;
                    // Persisted before the crash: restored; before persisting: never was.
                    assert_eq!(signed_in, step == "sign_in:after_persist", "{context}");
                }
                "refresh" => {
                    sign_in(&ctl, &email).await;
                    crash(&ctl, step, vec!["refresh".into()], false).await;
                    // The server may have rotated the token we never stored: the reuse
                    // interval hands the stored one the same new session.
                    assert!(
                        assert_consistent(&ctl, &user_id, &context).await,
                        "{context}"
                    );
                    assert_eq!(live_sessions(ctl.emu, &user_id).await.len(), 1, "{context}");
                }
                "sign_out" => {
                    sign_in(&ctl, &email).await;
                    let scope = if round % 2 == 0 { "local" } else { "global" };
                    let args = ["sign-out", "--scope", scope];
                    crash(&ctl, step, args.map(String::from).to_vec(), false).await;
                    let st = status(&ctl);
                    assert_eq!(st["signedIn"], false, "{context}: the sign-out stands");
                    assert!(
                        !assert_consistent(&ctl, &user_id, &context).await,
                        "{context}"
                    );
                    assert!(
                        live_sessions(ctl.emu, &user_id).await.is_empty(),
                        "{context}: the queued revocation survived and was delivered"
                    );
                }
                other => unreachable!("{other}"),
            }
            runs += 1;
        }
    }
    eprintln!("crash run: {runs} kills at named steps, every restart consistent");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Secret Service and --features crash-points: see the module docs"]
async fn killed_at_random_moments_nothing_is_lost() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let emu = emulator(Config::for_tests()).await;
    let mut outcomes = [0usize; 2];
    for round in 0..20u64 {
        let email = format!("random-{round}@example.com");
        let user_id = create_user(&emu, &email).await;
        let ctl = Ctl::new(&emu);
        sign_in(&ctl, &email).await;
        let args: &[&str] = if round % 2 == 0 {
            &["refresh"]
        } else {
            &["sign-out", "--scope", "local"]
        };
        let mut cmd = ctl.cmd(ctl.emu.url());
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        // Kill after 0–60 ms: anywhere from start-up to the end of the command.
        let delay = Duration::from_millis((round * 37) % 61);
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
            child.wait().unwrap();
        })
        .await
        .unwrap();
        let context = format!("round {round}, {args:?} killed after {delay:?}");
        let signed_in = assert_consistent(&ctl, &user_id, &context).await;
        outcomes[usize::from(signed_in)] += 1;
        if !signed_in {
            assert!(
                live_sessions(ctl.emu, &user_id).await.is_empty(),
                "{context}"
            );
        }
    }
    eprintln!(
        "random kills: 20 rounds, {} ended as signed in (valid), {} as signed out (revoked)",
        outcomes[1], outcomes[0]
    );
}
