//! The embedded mode (`Config::embedded`): the user's own server inside an app, closed to
//! everyone but the app. Each test is one attack of SECURITY.md's "embedded server" part
//! (docs/security-embedded.md), tried over real HTTP against an in-process server.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use gotrue_emulator::{Config, Emulator, new_jwt_secret};
use reqwest::Method;
use serde_json::json;
use support::*;

/// An embedded emulator with its database in a fresh folder (kept for the test's life).
async fn embedded() -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        bcrypt_cost: 4,
        ..Config::embedded(new_jwt_secret(), dir.path().join("emulator.sqlite"), 0)
    };
    (Env::with(config).await, dir)
}

async fn user(env: &Env, email: &str) {
    env.emu
        .create_user(gotrue_emulator::NewUser::confirmed(email, PASSWORD))
        .await
        .unwrap();
}

/// A raw request: `headers` only (no API key unless given), `body` as given.
async fn raw(env: &Env, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = env.http.request(method, env.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.body(body.to_owned());
    }
    Reply::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn no_test_route_exists() {
    let (env, _dir) = embedded().await;
    for (method, path) in [
        (Method::GET, "/_emulator/mail"),
        (Method::DELETE, "/_emulator/mail"),
        (Method::GET, "/_emulator/issued-tokens"),
        (Method::GET, "/_emulator/sessions"),
        (Method::GET, "/_emulator/stats"),
        (Method::POST, "/_emulator/faults"),
        (Method::POST, "/_emulator/time"),
        (Method::GET, "/_emulator/oauth/github/authorize"),
        (Method::GET, "/auth/v1/_emulator/issued-tokens"),
        // The Edge Function and Storage stand-ins.
        (Method::GET, "/functions/v1/whoami"),
        (Method::POST, "/functions/v1/whoami"),
        (Method::POST, "/storage/v1/object/files/a.txt"),
        (Method::PUT, "/storage/v1/object/files/a.txt"),
        (Method::GET, "/storage/v1/object/files/a.txt"),
        (Method::GET, "/storage/v1/object/authenticated/files/a.txt"),
        (Method::DELETE, "/storage/v1/object/files"),
    ] {
        let reply = env
            .send(method.clone(), path, None, Some(json!({})), &[])
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
    }
}

#[tokio::test]
async fn the_public_demo_keys_are_refused() {
    let (env, _dir) = embedded().await;
    user(&env, "demo@example.com").await;
    let sign_in = json!({"email": "demo@example.com", "password": PASSWORD}).to_string();
    let json_type = ("content-type", "application/json");
    // The API gateway's rule: no key, or a key not signed with this install's secret, 401.
    for key in [
        None,
        Some(DEMO_ANON_KEY),
        Some(DEMO_SERVICE_ROLE_KEY),
        Some(gotrue_emulator::DEMO_PUBLISHABLE_KEY),
        Some(gotrue_emulator::DEMO_SECRET_KEY),
    ] {
        let mut headers = vec![json_type];
        if let Some(key) = key {
            headers.push(("apikey", key));
        }
        let reply = raw(
            &env,
            Method::POST,
            "/token?grant_type=password",
            &headers,
            &sign_in,
        )
        .await;
        assert_eq!(reply.status, 401, "{key:?}: {}", reply.text);
        assert!(reply.json["message"].is_string(), "{}", reply.text);
    }
    // With the app's key, a demo service_role bearer is a bad JWT (GoTrue's 403).
    let bearer = format!("Bearer {DEMO_SERVICE_ROLE_KEY}");
    let reply = raw(
        &env,
        Method::GET,
        "/user",
        &[("apikey", env.emu.anon_key()), ("authorization", &bearer)],
        "",
    )
    .await;
    reply.assert_error(403, "bad_jwt");
    // The app's own key works.
    env.sign_in("demo@example.com").await;
}

#[tokio::test]
async fn the_install_publishable_key_opens_the_gateway_as_anon() {
    let dir = tempfile::tempdir().unwrap();
    let secret = new_jwt_secret();
    let config = Config {
        bcrypt_cost: 4,
        ..Config::embedded(secret.clone(), dir.path().join("emulator.sqlite"), 0)
    };
    let env = Env::with(config).await;
    // Derived from the install's secret: the app keeps nothing more.
    let key = env.emu.publishable_key().unwrap().to_owned();
    assert!(key.starts_with("sb_publishable_"), "{key}");
    assert_eq!(key, gotrue_emulator::publishable_key_for(&secret));
    assert_ne!(key, gotrue_emulator::publishable_key_for(&new_jwt_secret()));
    assert!(!key.contains(&secret));
    assert_eq!(env.emu.secret_key(), None);

    user(&env, "pk@example.com").await;
    let json_type = ("content-type", "application/json");
    let anon_bearer = format!("Bearer {key}");
    let anonymous = [
        json_type,
        ("apikey", key.as_str()),
        ("authorization", anon_bearer.as_str()),
    ];
    let sign_in = json!({"email": "pk@example.com", "password": PASSWORD}).to_string();
    let session = raw(
        &env,
        Method::POST,
        "/token?grant_type=password",
        &anonymous,
        &sign_in,
    )
    .await;
    let session = session.assert_ok().clone();
    let refresh = json!({"refresh_token": refresh_token(&session)}).to_string();
    raw(
        &env,
        Method::POST,
        "/token?grant_type=refresh_token",
        &anonymous,
        &refresh,
    )
    .await
    .assert_ok();
    let user_bearer = format!("Bearer {}", access(&session));
    let me = raw(
        &env,
        Method::GET,
        "/user",
        &[
            ("apikey", key.as_str()),
            ("authorization", user_bearer.as_str()),
        ],
        "",
    )
    .await;
    assert_eq!(me.assert_ok()["email"], "pk@example.com");
    // As a bearer it is the anonymous caller, not a user.
    raw(&env, Method::GET, "/user", &anonymous, "")
        .await
        .assert_error(403, "bad_jwt");
}

#[tokio::test]
async fn the_admin_api_is_not_served_even_to_a_service_role_of_this_install() {
    let (env, _dir) = embedded().await;
    for (method, path) in [
        (Method::GET, "/admin/users"),
        (Method::POST, "/admin/users"),
        (Method::POST, "/admin/generate_link"),
        (Method::GET, "/auth/v1/admin/users"),
    ] {
        let reply = env
            .admin(
                method.clone(),
                path,
                Some(json!({"email": "x@example.com"})),
            )
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_foreign_host_is_misdirected() {
    let (env, _dir) = embedded().await;
    let port = env.emu.addr().port();
    let other = format!("127.0.0.1:{}", port.wrapping_add(1));
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        other,
        "localhost".to_owned(),
    ] {
        let reply = raw(
            &env,
            Method::GET,
            "/health",
            &[("host", &host), ("apikey", env.emu.anon_key())],
            "",
        )
        .await;
        reply.assert_error(421, "request_not_allowed");
    }
    for host in [format!("127.0.0.1:{port}"), format!("LocalHost:{port}")] {
        let reply = raw(
            &env,
            Method::GET,
            "/health",
            &[("host", &host), ("apikey", env.emu.anon_key())],
            "",
        )
        .await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text);
    }
}

#[tokio::test]
async fn json_routes_refuse_bodies_that_are_not_json() {
    let (env, _dir) = embedded().await;
    user(&env, "typed@example.com").await;
    let body = json!({"email": "typed@example.com", "password": PASSWORD}).to_string();
    let key = ("apikey", env.emu.anon_key());
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        let mut headers = vec![key];
        if let Some(t) = content_type {
            headers.push(("content-type", t));
        }
        let reply = raw(
            &env,
            Method::POST,
            "/token?grant_type=password",
            &headers,
            &body,
        )
        .await;
        reply.assert_error(415, "bad_json");
        let reply = raw(&env, Method::POST, "/signup", &headers, &body).await;
        reply.assert_error(415, "bad_json");
    }
    let reply = raw(
        &env,
        Method::POST,
        "/token?grant_type=password",
        &[key, ("content-type", "application/json; charset=utf-8")],
        &body,
    )
    .await;
    reply.assert_ok();
}

#[tokio::test]
async fn cors_stays_closed() {
    let (env, _dir) = embedded().await;
    let origin = ("origin", "https://evil.example");
    let preflight = raw(
        &env,
        Method::OPTIONS,
        "/token?grant_type=password",
        &[
            origin,
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "apikey, content-type"),
        ],
        "",
    )
    .await;
    assert!(!preflight.status.is_success(), "{}", preflight.status);
    let get = raw(
        &env,
        Method::GET,
        "/settings",
        &[origin, ("apikey", env.emu.anon_key())],
        "",
    )
    .await;
    assert_eq!(get.status, 200);
    for reply in [&preflight, &get] {
        let cors: Vec<_> = reply
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "CORS headers: {cors:?}");
    }
}

#[tokio::test]
async fn no_oauth_provider_is_offered() {
    let (env, _dir) = embedded().await;
    let settings = env.get("/settings", None).await;
    assert_eq!(settings.assert_ok()["external"]["github"], false);
    let reply = env.get("/authorize?provider=github", None).await;
    reply.assert_error(400, "provider_disabled");
}

/// Every file in `dir` (the database, its -wal and -shm) as bytes.
fn folder_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn refresh_tokens_and_codes_are_not_readable_from_the_data_folder() {
    let (env, dir) = embedded().await;
    user(&env, "atrest@example.com").await;
    let first = env.sign_in("atrest@example.com").await;
    let rotated = env
        .refresh(&refresh_token(&first))
        .await
        .assert_ok()
        .clone();
    // A magic link and a code: the mailbox is read in process.
    env.post("/otp", json!({"email": "atrest@example.com"}))
        .await
        .assert_ok();
    let mail = env.emu.mail_for(Some("atrest@example.com")).unwrap();
    let otp = mail.last().unwrap().otp.clone();
    assert_eq!(otp.len(), 6);
    // The link's token hash signs in by itself (`/verify?token=<hash>`): not stored either.
    let link_hash = mail.last().unwrap().token_hash.clone();

    let secrets = [
        refresh_token(&first),
        refresh_token(&rotated),
        otp.clone(),
        link_hash,
    ];
    for (path, bytes) in folder_bytes(dir.path()) {
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{} holds a secret in plain",
                path.display()
            );
        }
    }
    // The table holds keyed digests (HMAC-SHA-256), looked up by digest.
    let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite")).unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT token FROM refresh_tokens ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Keyed digests: a plain SHA-256 of a guess (or of a leaked token) matches nothing.
    let plain = |t: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(t.as_bytes()))
    };
    assert_eq!(stored.len(), 2);
    for (row, token) in stored
        .iter()
        .zip([refresh_token(&first), refresh_token(&rotated)])
    {
        assert_eq!(row.len(), 64, "{row}");
        assert!(!row.contains(&token) && *row != plain(&token), "{row}");
    }
    let mails: i64 = db
        .query_row("SELECT COUNT(*) FROM mails", [], |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(mails, 0, "the mailbox is kept in memory only");
    // Still a working server: the rotated token refreshes, the code signs in.
    env.refresh(&refresh_token(&rotated)).await.assert_ok();
    env.post(
        "/verify",
        json!({"email": "atrest@example.com", "token": otp, "type": "email"}),
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn a_replayed_refresh_token_still_gets_a_working_one() {
    let (env, _dir) = embedded().await;
    user(&env, "replay@example.com").await;
    let first = env.sign_in("replay@example.com").await;
    let second = env
        .refresh(&refresh_token(&first))
        .await
        .assert_ok()
        .clone();
    // The answer was lost: the old token again, inside the reuse interval.
    let again = env
        .refresh(&refresh_token(&first))
        .await
        .assert_ok()
        .clone();
    env.refresh(&refresh_token(&again)).await.assert_ok();
    // The token handed out first is not a way back in once the interval is over.
    env.emu.clock().advance_ms(60_000);
    env.refresh(&refresh_token(&second))
        .await
        .assert_error(400, "refresh_token_already_used");
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret = new_jwt_secret();
    let db = dir.path().join("emulator.sqlite");
    let config = || Config {
        bcrypt_cost: 4,
        ..Config::embedded(secret.clone(), db.clone(), 0)
    };
    let env = Env::with(config()).await;
    user(&env, "restart@example.com").await;
    let session = env.sign_in("restart@example.com").await;
    env.emu.shutdown().await;
    let env = Env::with(config()).await;
    env.refresh(&refresh_token(&session)).await.assert_ok();
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (env, dir) = embedded().await;
    user(&env, "modes@example.com").await;
    env.sign_in("modes@example.com").await;
    let files = folder_bytes(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in [
        "emulator.sqlite",
        "emulator.sqlite-wal",
        "emulator.sqlite-shm",
    ] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
    for (path, _) in files {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
    }
}

#[tokio::test]
async fn an_embedded_server_needs_its_own_secret_and_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("emulator.sqlite");
    let demo = Config::embedded(gotrue_emulator::DEFAULT_JWT_SECRET.into(), db.clone(), 0);
    assert!(Emulator::start(demo).await.is_err());
    let short = Config::embedded("a".repeat(63), db.clone(), 0);
    assert!(Emulator::start(short).await.is_err());
    let open = Config {
        host: "0.0.0.0".parse().unwrap(),
        ..Config::embedded(new_jwt_secret(), db.clone(), 0)
    };
    assert!(Emulator::start(open).await.is_err());
    // The public demo keys, or a secret key at all, are refused.
    let demo_publishable = Config {
        publishable_key: Some(gotrue_emulator::DEMO_PUBLISHABLE_KEY.into()),
        ..Config::embedded(new_jwt_secret(), db.clone(), 0)
    };
    assert!(Emulator::start(demo_publishable).await.is_err());
    let with_secret = Config {
        secret_key: Some(gotrue_emulator::DEMO_SECRET_KEY.into()),
        ..Config::embedded(new_jwt_secret(), db, 0)
    };
    assert!(Emulator::start(with_secret).await.is_err());
}

#[test]
fn the_secret_is_random_and_never_in_debug() {
    let secret = new_jwt_secret();
    assert_eq!(secret.len(), 64);
    assert_ne!(secret, new_jwt_secret());
    let config = Config::embedded(secret.clone(), "x.sqlite".into(), 0);
    assert!(!format!("{config:?}").contains(&secret));
}

#[tokio::test]
async fn totp_secrets_are_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let secret = new_jwt_secret();
    let db = dir.path().join("emulator.sqlite");
    let config = |secret: &str| Config {
        bcrypt_cost: 4,
        ..Config::embedded(secret.to_owned(), db.clone(), 0)
    };
    let env = Env::with(config(&secret)).await;
    user(&env, "totp@example.com").await;
    let session = env.sign_in("totp@example.com").await;
    let bearer = access(&session);
    let enrolled = env
        .post_auth("/factors", &bearer, Some(json!({"factor_type": "totp"})))
        .await
        .assert_ok()
        .clone();
    let totp_secret = enrolled["totp"]["secret"].as_str().unwrap().to_owned();
    let factor = enrolled["id"].as_str().unwrap().to_owned();
    for (path, bytes) in folder_bytes(dir.path()) {
        assert!(
            !contains(&bytes, &totp_secret),
            "{} holds the TOTP secret in plain",
            path.display()
        );
    }
    // The server still reads it: a challenge and a code from the secret verify.
    env.emu.shutdown().await;
    let env = Env::with(config(&secret)).await;
    let session = env.sign_in("totp@example.com").await;
    let bearer = access(&session);
    let challenge = env
        .post_auth(&format!("/factors/{factor}/challenge"), &bearer, None)
        .await
        .assert_ok()
        .clone();
    let code = totp_code(&totp_secret, env.emu.clock().now_secs());
    env.post_auth(
        &format!("/factors/{factor}/verify"),
        &bearer,
        Some(json!({"challenge_id": challenge["id"], "code": code})),
    )
    .await
    .assert_ok();
    // With another secret (the keyring entry lost) the account still works at aal1.
    env.emu.shutdown().await;
    let env = Env::with(config(&new_jwt_secret())).await;
    let session = env.sign_in("totp@example.com").await;
    env.get("/user", Some(&access(&session))).await.assert_ok();
}

fn totp_code(secret: &str, now: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "t".into())
        .unwrap()
        .generate(now as u64)
}

#[tokio::test]
async fn a_database_from_a_test_mode_server_is_cleaned_when_opened_embedded() {
    // The app before the embedded mode ran a test-mode server on its data folder.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("emulator.sqlite");
    let old = Env::with(Config {
        db: Some(db.clone()),
        ..Config::for_tests()
    })
    .await;
    user(&old, "upgrade@example.com").await;
    let session = old.sign_in("upgrade@example.com").await;
    let enrolled = old
        .post_auth(
            "/factors",
            &access(&session),
            Some(json!({"factor_type": "totp"})),
        )
        .await
        .assert_ok()
        .clone();
    old.post("/otp", json!({"email": "upgrade@example.com"}))
        .await
        .assert_ok();
    let otp = old.emu.mail_for(Some("upgrade@example.com")).unwrap()[0]
        .otp
        .clone();
    old.emu.shutdown().await;

    let env = Env::with(Config {
        bcrypt_cost: 4,
        ..Config::embedded(new_jwt_secret(), db, 0)
    })
    .await;
    let secrets = [
        refresh_token(&session),
        enrolled["totp"]["secret"].as_str().unwrap().to_owned(),
        otp,
    ];
    for (path, bytes) in folder_bytes(dir.path()) {
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{} keeps a secret",
                path.display()
            );
        }
    }
    // The user stays signed in across the upgrade.
    env.refresh(&refresh_token(&session)).await.assert_ok();
}

/// Sends raw bytes (what a client library would refuse to send) and returns the status.
async fn raw_status(env: &Env, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(env.emu.addr())
        .await
        .unwrap();
    conn.write_all(request).await.unwrap();
    let mut head = vec![0u8; 12];
    conn.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test]
async fn every_name_a_request_gives_must_be_ours() {
    let (env, _dir) = embedded().await;
    let port = env.emu.addr().port();
    let key = env.emu.anon_key();
    // An absolute-form target naming another host, with our Host header.
    let absolute = format!(
        "GET http://evil.example/health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\napikey: {key}\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(&env, absolute.as_bytes()).await, 421);
    // A Host header that is not text is refused, not skipped.
    let mut binary = format!("GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}").into_bytes();
    binary.extend_from_slice(b"\xff\r\napikey: ");
    binary.extend_from_slice(key.as_bytes());
    binary.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    assert_eq!(raw_status(&env, &binary).await, 421);
    // The app's own request passes.
    let ours = format!(
        "GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\napikey: {key}\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(&env, ours.as_bytes()).await, 200);
}
