//! Scenario 7: the data proxy's cost. The same calls made directly from Rust (reqwest with
//! the engine's token, as an app's Rust side would) and through `DataProxy::handle` (what the
//! `supabase://` scheme runs for the page), side by side in one run.

use std::time::Instant;

use auth_core::proxy::{DataProxy, ProxyConfig, ProxyRequest};
use auth_core::{AuthClient, AuthConfig, MemoryStore, Password};
use gotrue_emulator::EmulatorHandle;

use super::{median, percentile};

const CALLS: usize = 1000;
const DOWNLOADS: usize = 20;
const TEN_MIB: usize = 10 * 1024 * 1024;

fn call(method: &str, path: &str, body: Vec<u8>) -> ProxyRequest {
    ProxyRequest {
        method: method.into(),
        path_and_query: path.into(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body,
    }
}

pub async fn proxy(emu: &EmulatorHandle, email: &str, password: &str) {
    let client = AuthClient::new(
        AuthConfig::new(emu.url(), emu.anon_key()),
        std::sync::Arc::new(MemoryStore::new()),
    )
    .unwrap();
    client.start().await.unwrap();
    client
        .sign_in_with_password(email, &Password::new(password))
        .await
        .unwrap();
    let proxy = DataProxy::new(client.clone(), ProxyConfig::default()).unwrap();
    let http = reqwest::Client::new();
    let base = emu.url().trim_end_matches('/').to_owned();
    let direct = |path: &str, method: reqwest::Method, body: Option<Vec<u8>>| {
        let (http, client, url) = (http.clone(), client.clone(), format!("{base}{path}"));
        let key = emu.anon_key().to_owned();
        async move {
            let token = client.access_token().await.unwrap();
            let mut r = http
                .request(method, url)
                .header("apikey", key)
                .bearer_auth(token.expose_secret());
            if let Some(body) = body {
                r = r
                    .header("content-type", "application/octet-stream")
                    .body(body);
            }
            let answer = r.send().await.unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
            answer.bytes().await.unwrap().len()
        }
    };
    let rpc = "/rest/v1/rpc/tessera_list_sessions";
    // Warm both paths (connections, token).
    for _ in 0..20 {
        direct(rpc, reqwest::Method::POST, Some(b"{}".to_vec())).await;
        proxy.handle(call("POST", rpc, b"{}".to_vec())).await;
    }
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let t = Instant::now();
        direct(rpc, reqwest::Method::POST, Some(b"{}".to_vec())).await;
        d.push(super::ms(t.elapsed()));
        let t = Instant::now();
        let r = proxy.handle(call("POST", rpc, b"{}".to_vec())).await;
        p.push(super::ms(t.elapsed()));
        assert_eq!(r.status, 200);
    }
    // A 10 MiB object, downloaded both ways.
    let object = "/storage/v1/object/bench/ten-mib.bin";
    let bytes: Vec<u8> = (0..TEN_MIB).map(|i| (i % 251) as u8).collect();
    let up = proxy.handle(call("POST", object, bytes)).await;
    assert_eq!(up.status, 200);
    let (mut dd, mut pd) = (Vec::new(), Vec::new());
    for _ in 0..DOWNLOADS {
        let t = Instant::now();
        assert_eq!(direct(object, reqwest::Method::GET, None).await, TEN_MIB);
        dd.push(super::ms(t.elapsed()));
        let t = Instant::now();
        let r = proxy.handle(call("GET", object, Vec::new())).await;
        pd.push(super::ms(t.elapsed()));
        assert_eq!(r.body.len(), TEN_MIB);
    }
    println!("## 7. Data proxy overhead\n");
    println!(
        "The same calls from Rust directly (reqwest with the engine's token) and through \
         `DataProxy::handle` (what the page's `supabase://` calls run), interleaved, against the \
         emulator on loopback.\n"
    );
    println!(
        "| call | direct median | direct p99 | proxy median | proxy p99 | proxy − direct (median) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, d: Vec<f64>, p: Vec<f64>| {
        let (dm, d99, pm, p99) = (
            median(d.clone()),
            percentile(d, 0.99),
            median(p.clone()),
            percentile(p, 0.99),
        );
        println!(
            "| {name} | {dm:.3} ms | {d99:.3} ms | {pm:.3} ms | {p99:.3} ms | {:+.3} ms |",
            pm - dm
        );
    };
    row(&format!("small RPC (×{CALLS})"), d, p);
    row(&format!("10 MiB Storage download (×{DOWNLOADS})"), dd, pd);
    println!(
        "\nThe page's call adds WebKit's custom-scheme round trip (request and answer copied \
         between the web process and the app) on top of the proxy's own cost shown here.\n"
    );
}
