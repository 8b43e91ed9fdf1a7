//! The emulator's behaviour that the GoTrue contract scenarios (`tests/contract`, run
//! against the emulator and a real GoTrue alike) cannot reach: configurations that no
//! contract profile has (anonymous users off, sign-ups off, refresh-token and session
//! rules, short code lifetimes, mail throttling, an issuer, another secret, reauthentication
//! required, secure email change off), its `/auth/v1` prefix, restarts on a database file,
//! dropping the handle, and its own routes (faults, sessions, mail, stats). The PostgREST
//! stand-in is in `standins.rs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use gotrue_emulator::{Config, MailTemplates};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

// ----------------------------------------------------------------------------- metadata

#[tokio::test]
async fn served_at_root_and_under_auth_v1() {
    let env = Env::start().await;
    env.get("/auth/v1/health", None).await.assert_ok();
    let session = env
        .post(
            "/auth/v1/signup",
            json!({"email": "prefix@example.com", "password": PASSWORD}),
        )
        .await;
    let session = session.assert_ok().clone();
    let me = env.get("/user", Some(&access(&session))).await;
    assert_eq!(me.assert_ok()["email"], "prefix@example.com");
}

// ----------------------------------------------------------------------------- sign-up

#[tokio::test]
async fn jwt_issuer_is_written_when_configured() {
    let env = Env::with(Config {
        jwt_issuer: Some("http://localhost/auth/v1".into()),
        ..Config::for_tests()
    })
    .await;
    let s = env.sign_up("iss@example.com").await;
    assert_eq!(claims(&access(&s))["iss"], "http://localhost/auth/v1");
}

#[tokio::test]
async fn anonymous_signup() {
    let off = Env::with(Config {
        anonymous_users: false,
        ..Config::for_tests()
    })
    .await;
    off.post("/signup", json!({}))
        .await
        .assert_error(422, "anonymous_provider_disabled");
}

#[tokio::test]
async fn signup_rejections() {
    let closed = Env::with(Config {
        disable_signup: true,
        ..Config::for_tests()
    })
    .await;
    closed
        .post(
            "/signup",
            json!({"email": "a@example.com", "password": PASSWORD}),
        )
        .await
        .assert_error(422, "signup_disabled");
}

// ----------------------------------------------------------------------------- authenticated routes

#[tokio::test]
async fn authenticated_routes_check_signature_expiry_user_and_session() {
    let env = Env::start().await;
    // Forged: same claims, another secret.
    let forged = Env::with(Config {
        jwt_secret: "another-secret-another-secret-another-secret".into(),
        ..Config::for_tests()
    })
    .await
    .sign_up("auth@example.com")
    .await;
    env.get("/user", Some(&access(&forged)))
        .await
        .assert_error(403, "bad_jwt");
}

#[tokio::test]
async fn admin_routes_need_a_service_role_bearer() {
    // Supabase's well-known local keys work with the default secret.
    let env = Env::start().await;
    env.get("/admin/users", Some(DEMO_SERVICE_ROLE_KEY))
        .await
        .assert_ok();
    env.get("/admin/users", Some(DEMO_ANON_KEY))
        .await
        .assert_error(403, "not_admin");
}

// ----------------------------------------------------------------------------- refresh rotation

#[tokio::test]
async fn reuse_interval_zero_and_rotation_off() {
    let strict = Env::with(Config {
        refresh_token_reuse_interval: Duration::ZERO,
        ..Config::for_tests()
    })
    .await;
    let s = strict.sign_up("strict@example.com").await;
    let t0 = refresh_token(&s);
    let t1 = refresh_token(strict.refresh(&t0).await.assert_ok());
    let t2 = refresh_token(strict.refresh(&t1).await.assert_ok());
    strict
        .refresh(&t0)
        .await
        .assert_error(400, "refresh_token_already_used");
    strict
        .refresh(&t2)
        .await
        .assert_error(400, "refresh_token_already_used");

    let lax = Env::with(Config {
        refresh_token_reuse_interval: Duration::ZERO,
        refresh_token_rotation: false,
        ..Config::for_tests()
    })
    .await;
    let s = lax.sign_up("lax@example.com").await;
    let t0 = refresh_token(&s);
    let t1 = refresh_token(lax.refresh(&t0).await.assert_ok());
    let t2 = refresh_token(lax.refresh(&t1).await.assert_ok());
    lax.refresh(&t0)
        .await
        .assert_error(400, "refresh_token_already_used");
    lax.refresh(&t2).await.assert_ok();
}

// ----------------------------------------------------------------------------- session limits

#[tokio::test]
async fn session_timebox_is_enforced_at_refresh_only() {
    let env = Env::with(Config {
        sessions_timebox: Some(Duration::from_secs(60)),
        ..Config::for_tests()
    })
    .await;
    let s = env.sign_up("box@example.com").await;
    let s = env.refresh(&refresh_token(&s)).await.assert_ok().clone();
    env.advance(61).await;
    let r = env.refresh(&refresh_token(&s)).await;
    r.assert_error(400, "session_expired");
    assert_eq!(r.json["msg"], "Invalid Refresh Token: Session Expired");
    env.get("/user", Some(&access(&s))).await.assert_ok();
}

#[tokio::test]
async fn session_inactivity_timeout() {
    let env = Env::with(Config {
        sessions_inactivity_timeout: Some(Duration::from_secs(30)),
        ..Config::for_tests()
    })
    .await;
    let s = env.sign_up("idle@example.com").await;
    env.advance(20).await;
    let s = env.refresh(&refresh_token(&s)).await.assert_ok().clone();
    env.advance(20).await;
    let s = env.refresh(&refresh_token(&s)).await.assert_ok().clone();
    env.advance(31).await;
    let r = env.refresh(&refresh_token(&s)).await;
    r.assert_error(400, "session_expired");
    assert_eq!(
        r.json["msg"],
        "Invalid Refresh Token: Session Expired (Inactivity)"
    );
}

// ----------------------------------------------------------------------------- email codes and links

#[tokio::test]
async fn emailed_codes_expire() {
    let env = Env::with(Config {
        otp_exp: Duration::from_secs(60),
        mail_templates: MailTemplates::with_codes(),
        ..Config::for_tests()
    })
    .await;
    env.sign_up("exp@example.com").await;
    env.post("/otp", json!({"email": "exp@example.com"}))
        .await
        .assert_ok();
    let mail = env.last_mail("exp@example.com").await;
    env.advance(61).await;
    env.post(
        "/verify",
        json!({"type": "email", "email": "exp@example.com", "token": mail["otp"]}),
    )
    .await
    .assert_error(403, "otp_expired");
}

#[tokio::test]
async fn mail_is_throttled_per_address() {
    let env = Env::with(Config {
        smtp_max_frequency: Duration::from_secs(60),
        ..Config::for_tests()
    })
    .await;
    env.sign_up("slow@example.com").await;
    env.post("/otp", json!({"email": "slow@example.com"}))
        .await
        .assert_ok();
    env.post("/otp", json!({"email": "slow@example.com"}))
        .await
        .assert_error(429, "over_email_send_rate_limit");
    env.advance(61).await;
    env.post("/otp", json!({"email": "slow@example.com"}))
        .await
        .assert_ok();
}

// ----------------------------------------------------------------------------- PUT /user

#[tokio::test]
async fn email_change_with_confirmation() {
    // One confirmation from the new address; the secure (two-mail) change is in
    // tests/email_change.rs.
    let env = Env::with(Config {
        autoconfirm: false,
        secure_email_change: false,
        mail_templates: MailTemplates::with_codes(),
        ..Config::for_tests()
    })
    .await;
    let created = env
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"email": "old@example.com", "password": PASSWORD, "email_confirm": true})),
        )
        .await;
    created.assert_ok();
    let s = env.sign_in("old@example.com").await;
    let u = env
        .send(
            Method::PUT,
            "/user",
            Some(&access(&s)),
            Some(json!({"email": "new@example.com"})),
            &[],
        )
        .await;
    let u = u.assert_ok();
    assert_eq!(u["email"], "old@example.com");
    assert_eq!(u["new_email"], "new@example.com");
    let mail = env.last_mail("new@example.com").await;
    assert_eq!(mail["type"], "email_change");
    let v = env
        .post(
            "/verify",
            json!({"type": "email_change", "email": "new@example.com", "token": mail["otp"]}),
        )
        .await;
    assert_eq!(v.assert_ok()["user"]["email"], "new@example.com");
}

/// With `update_password_require_reauthentication`, a password change in a session more
/// than a day old needs the mailed nonce (without it, GoTrue ignores a nonce).
#[tokio::test]
async fn reauthenticate_nonce() {
    let env = Env::with(Config {
        update_password_require_reauthentication: true,
        ..Config::for_tests()
    })
    .await;
    let s = env.sign_up("reauth@example.com").await;
    let token = access(&s);
    let put = |body: Value| env.send(Method::PUT, "/user", Some(&token), Some(body), &[]);
    // A fresh session needs none.
    put(json!({"password": "next-pass-1", "nonce": "000000"}))
        .await
        .assert_ok();
    env.advance(24 * 3600 + 1).await;
    let s = env.refresh(&refresh_token(&s)).await.assert_ok().clone();
    let token = access(&s);
    let put = |body: Value| env.send(Method::PUT, "/user", Some(&token), Some(body), &[]);
    put(json!({"password": "next-pass-2"}))
        .await
        .assert_error(400, "reauthentication_needed");
    env.get("/reauthenticate", Some(&token)).await.assert_ok();
    let mail = env.last_mail("reauth@example.com").await;
    assert_eq!(mail["type"], "reauthentication");
    put(json!({"password": "next-pass-2", "nonce": "000000"}))
        .await
        .assert_error(422, "reauthentication_not_valid");
    put(json!({"password": "next-pass-2", "nonce": mail["otp"]}))
        .await
        .assert_ok();
}

// ----------------------------------------------------------------------------- emulator-only routes

#[tokio::test]
async fn faults_status_malformed_delay_and_drop() {
    let env = Env::start().await;
    let s = env.sign_up("faulty@example.com").await;
    let add = env
        .post(
            "/_emulator/faults",
            json!({"path": "/auth/v1/token", "status": 503, "times": 2}),
        )
        .await;
    assert_eq!(add.status.as_u16(), 201);
    let r1 = env.refresh(&refresh_token(&s)).await;
    r1.assert_error(503, "unexpected_failure");
    let r2 = env
        .send(
            Method::POST,
            "/auth/v1/token?grant_type=refresh_token",
            None,
            Some(json!({"refresh_token": refresh_token(&s)})),
            &[],
        )
        .await;
    assert_eq!(r2.status.as_u16(), 503);
    let s = env.refresh(&refresh_token(&s)).await.assert_ok().clone();

    // A definitive error can be injected too.
    env.post(
        "/_emulator/faults",
        json!({"path": "/token", "status": 400, "error_code": "refresh_token_not_found"}),
    )
    .await;
    env.refresh(&refresh_token(&s))
        .await
        .assert_error(400, "refresh_token_not_found");

    env.post(
        "/_emulator/faults",
        json!({"path": "/user", "malformed": true}),
    )
    .await;
    let m = env.get("/user", Some(&access(&s))).await;
    assert!(m.status.is_success());
    assert!(
        serde_json::from_str::<Value>(&m.text).is_err(),
        "malformed body: {}",
        m.text
    );

    env.post(
        "/_emulator/faults",
        json!({"path": "/user", "delay_ms": 300}),
    )
    .await;
    let started = std::time::Instant::now();
    env.get("/user", Some(&access(&s))).await.assert_ok();
    assert!(started.elapsed() >= Duration::from_millis(300));

    env.post("/_emulator/faults", json!({"path": "/user", "drop": true}))
        .await;
    let dropped = env
        .http
        .get(env.url("/user"))
        .bearer_auth(access(&s))
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "the connection was closed without an answer"
    );
    env.get("/user", Some(&access(&s))).await.assert_ok();

    env.post(
        "/_emulator/faults",
        json!({"path": "/user", "status": 500, "times": 5}),
    )
    .await;
    assert_eq!(
        env.get("/_emulator/faults", None)
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.send(Method::DELETE, "/_emulator/faults", None, None, &[])
            .await
            .status
            .as_u16(),
        204
    );
    env.get("/user", Some(&access(&s))).await.assert_ok();

    env.post("/_emulator/faults", json!({"path": "token"}))
        .await
        .assert_error(400, "validation_failed");
    env.post("/_emulator/faults", json!({"path": "/token", "unknown": 1}))
        .await
        .assert_error(400, "bad_json");
}

#[tokio::test]
async fn emulator_sessions_and_mail_listing() {
    let env = Env::start().await;
    let s = env.sign_up("list@example.com").await;
    env.sign_in("list@example.com").await;
    let sessions = env.sessions(&user_id(&s)).await;
    assert_eq!(sessions.len(), 2);
    for key in ["id", "user_id", "created_at", "refreshed_at", "aal"] {
        assert!(sessions[0].get(key).is_some(), "{key}");
    }
    env.post("/otp", json!({"email": "list@example.com"})).await;
    env.post("/recover", json!({"email": "list@example.com"}))
        .await;
    let mails = env.mails("LIST@example.com").await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0]["type"], "magiclink", "oldest first");
    assert_eq!(mails[1]["type"], "recovery");
    assert_eq!(
        env.send(Method::DELETE, "/_emulator/mail", None, None, &[])
            .await
            .status
            .as_u16(),
        204
    );
    assert!(env.mails("list@example.com").await.is_empty());
}

#[tokio::test]
async fn a_restart_with_the_same_file_keeps_users_and_sessions() {
    let dir = std::env::temp_dir().join(format!("emu-restart-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("auth.db");
    let session = {
        let env = Env::with(Config {
            db: Some(db.clone()),
            ..Config::for_tests()
        })
        .await;
        let s = env.sign_up("persist@example.com").await;
        env.emu.shutdown().await;
        s
    };
    let env = Env::with(Config {
        db: Some(db),
        ..Config::for_tests()
    })
    .await;
    env.get("/user", Some(&access(&session))).await.assert_ok();
    env.refresh(&refresh_token(&session)).await.assert_ok();
    env.sign_in("persist@example.com").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let env = Env::start().await;
    let url = env.url("/health");
    let http = env.http.clone();
    drop(env);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(http.get(url).send().await.is_err());
}

#[tokio::test]
async fn stats_count_requests_by_kind() {
    let env = Env::start().await;
    let s = env.sign_up("stats@example.com").await;
    env.sign_in("stats@example.com").await;
    env.refresh(&refresh_token(&s)).await.assert_ok();
    env.refresh("abcdefghijkl").await; // failed ones count too
    env.get("/user", Some(&access(&s))).await.assert_ok();
    env.post_auth("/logout?scope=local", &access(&s), None)
        .await;
    let added = env
        .post(
            "/_emulator/faults",
            json!({"path": "*", "status": 503, "rate": 1.0, "times": 2}),
        )
        .await;
    assert_eq!(added.status.as_u16(), 201);
    assert_eq!(env.get("/settings", None).await.status.as_u16(), 503);
    assert_eq!(env.get("/health", None).await.status.as_u16(), 503);
    env.get("/health", None).await.assert_ok();
    let stats = env.get("/_emulator/stats", None).await.json;
    assert_eq!(
        stats,
        json!({"refresh_token_grants": 2, "password_grants": 1, "pkce_grants": 0, "logouts": 1,
               "user_requests": 1, "refresh_token_reuses": 0, "rpc_calls": 0, "function_calls": 0, "storage_requests": 0, "faults_injected": 2})
    );
    let issued = env.get("/_emulator/issued-tokens", None).await.json;
    let issued = issued.as_array().unwrap();
    assert!(issued.contains(&json!(access(&s))) && issued.contains(&json!(refresh_token(&s))));
    env.send(Method::DELETE, "/_emulator/stats", None, None, &[])
        .await;
    assert_eq!(
        env.get("/_emulator/stats", None).await.json["refresh_token_grants"],
        0
    );
}
