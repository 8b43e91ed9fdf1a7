//! The `gotrue-emulator` binary: flags, GoTrue's environment names, start-up output, and
//! logs that never contain a password or a token.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct Running {
    child: Child,
    url: String,
    banner: Vec<String>,
}

impl Running {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gotrue-emulator"));
        cmd.args(["--port", "0", "--bcrypt-cost", "4"]).args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.env("GOTRUE_LOG", "debug");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first.rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{first}");
        let banner: Vec<String> = lines.take(5).map(|l| l.unwrap()).collect();
        Self { child, url, banner }
    }

    /// Stops the process and returns everything it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

async fn post(url: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

#[tokio::test]
async fn banner_env_names_and_flags() {
    let emu = Running::start(
        &["--jwt-exp", "120", "--no-autoconfirm"],
        &[
            ("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL", "0"),
            ("GOTRUE_SITE_URL", "http://localhost:4000"),
        ],
    );
    assert!(
        emu.banner
            .iter()
            .any(|l| l.starts_with("anon key:") && l.contains("eyJ")),
        "{:?}",
        emu.banner
    );
    assert!(
        emu.banner
            .iter()
            .any(|l| l.starts_with("service_role key:"))
    );

    // --no-autoconfirm: sign-up returns a bare user.
    let user = post(
        &format!("{}/signup", emu.url),
        json!({"email": "b@example.com", "password": "pass-word-1"}),
    )
    .await;
    assert!(user.get("access_token").is_none(), "{user}");
    let settings: Value = reqwest::get(format!("{}/settings", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["mailer_autoconfirm"], false);

    // --jwt-exp from the flag.
    let anon = post(&format!("{}/signup", emu.url), json!({})).await;
    assert_eq!(anon["expires_in"], 120);
    emu.stop();

    // GOTRUE_JWT_EXP from the environment.
    let emu = Running::start(&[], &[("GOTRUE_JWT_EXP", "90")]);
    let anon = post(&format!("{}/signup", emu.url), json!({})).await;
    assert_eq!(anon["expires_in"], 90);
    emu.stop();
}

#[test]
fn bad_flags_fail_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_gotrue-emulator"))
        .args(["--sessions-timebox", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sessions-timebox"));
    let out = Command::new(env!("CARGO_BIN_EXE_gotrue-emulator"))
        .args(["--port", "0", "--jwt-secret", "short"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
}

#[tokio::test]
async fn logs_never_contain_passwords_or_tokens() {
    let emu = Running::start(&[], &[]);
    let base = emu.url.clone();
    let password = "Very-Secret-Pass-42";
    let s = post(
        &format!("{base}/signup"),
        json!({"email": "logs@example.com", "password": password}),
    )
    .await;
    let s2 = post(
        &format!("{base}/token?grant_type=password"),
        json!({"email": "logs@example.com", "password": password}),
    )
    .await;
    let r = post(
        &format!("{base}/token?grant_type=refresh_token"),
        json!({"refresh_token": s2["refresh_token"]}),
    )
    .await;
    let bad = post(
        &format!("{base}/token?grant_type=password"),
        json!({"email": "logs@example.com", "password": "Wrong-Pass-99"}),
    )
    .await;
    assert_eq!(bad["error_code"], "invalid_credentials");
    // A mistyped password must not leak through a parse error either.
    let typed = post(
        &format!("{base}/signup"),
        json!({"email": "t@example.com", "password": 123_456_789_012u64}),
    )
    .await;
    assert_eq!(typed["error_code"], "bad_json");
    post(&format!("{base}/otp"), json!({"email": "logs@example.com"})).await;
    let mail: Value = reqwest::get(format!("{base}/_emulator/mail?to=logs@example.com"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = mail[0]["action_link"].as_str().unwrap().to_owned();
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    no_redirect.get(&link).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = emu.stop();
    assert!(
        logs.contains("path=\"/signup\""),
        "the access log is there: {logs}"
    );
    let mut secrets = vec![
        password.to_owned(),
        "Wrong-Pass-99".to_owned(),
        "123456789012".to_owned(),
        mail[0]["token_hash"].as_str().unwrap().to_owned(),
    ];
    // The stock template shows no code; the mailbox reports one only when it is shown.
    secrets.extend(mail[0]["otp"].as_str().map(str::to_owned));
    for session in [&s, &s2, &r] {
        secrets.push(session["access_token"].as_str().unwrap().to_owned());
        secrets.push(session["refresh_token"].as_str().unwrap().to_owned());
    }
    for secret in secrets {
        assert!(!logs.contains(&secret), "the log leaks {secret}");
    }
}

async fn jwks_and_token_header(url: &str) -> (Value, Value) {
    let jwks: Value = reqwest::get(format!("{url}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = post(&format!("{url}/signup"), json!({})).await;
    let token = session["access_token"].as_str().unwrap();
    let header = token.split('.').next().unwrap();
    let header =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap();
    (jwks, serde_json::from_slice(&header).unwrap())
}

#[tokio::test]
async fn jwt_alg_flag_and_gotrue_jwt_keys() {
    // --jwt-alg es256: a key made at start, served and named in every token.
    let emu = Running::start(&["--jwt-alg", "es256"], &[]);
    let (jwks, header) = jwks_and_token_header(&emu.url).await;
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    emu.stop();

    // GOTRUE_EMULATOR_JWT_ALG from the environment; the default stays HS256.
    let emu = Running::start(&[], &[("GOTRUE_EMULATOR_JWT_ALG", "es256")]);
    let (jwks, _) = jwks_and_token_header(&emu.url).await;
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    emu.stop();
    let emu = Running::start(&[], &[]);
    let (jwks, header) = jwks_and_token_header(&emu.url).await;
    assert_eq!(jwks, json!({"keys": []}));
    assert_eq!(header["alg"], "HS256");
    emu.stop();

    // GOTRUE_JWT_KEYS: GoTrue's array of private JWKs; its EC key signs, and the private
    // part is never logged or served.
    let key = gotrue_emulator::Es256Key::generate();
    let keys = json!([key.private_jwk()]).to_string();
    let emu = Running::start(&[], &[("GOTRUE_JWT_KEYS", &keys)]);
    let (jwks, header) = jwks_and_token_header(&emu.url).await;
    assert_eq!(header["kid"], key.kid());
    assert_eq!(jwks, json!({"keys": [key.public_jwk()]}));
    let logs = emu.stop();
    assert!(!logs.contains(key.private_jwk()["d"].as_str().unwrap()));

    let out = Command::new(env!("CARGO_BIN_EXE_gotrue-emulator"))
        .args(["--port", "0"])
        .env(
            "GOTRUE_JWT_KEYS",
            r#"[{"kty":"EC","crv":"P-256","kid":"k"}]"#,
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private part"));
}

#[tokio::test]
async fn publishable_and_secret_key_flags() {
    let admin = |url: String, key: &'static str| async move {
        reqwest::Client::new()
            .get(format!("{url}/admin/users"))
            .header("apikey", key)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // Supabase's local keys by default.
    let emu = Running::start(&[], &[]);
    assert_eq!(
        admin(emu.url.clone(), gotrue_emulator::DEMO_SECRET_KEY).await,
        200
    );
    emu.stop();
    // GOTRUE_EMULATOR_SECRET_KEY names another; an empty --secret-key turns it off.
    let custom = "sb_secret_0123456789abcdef-custom";
    let emu = Running::start(&[], &[("GOTRUE_EMULATOR_SECRET_KEY", custom)]);
    assert_eq!(admin(emu.url.clone(), custom).await, 200);
    assert_eq!(
        admin(emu.url.clone(), gotrue_emulator::DEMO_SECRET_KEY).await,
        403
    );
    emu.stop();
    let emu = Running::start(&["--secret-key", ""], &[]);
    assert_eq!(
        admin(emu.url.clone(), gotrue_emulator::DEMO_SECRET_KEY).await,
        403
    );
    emu.stop();
    // A publishable key is anon, never admin.
    let key = "sb_publishable_0123456789abcdef-custom";
    let emu = Running::start(&["--publishable-key", key], &[]);
    assert_eq!(admin(emu.url.clone(), key).await, 403);
    emu.stop();
}

/// Mails to the current address after an email change on a server run with `envs`.
async fn mails_to_current_address_after_email_change(envs: &[(&str, &str)]) -> usize {
    let emu = Running::start(&["--no-autoconfirm"], envs);
    let http = reqwest::Client::new();
    let admin_key = gotrue_emulator::DEMO_SECRET_KEY;
    http.post(format!("{}/admin/users", emu.url))
        .bearer_auth(admin_key)
        .json(
            &json!({"email": "old@example.com", "password": "pass-word-1", "email_confirm": true}),
        )
        .send()
        .await
        .unwrap();
    let session = post(
        &format!("{}/token?grant_type=password", emu.url),
        json!({"email": "old@example.com", "password": "pass-word-1"}),
    )
    .await;
    http.put(format!("{}/user", emu.url))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .json(&json!({"email": "new@example.com"}))
        .send()
        .await
        .unwrap();
    let mails: Value = reqwest::get(format!("{}/_emulator/mail?to=old@example.com", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    emu.stop();
    mails.as_array().unwrap().len()
}

#[tokio::test]
async fn secure_email_change_is_on_by_default_and_gotrues_env_turns_it_off() {
    assert_eq!(mails_to_current_address_after_email_change(&[]).await, 1);
    let off = [("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", "false")];
    assert_eq!(mails_to_current_address_after_email_change(&off).await, 0);
}
