//! The data proxy's handler (`auth_core::proxy::DataProxy`) over plain HTTP, for clients
//! that are not a webview: the pinned `@supabase/supabase-js` in `tests/auth-js` (its Node
//! test spawns this) and the proxy benchmark. It starts a GoTrue emulator in process,
//! creates and signs in a user, and serves the proxy on `127.0.0.1` (any free port). Its
//! first line on stdout is JSON: `{"url", "email", "userId", "sessionId"}`. It runs until
//! its standard input closes.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use auth_core::proxy::{DataProxy, ProxyConfig, ProxyRequest};
use auth_core::{AuthClient, AuthConfig, MemoryStore, Password};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gotrue_emulator::{Config, Emulator, NewUser};
use tokio::io::AsyncReadExt;

const EMAIL: &str = "proxy@example.com";
const PASSWORD: &str = "proxy-password";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emu = Emulator::start(Config::for_tests()).await?;
    let user_id = emu
        .create_user(NewUser::confirmed(EMAIL, PASSWORD))
        .await
        .map_err(|e| e.to_string())?;
    let mut cfg = AuthConfig::new(emu.url(), emu.anon_key());
    cfg.background = true;
    let client = AuthClient::new(cfg, Arc::new(MemoryStore::new()))?;
    client.start().await?;
    let view = client
        .sign_in_with_password(EMAIL, &Password::new(PASSWORD))
        .await?;
    let proxy = Arc::new(DataProxy::new(client, ProxyConfig::default())?);
    let app = axum::Router::new()
        .fallback(forward)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!(
        "{}",
        serde_json::json!({ "url": url, "email": EMAIL, "userId": user_id, "sessionId": view.session_id })
    );
    let serve = axum::serve(listener, app);
    tokio::select! {
        r = serve => r?,
        _ = stdin_closed() => {}
    }
    drop(emu);
    Ok(())
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}

async fn forward(
    State(proxy): State<Arc<DataProxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = proxy
        .handle(ProxyRequest {
            method: method.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
        })
        .await;
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
        answer.body,
    )
        .into_response();
    // The project's own content type, not the one a byte body defaults to.
    response
        .headers_mut()
        .remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_bytes(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
