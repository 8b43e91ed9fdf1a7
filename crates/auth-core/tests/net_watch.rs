//! The network coming back (Linux): a refresh backing off is tried as soon as the kernel
//! reports a change of links, addresses or routes, not when its back-off runs out. The
//! test runs itself again inside a private network namespace (`unshare --net`), where it
//! may change the network without touching the machine's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use support::failing::*;
use support::*;

const INSIDE: &str = "TESSERA_TEST_IN_NETNS";
const NAME: &str = "a_network_change_tries_a_backed_off_refresh_at_once";

#[test]
fn a_network_change_tries_a_backed_off_refresh_at_once() {
    if std::env::var_os(INSIDE).is_some() {
        return inside_the_namespace();
    }
    let exe = std::env::current_exe().unwrap();
    let run = |extra: &[&str]| {
        Command::new("unshare")
            .args(extra)
            .args(["--net", "--"])
            .arg(&exe)
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .status()
    };
    // As root a network namespace needs nothing else; as a user, a user namespace too.
    let status = run(&[])
        .ok()
        .filter(|s| s.success())
        .map_or_else(|| run(&["--map-root-user"]), Ok)
        .expect("unshare (util-linux) runs");
    assert!(
        status.success(),
        "the test failed inside its network namespace ({status}; its output is above)"
    );
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2) runs");
    assert!(status.success(), "ip {args:?}: {status}");
}

#[tokio::main]
async fn inside_the_namespace() {
    // A new namespace has only a loopback interface, and it is down.
    ip(&["link", "set", "lo", "up"]);
    let env = Env::start().await;
    env.create_user("roaming@example.com").await;
    let store = Arc::new(TestStore::default());
    let e = signed_in(env.config(), &store, "roaming@example.com").await;
    let requests = || e.client.metrics().refresh_requests.load(Ordering::SeqCst);

    // The refresh falls due while the server cannot be reached: it backs off.
    env.fault(json!({"path": "/token", "status": 503, "times": 1}))
        .await;
    let before = requests();
    e.clock.advance(Duration::from_secs(3600));
    wait_until("the refresh was tried and failed", async || {
        requests() > before
    })
    .await;
    // The back-off is a sleep of the manual clock, which stands still: only the network
    // change can make the engine try again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failed = requests();
    assert_eq!(failed, before + 1, "tried again without a reason");

    // The network changes (an address appears, as when a Wi-Fi network is joined).
    ip(&["addr", "add", "127.0.0.2/8", "dev", "lo"]);
    wait_until("the network change tried the refresh", async || {
        requests() > failed
    })
    .await;
    assert!(e.client.session().is_some());
    assert!(e.client.access_token().await.is_ok());
}
