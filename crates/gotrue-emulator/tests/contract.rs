//! The emulator's HTTP contract, checked over real HTTP against an in-process server.
//! Each test names the GoTrue behaviour it pins down (see `shared/reference/gotrue-protocol.md`).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use gotrue_emulator::Config;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

// ----------------------------------------------------------------------------- metadata

#[tokio::test]
async fn health_settings_and_jwks() {
    let env = Env::start().await;
    let health = env.get("/health", None).await;
    assert_eq!(health.assert_ok()["name"], "GoTrue");
    let settings = env.get("/settings", None).await;
    let s = settings.assert_ok();
    assert_eq!(s["external"]["email"], true);
    assert_eq!(s["external"]["github"], true);
    assert_eq!(s["external"]["anonymous_users"], true);
    assert_eq!(s["mailer_autoconfirm"], true);
    assert_eq!(s["disable_signup"], false);
    let jwks = env.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.assert_ok(), &json!({"keys": []}));
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=600"));
}

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
async fn signup_returns_a_session_shaped_like_gotrues() {
    let env = Env::start().await;
    let s = env
        .post(
            "/signup",
            json!({"email": "Shape@Example.com", "password": PASSWORD, "data": {"name": "Ada"}}),
        )
        .await;
    let s = s.assert_ok();
    assert_eq!(s["token_type"], "bearer");
    assert_eq!(s["expires_in"], 3600);
    assert!(s["expires_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(
        s.get("session_id").is_none(),
        "GoTrue never puts session_id in the body"
    );
    let rt = refresh_token(s);
    assert_eq!(rt.len(), 12);
    let user = &s["user"];
    assert_eq!(user["email"], "shape@example.com");
    assert_eq!(user["phone"], "");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(user["is_anonymous"], false);
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    assert_eq!(
        user["user_metadata"],
        json!({"name": "Ada", "email_verified": true})
    );
    assert!(user["email_confirmed_at"].is_string());
    assert!(user["confirmed_at"].is_string());
    assert!(user["last_sign_in_at"].is_string());
    let identities = user["identities"].as_array().unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["provider"], "email");
    assert_eq!(identities[0]["id"], user["id"]);
    assert_eq!(identities[0]["identity_data"]["email_verified"], true);
    assert!(user.get("factors").is_none());

    // The JWT carries GoTrue's claims.
    let c = claims(&access(s));
    assert_eq!(c["sub"], user["id"]);
    assert_eq!(c["aud"], "authenticated", "aud is a plain string");
    assert_eq!(c["role"], "authenticated");
    assert_eq!(c["email"], "shape@example.com");
    assert_eq!(c["phone"], "");
    assert_eq!(c["aal"], "aal1");
    assert_eq!(c["is_anonymous"], false);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(c["exp"], s["expires_at"]);
    assert!(uuid::Uuid::parse_str(c["session_id"].as_str().unwrap()).is_ok());
    let amr = c["amr"].as_array().unwrap();
    assert_eq!(amr[0]["method"], "password");
    assert!(amr[0]["timestamp"].is_i64());
    for absent in ["iss", "jti", "nbf"] {
        assert!(
            c.get(absent).is_none(),
            "{absent} is not written by default"
        );
    }
}

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
    let env = Env::start().await;
    let s = env.post("/signup", json!({})).await;
    let s = s.assert_ok();
    assert_eq!(s["user"]["is_anonymous"], true);
    assert_eq!(s["user"]["email"], "");
    assert_eq!(s["user"]["identities"], json!([]));
    assert_eq!(s["user"]["app_metadata"], json!({}));
    let c = claims(&access(s));
    assert_eq!(c["is_anonymous"], true);
    assert_eq!(c["amr"][0]["method"], "anonymous");

    // An empty body is not JSON.
    let r = env.send(Method::POST, "/signup", None, None, &[]).await;
    r.assert_error(400, "bad_json");

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
    let env = Env::start().await;
    env.sign_up("dup@example.com").await;
    env.post(
        "/signup",
        json!({"email": "dup@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(422, "user_already_exists");
    let weak = env
        .post(
            "/signup",
            json!({"email": "weak@example.com", "password": "abc"}),
        )
        .await;
    weak.assert_error(422, "weak_password");
    assert_eq!(weak.json["weak_password"]["reasons"], json!(["length"]));
    env.post(
        "/signup",
        json!({"email": "not-an-email", "password": PASSWORD}),
    )
    .await
    .assert_error(400, "validation_failed");
    env.post("/signup", json!({"email": "nopass@example.com"}))
        .await
        .assert_error(400, "validation_failed");
    let long = "x".repeat(73);
    env.post(
        "/signup",
        json!({"email": "long@example.com", "password": long}),
    )
    .await
    .assert_error(400, "validation_failed");

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

#[tokio::test]
async fn signup_with_confirmations_on() {
    let env = Env::with(Config {
        autoconfirm: false,
        ..Config::for_tests()
    })
    .await;
    let user = env
        .post(
            "/signup",
            json!({"email": "conf@example.com", "password": PASSWORD}),
        )
        .await;
    let user = user.assert_ok().clone();
    assert!(
        user.get("access_token").is_none(),
        "a bare user, no session"
    );
    assert!(user["confirmation_sent_at"].is_string());
    assert!(user.get("email_confirmed_at").is_none());

    let mail = env.last_mail("conf@example.com").await;
    assert_eq!(mail["type"], "signup");
    assert_eq!(mail["to"], "conf@example.com");
    assert_eq!(mail["otp"].as_str().unwrap().len(), 6);
    assert!(
        mail["action_link"]
            .as_str()
            .unwrap()
            .contains("/verify?token=")
    );
    assert!(mail["created_at"].is_string());
    assert!(mail["subject"].is_string());

    // Wrong password first, then right password but unconfirmed.
    env.post(
        "/token?grant_type=password",
        json!({"email": "conf@example.com", "password": "wrong-one"}),
    )
    .await
    .assert_error(400, "invalid_credentials");
    env.post(
        "/token?grant_type=password",
        json!({"email": "conf@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(400, "email_not_confirmed");

    // Confirm by code.
    let s = env
        .post(
            "/verify",
            json!({"type": "signup", "email": "conf@example.com", "token": mail["otp"]}),
        )
        .await;
    assert!(s.assert_ok()["user"]["email_confirmed_at"].is_string());
    env.sign_in("conf@example.com").await;

    // A duplicate sign-up of a confirmed address gets an obfuscated fake user.
    let fake = env
        .post(
            "/signup",
            json!({"email": "conf@example.com", "password": PASSWORD}),
        )
        .await;
    let fake = fake.assert_ok();
    assert_eq!(fake["identities"], json!([]));
    assert_ne!(fake["id"], user["id"]);
}

// ----------------------------------------------------------------------------- password grant

#[tokio::test]
async fn password_grant_errors_and_new_session_per_sign_in() {
    let env = Env::start().await;
    let first = env.sign_up("pw@example.com").await;
    env.post(
        "/token?grant_type=password",
        json!({"email": "pw@example.com", "password": "nope-nope"}),
    )
    .await
    .assert_error(400, "invalid_credentials");
    let unknown = env
        .post(
            "/token?grant_type=password",
            json!({"email": "ghost@example.com", "password": PASSWORD}),
        )
        .await;
    unknown.assert_error(400, "invalid_credentials");
    assert_eq!(unknown.json["msg"], "Invalid login credentials");
    let bad_grant = env.post("/token?grant_type=magic", json!({})).await;
    bad_grant.assert_error(400, "invalid_credentials");
    assert_eq!(bad_grant.json["msg"], "unsupported_grant_type");
    env.post("/token", json!({}))
        .await
        .assert_error(400, "invalid_credentials");
    env.post("/token?grant_type=password", json!({"password": PASSWORD}))
        .await
        .assert_error(400, "validation_failed");

    let second = env.sign_in("pw@example.com").await;
    let a = claims(&access(&first))["session_id"].clone();
    let b = claims(&access(&second))["session_id"].clone();
    assert_ne!(a, b, "every sign-in creates a new session");
    assert_eq!(env.sessions(&user_id(&first)).await.len(), 2);
}

// ----------------------------------------------------------------------------- authenticated routes

#[tokio::test]
async fn authenticated_routes_check_signature_expiry_user_and_session() {
    let env = Env::start().await;
    let s = env.sign_up("auth@example.com").await;
    let token = access(&s);
    assert_eq!(
        env.get("/user", Some(&token)).await.assert_ok()["email"],
        "auth@example.com"
    );

    env.get("/user", None)
        .await
        .assert_error(401, "no_authorization");
    env.send(
        Method::GET,
        "/user",
        None,
        None,
        &[("authorization", "Basic abc")],
    )
    .await
    .assert_error(401, "no_authorization");
    env.get("/user", Some("not.a.jwt"))
        .await
        .assert_error(403, "bad_jwt");

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

    // A token without a UUID subject.
    let anon_key = env.emu.anon_key().to_owned();
    env.get("/user", Some(&anon_key))
        .await
        .assert_error(403, "bad_jwt");

    // Expired: no leeway.
    env.advance(3601).await;
    let expired = env.get("/user", Some(&token)).await;
    expired.assert_error(403, "bad_jwt");
    assert!(expired.json["msg"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn revoked_session_deleted_user_and_banned_user() {
    let env = Env::start().await;
    let s = env.sign_up("gone@example.com").await;
    let token = access(&s);
    let id = user_id(&s);

    env.admin(
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "1h"})),
    )
    .await
    .assert_ok();
    env.get("/user", Some(&token))
        .await
        .assert_error(403, "user_banned");
    env.refresh(&refresh_token(&s))
        .await
        .assert_error(400, "user_banned");
    env.post(
        "/token?grant_type=password",
        json!({"email": "gone@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(400, "user_banned");
    env.admin(
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "none"})),
    )
    .await
    .assert_ok();
    env.get("/user", Some(&token)).await.assert_ok();

    env.post_auth("/logout?scope=local", &token, None).await;
    env.get("/user", Some(&token))
        .await
        .assert_error(403, "session_not_found");

    let again = env.sign_in("gone@example.com").await;
    env.admin(Method::DELETE, &format!("/admin/users/{id}"), None)
        .await
        .assert_ok();
    env.get("/user", Some(&access(&again)))
        .await
        .assert_error(403, "user_not_found");
    env.refresh(&refresh_token(&again))
        .await
        .assert_error(400, "refresh_token_not_found");
}

// ----------------------------------------------------------------------------- logout

#[tokio::test]
async fn logout_scopes() {
    let env = Env::start().await;
    let a = env.sign_up("scopes@example.com").await;
    let b = env.sign_in("scopes@example.com").await;
    let c = env.sign_in("scopes@example.com").await;
    let uid = user_id(&a);

    // local: only the caller's session.
    let r = env
        .post_auth("/logout?scope=local", &access(&a), None)
        .await;
    assert_eq!(r.status.as_u16(), 204);
    assert!(r.text.is_empty());
    assert_eq!(env.sessions(&uid).await.len(), 2);
    env.refresh(&refresh_token(&a))
        .await
        .assert_error(400, "refresh_token_not_found");

    // others: everything but the caller's.
    let d = env.sign_in("scopes@example.com").await;
    env.post_auth("/logout?scope=others", &access(&d), None)
        .await;
    let left: Vec<Value> = env.sessions(&uid).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], claims(&access(&d))["session_id"]);
    env.get("/user", Some(&access(&b)))
        .await
        .assert_error(403, "session_not_found");
    env.get("/user", Some(&access(&c)))
        .await
        .assert_error(403, "session_not_found");
    env.get("/user", Some(&access(&d))).await.assert_ok();

    // global is the default.
    env.sign_in("scopes@example.com").await;
    let r = env.post_auth("/logout", &access(&d), None).await;
    assert_eq!(r.status.as_u16(), 204);
    assert!(env.sessions(&uid).await.is_empty());
}

#[tokio::test]
async fn logout_is_not_idempotent_and_checks_its_input() {
    let env = Env::start().await;
    let s = env.sign_up("twice@example.com").await;
    let token = access(&s);
    env.post_auth("/logout?scope=nonsense", &token, None)
        .await
        .assert_error(400, "validation_failed");
    env.send(Method::POST, "/logout", None, None, &[])
        .await
        .assert_error(401, "no_authorization");
    assert_eq!(
        env.post_auth("/logout?scope=global", &token, None)
            .await
            .status
            .as_u16(),
        204
    );
    env.post_auth("/logout?scope=global", &token, None)
        .await
        .assert_error(403, "session_not_found");

    let s = env.sign_in("twice@example.com").await;
    env.advance(3601).await;
    env.post_auth("/logout", &access(&s), None)
        .await
        .assert_error(403, "bad_jwt");
}

// ----------------------------------------------------------------------------- refresh rotation

#[tokio::test]
async fn refresh_rotates_and_reuse_rules() {
    let env = Env::start().await; // reuse interval 10 s
    let s0 = env.sign_up("rotate@example.com").await;
    let t0 = refresh_token(&s0);

    let s1 = env.refresh(&t0).await.assert_ok().clone();
    let t1 = refresh_token(&s1);
    assert_ne!(t0, t1);
    assert_eq!(
        claims(&access(&s1))["session_id"],
        claims(&access(&s0))["session_id"]
    );
    assert_eq!(
        claims(&access(&s1))["amr"],
        claims(&access(&s0))["amr"],
        "refresh adds no amr"
    );

    // The parent of the live token is always answered with the live token.
    let again = env.refresh(&t0).await.assert_ok().clone();
    assert_eq!(refresh_token(&again), t1);

    let s2 = env.refresh(&t1).await.assert_ok().clone();
    let t2 = refresh_token(&s2);

    // t0 is no longer the parent of the live token, but it is within the reuse interval.
    let branch = env.refresh(&t0).await.assert_ok().clone();
    assert_ne!(refresh_token(&branch), t2);

    // Outside the interval, an old token is reuse: 400 and the whole family is revoked.
    env.advance(11).await;
    let s3 = env
        .refresh(&refresh_token(&branch))
        .await
        .assert_ok()
        .clone();
    let t3 = refresh_token(&s3);
    env.refresh(&t1)
        .await
        .assert_error(400, "refresh_token_already_used");
    // GoTrue's quirk, kept on purpose: revoking the family bumps `updated_at`, so a token
    // revoked that way is usable again inside the reuse interval ...
    // (and the child it mints makes it the parent of the live token from then on) ...
    let quirk = env.refresh(&t2).await.assert_ok().clone();
    assert_eq!(
        refresh_token(env.refresh(&t2).await.assert_ok()),
        refresh_token(&quirk)
    );
    // ... while the other revoked tokens are refused once the interval has passed.
    env.advance(11).await;
    env.refresh(&t3)
        .await
        .assert_error(400, "refresh_token_already_used");
    // The session itself survives (legacy algorithm): its access token still works.
    env.get("/user", Some(&access(&s3))).await.assert_ok();
}

#[tokio::test]
async fn refresh_after_logout_and_malformed_tokens() {
    let env = Env::start().await;
    let s = env.sign_up("rt@example.com").await;
    env.post_auth("/logout", &access(&s), None).await;
    let r = env.refresh(&refresh_token(&s)).await;
    r.assert_error(400, "refresh_token_not_found");
    assert_eq!(
        r.json["msg"],
        "Invalid Refresh Token: Refresh Token Not Found"
    );
    env.refresh("short")
        .await
        .assert_error(400, "validation_failed");
    env.refresh("ABCDEFGHIJKL")
        .await
        .assert_error(400, "validation_failed");
    env.refresh("abcdefghijkl")
        .await
        .assert_error(400, "refresh_token_not_found");
    env.post("/token?grant_type=refresh_token", json!({}))
        .await
        .assert_error(400, "validation_failed");
}

#[tokio::test]
async fn concurrent_refreshes_rotate_once_and_never_fail() {
    let env = Env::start().await;
    let s = env.sign_up("race@example.com").await;
    let token = refresh_token(&s);
    let replies = futures_join(&env, &token, 25).await;
    let mut issued = HashSet::new();
    for reply in &replies {
        let body = reply.assert_ok();
        issued.insert(refresh_token(body));
    }
    assert_eq!(
        issued.len(),
        1,
        "all callers get the one rotated token: {issued:?}"
    );
    assert!(!issued.contains(&token));
}

async fn futures_join(env: &Env, token: &str, n: usize) -> Vec<Reply> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let http = env.http.clone();
        let url = env.url("/token?grant_type=refresh_token");
        let body = json!({ "refresh_token": token });
        handles.push(tokio::spawn(async move {
            Reply::read(http.post(url).json(&body).send().await.unwrap()).await
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

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

// ----------------------------------------------------------------------------- error shapes

#[tokio::test]
async fn error_body_follows_the_api_version_header() {
    let env = Env::start().await;
    let body = json!({"email": "x@example.com", "password": "wrong-pass"});
    let old = env.post("/token?grant_type=password", body.clone()).await;
    assert_eq!(
        old.json,
        json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"})
    );
    assert_eq!(old.header("x-sb-error-code"), Some("invalid_credentials"));
    assert_eq!(old.header("x-supabase-api-version"), None);

    let new = env
        .send(
            Method::POST,
            "/token?grant_type=password",
            None,
            Some(body),
            &[("X-Supabase-Api-Version", "2024-01-01")],
        )
        .await;
    assert_eq!(
        new.json,
        json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
    );
    assert_eq!(new.header("x-sb-error-code"), Some("invalid_credentials"));
    assert_eq!(new.header("x-supabase-api-version"), Some("2024-01-01"));

    // Success responses never echo the version.
    let ok = env
        .send(
            Method::GET,
            "/health",
            None,
            None,
            &[("X-Supabase-Api-Version", "2024-01-01")],
        )
        .await;
    assert_eq!(ok.header("x-supabase-api-version"), None);

    // Weak password keeps its reasons in both shapes.
    let weak = env
        .send(
            Method::POST,
            "/signup",
            None,
            Some(json!({"email": "w@example.com", "password": "1"})),
            &[("X-Supabase-Api-Version", "2024-01-01")],
        )
        .await;
    assert_eq!(weak.json["code"], "weak_password");
    assert_eq!(weak.json["weak_password"]["reasons"], json!(["length"]));
}

#[tokio::test]
async fn bad_input_gets_json_errors_never_500() {
    let env = Env::start().await;
    let raw = |body: &'static str| {
        let http = env.http.clone();
        let url = env.url("/signup");
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = raw("{not json").await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("bad_json"))
    );
    let (status, body) = raw(r#"{"email": 5, "password": ["x"]}"#).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("bad_json"))
    );
    let (status, body) = raw("[]").await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("bad_json"))
    );

    let huge = "x".repeat(2 * 1024 * 1024);
    let r = env
        .http
        .post(env.url("/signup"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\":\"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_code"],
        "request_entity_too_large"
    );

    let nf = env.get("/no/such/route", None).await;
    nf.assert_error(404, "not_found");
    let wrong_method = env.send(Method::DELETE, "/token", None, None, &[]).await;
    assert_eq!(wrong_method.status.as_u16(), 405);
    assert!(wrong_method.json["error_code"].is_string());

    // Odd but valid inputs never crash a handler.
    for path in [
        "/verify",
        "/otp",
        "/recover",
        "/resend",
        "/magiclink",
        "/token?grant_type=pkce",
    ] {
        let r = env.post(path, json!({"type": 1, "email": null})).await;
        assert!(
            r.status.is_client_error(),
            "{path}: {} {}",
            r.status,
            r.text
        );
    }
}

// ----------------------------------------------------------------------------- PKCE OAuth

/// Runs the fake provider's page like a browser: authorize → form → callback → app URL.
async fn oauth_to_app(env: &Env, provider: &str, email: &str, challenge: Option<&str>) -> String {
    let mut path = format!(
        "/authorize?provider={provider}&redirect_to={}",
        url::form_urlencoded::byte_serialize(b"tessera://auth/callback").collect::<String>()
    );
    if let Some(c) = challenge {
        path.push_str(&format!("&code_challenge={c}&code_challenge_method=s256"));
    }
    let authorize = env.get(&path, None).await;
    assert_eq!(authorize.status.as_u16(), 302, "{}", authorize.text);
    let page_url = authorize.location();
    let page = env.get(&page_url, None).await;
    assert!(page.text.contains("<form method=\"post\""), "{}", page.text);
    assert!(page.text.contains("name=\"email\""));
    let state = query(&page_url)["state"].clone();
    assert!(
        page.text
            .contains(&format!("name=\"state\" value=\"{state}\""))
    );
    let submit = env
        .http
        .post(&page_url)
        .form(&[
            ("state", state.as_str()),
            ("email", email),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(submit.status().as_u16(), 302);
    let callback_url = submit.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback_url.contains("/callback?"));
    let callback = env.get(&callback_url, None).await;
    assert_eq!(callback.status.as_u16(), 302, "{}", callback.text);
    callback.location()
}

#[tokio::test]
async fn oauth_pkce_sign_in_and_code_rules() {
    let env = Env::start().await;
    let (verifier, challenge) = pkce();
    let app_url = oauth_to_app(&env, "github", "octo@example.com", Some(&challenge)).await;
    assert!(
        app_url.starts_with("tessera://auth/callback?code="),
        "{app_url}"
    );
    let code = query(&app_url)["code"].clone();

    let bad = env
        .post(
            "/token?grant_type=pkce",
            json!({"auth_code": code, "code_verifier": "wrong-verifier"}),
        )
        .await;
    bad.assert_error(400, "bad_code_verifier");

    let s = env
        .post(
            "/token?grant_type=pkce",
            json!({"auth_code": code, "code_verifier": verifier}),
        )
        .await;
    let s = s.assert_ok().clone();
    assert!(s["provider_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(s["user"]["email"], "octo@example.com");
    assert_eq!(s["user"]["app_metadata"]["provider"], "github");
    assert_eq!(s["user"]["identities"][0]["provider"], "github");
    let c = claims(&access(&s));
    assert_eq!(c["amr"][0]["method"], "oauth");
    assert_eq!(c["amr"][0]["provider"], "github");

    // Single use.
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": code, "code_verifier": verifier}),
    )
    .await
    .assert_error(404, "flow_state_not_found");
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": "", "code_verifier": verifier}),
    )
    .await
    .assert_error(400, "validation_failed");

    // The same person signing in again gets the same user.
    let (verifier2, challenge2) = pkce();
    let app_url = oauth_to_app(&env, "github", "octo@example.com", Some(&challenge2)).await;
    let code2 = query(&app_url)["code"].clone();
    let s2 = env
        .post(
            "/token?grant_type=pkce",
            json!({"auth_code": code2, "code_verifier": verifier2}),
        )
        .await;
    assert_eq!(s2.assert_ok()["user"]["id"], s["user"]["id"]);

    // Expired flow.
    let (verifier3, challenge3) = pkce();
    let app_url = oauth_to_app(&env, "google", "late@example.com", Some(&challenge3)).await;
    let code3 = query(&app_url)["code"].clone();
    env.advance(301).await;
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": code3, "code_verifier": verifier3}),
    )
    .await
    .assert_error(422, "flow_state_expired");
}

#[tokio::test]
async fn oauth_implicit_flow_cancel_and_replayed_callback() {
    let env = Env::start().await;
    let app_url = oauth_to_app(&env, "google", "implicit@example.com", None).await;
    let f = fragment(&app_url);
    assert!(app_url.starts_with("tessera://auth/callback#"));
    assert_eq!(f["token_type"], "bearer");
    assert!(f.contains_key("provider_token"));
    env.get("/user", Some(&f["access_token"])).await.assert_ok();

    // Unknown provider.
    env.get("/authorize?provider=myspace", None)
        .await
        .assert_error(400, "validation_failed");
    // Half a PKCE pair.
    env.get("/authorize?provider=github&code_challenge=abc", None)
        .await
        .assert_error(400, "validation_failed");

    // The user cancels at the provider.
    let (_, challenge) = pkce();
    let authorize = env
        .get(&format!("/authorize?provider=github&redirect_to=tessera://auth/callback&code_challenge={challenge}&code_challenge_method=S256"), None)
        .await;
    let page_url = authorize.location();
    let state = query(&page_url)["state"].clone();
    let submit = env
        .http
        .post(&page_url)
        .form(&[("state", state.as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let callback = env
        .get(submit.headers()["location"].to_str().unwrap(), None)
        .await;
    let denied = callback.location();
    assert!(denied.starts_with("tessera://auth/callback?"), "{denied}");
    assert_eq!(query(&denied)["error"], "access_denied");
    assert!(fragment(&denied).contains_key("error_description"));

    // Replaying a finished callback is refused.
    let authorize = env
        .get(&format!("/authorize?provider=github&redirect_to=tessera://auth/callback&code_challenge={challenge}&code_challenge_method=s256"), None)
        .await;
    let page_url = authorize.location();
    let state = query(&page_url)["state"].clone();
    let submit = env
        .http
        .post(&page_url)
        .form(&[("state", state.as_str()), ("email", "replay@example.com")])
        .send()
        .await
        .unwrap();
    let callback_url = submit.headers()["location"].to_str().unwrap().to_owned();
    let first = env.get(&callback_url, None).await;
    assert!(query(&first.location()).contains_key("code"));
    let second = env.get(&callback_url, None).await;
    let loc = second.location();
    assert_eq!(query(&loc)["error_code"], "flow_state_already_used");
}

#[tokio::test]
async fn redirect_targets_outside_the_allow_list_fall_back_to_site_url() {
    let env = Env::start().await;
    let authorize = env
        .get(
            "/authorize?provider=github&redirect_to=https://evil.example.com/steal",
            None,
        )
        .await;
    let page_url = authorize.location();
    let state = query(&page_url)["state"].clone();
    let submit = env
        .http
        .post(&page_url)
        .form(&[("state", state.as_str()), ("email", "site@example.com")])
        .send()
        .await
        .unwrap();
    let callback = env
        .get(submit.headers()["location"].to_str().unwrap(), None)
        .await;
    assert!(
        callback.location().starts_with("http://localhost:3000#"),
        "{}",
        callback.location()
    );
}

// ----------------------------------------------------------------------------- email codes and links

#[tokio::test]
async fn magic_link_implicit_code_and_link() {
    let env = Env::start().await;
    env.sign_up("magic@example.com").await;
    let r = env
        .post(
            "/otp?redirect_to=tessera://auth/confirm",
            json!({"email": "magic@example.com"}),
        )
        .await;
    assert_eq!(r.assert_ok(), &json!({}));
    let mail = env.last_mail("magic@example.com").await;
    assert_eq!(mail["type"], "magiclink");
    let link = mail["action_link"].as_str().unwrap().to_owned();
    assert!(link.starts_with(env.emu.url()));
    assert!(link.contains("type=magiclink"));

    // The link: 303 with the session in the fragment.
    let clicked = env.get(&link, None).await;
    assert_eq!(clicked.status.as_u16(), 303);
    let loc = clicked.location();
    assert!(loc.starts_with("tessera://auth/confirm#"), "{loc}");
    let f = fragment(&loc);
    for key in [
        "access_token",
        "expires_at",
        "expires_in",
        "refresh_token",
        "token_type",
        "type",
        "sb",
    ] {
        assert!(f.contains_key(key), "{key} missing in {loc}");
    }
    assert_eq!(f["type"], "magiclink");
    env.get("/user", Some(&f["access_token"])).await.assert_ok();

    // Used links fail, as a redirect with the error.
    let again = env.get(&link, None).await;
    assert_eq!(again.status.as_u16(), 303);
    assert_eq!(fragment(&again.location())["error_code"], "otp_expired");

    // The code from a fresh mail.
    env.post("/otp", json!({"email": "magic@example.com"}))
        .await
        .assert_ok();
    let mail = env.last_mail("magic@example.com").await;
    let s = env
        .post(
            "/verify",
            json!({"type": "email", "email": "magic@example.com", "token": mail["otp"]}),
        )
        .await;
    s.assert_ok();
    let reused = env
        .post(
            "/verify",
            json!({"type": "email", "email": "magic@example.com", "token": mail["otp"]}),
        )
        .await;
    reused.assert_error(403, "otp_expired");

    // The token hash from a fresh mail.
    env.post("/otp", json!({"email": "magic@example.com"}))
        .await
        .assert_ok();
    let mail = env.last_mail("magic@example.com").await;
    env.post("/verify", json!({"type": "magiclink", "token_hash": mail["token_hash"], "email": "magic@example.com"}))
        .await
        .assert_error(400, "validation_failed");
    let s = env
        .post(
            "/verify",
            json!({"type": "magiclink", "token_hash": mail["token_hash"]}),
        )
        .await;
    assert_eq!(claims(&access(s.assert_ok()))["amr"][0]["method"], "otp");
}

#[tokio::test]
async fn otp_creates_users_unless_told_not_to() {
    let env = Env::start().await;
    env.post(
        "/otp",
        json!({"email": "nobody@example.com", "create_user": false}),
    )
    .await
    .assert_error(422, "otp_disabled");
    env.post("/otp", json!({"email": "newbie@example.com"}))
        .await
        .assert_ok();
    let mail = env.last_mail("newbie@example.com").await;
    let s = env
        .post(
            "/verify",
            json!({"type": "email", "email": "newbie@example.com", "token": mail["otp"]}),
        )
        .await;
    assert_eq!(s.assert_ok()["user"]["email"], "newbie@example.com");
    env.post("/otp", json!({}))
        .await
        .assert_error(400, "validation_failed");

    // Without autoconfirm a new address gets the signup mail, which doubles as the link.
    let confirm = Env::with(Config {
        autoconfirm: false,
        ..Config::for_tests()
    })
    .await;
    confirm
        .post("/otp", json!({"email": "fresh@example.com"}))
        .await
        .assert_ok();
    let mail = confirm.last_mail("fresh@example.com").await;
    assert_eq!(mail["type"], "signup");
    let s = confirm
        .post(
            "/verify",
            json!({"type": "email", "email": "fresh@example.com", "token": mail["otp"]}),
        )
        .await;
    s.assert_ok();
}

#[tokio::test]
async fn magic_link_with_pkce() {
    let env = Env::start().await;
    env.sign_up("pkcemail@example.com").await;
    let (verifier, challenge) = pkce();
    env.post(
        "/otp?redirect_to=tessera://auth/callback",
        json!({"email": "pkcemail@example.com", "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await
    .assert_ok();
    let mail = env.last_mail("pkcemail@example.com").await;
    assert!(mail["token_hash"].as_str().unwrap().starts_with("pkce_"));
    let clicked = env.get(mail["action_link"].as_str().unwrap(), None).await;
    assert_eq!(clicked.status.as_u16(), 303);
    let loc = clicked.location();
    assert!(loc.starts_with("tessera://auth/callback?code="), "{loc}");
    let code = query(&loc)["code"].clone();
    let s = env
        .post(
            "/token?grant_type=pkce",
            json!({"auth_code": code, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(
        claims(&access(s.assert_ok()))["amr"][0]["method"],
        "magiclink"
    );

    // A broken PKCE link reports the error in the query too.
    let broken = env
        .get(
            "/verify?token=pkce_deadbeef&type=magiclink&redirect_to=tessera://auth/callback",
            None,
        )
        .await;
    let loc = broken.location();
    assert_eq!(query(&loc)["error_code"], "otp_expired");
    assert_eq!(fragment(&loc)["error_code"], "otp_expired");
}

#[tokio::test]
async fn emailed_codes_expire() {
    let env = Env::with(Config {
        otp_exp: Duration::from_secs(60),
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

#[tokio::test]
async fn recover_and_resend() {
    let env = Env::start().await;
    env.sign_up("lost@example.com").await;
    assert_eq!(
        env.post("/recover", json!({"email": "unknown@example.com"}))
            .await
            .assert_ok(),
        &json!({})
    );
    assert!(env.mails("unknown@example.com").await.is_empty());
    env.post("/recover", json!({"email": "lost@example.com"}))
        .await
        .assert_ok();
    let mail = env.last_mail("lost@example.com").await;
    assert_eq!(mail["type"], "recovery");
    let s = env
        .post(
            "/verify",
            json!({"type": "recovery", "email": "lost@example.com", "token": mail["otp"]}),
        )
        .await;
    let s = s.assert_ok().clone();
    let updated = env
        .send(
            Method::PUT,
            "/user",
            Some(&access(&s)),
            Some(json!({"password": "brand-new-pass"})),
            &[],
        )
        .await;
    updated.assert_ok();
    env.post(
        "/token?grant_type=password",
        json!({"email": "lost@example.com", "password": "brand-new-pass"}),
    )
    .await
    .assert_ok();
    env.post("/recover", json!({}))
        .await
        .assert_error(400, "validation_failed");

    env.post(
        "/resend",
        json!({"type": "bogus", "email": "lost@example.com"}),
    )
    .await
    .assert_error(400, "validation_failed");
    assert_eq!(
        env.post(
            "/resend",
            json!({"type": "signup", "email": "lost@example.com"})
        )
        .await
        .assert_ok(),
        &json!({})
    );

    let confirm = Env::with(Config {
        autoconfirm: false,
        ..Config::for_tests()
    })
    .await;
    confirm
        .post(
            "/signup",
            json!({"email": "again@example.com", "password": PASSWORD}),
        )
        .await
        .assert_ok();
    confirm
        .post(
            "/resend",
            json!({"type": "signup", "email": "again@example.com"}),
        )
        .await
        .assert_ok();
    let mails = confirm.mails("again@example.com").await;
    assert_eq!(mails.len(), 2);
    // Only the newest code works.
    confirm
        .post(
            "/verify",
            json!({"type": "signup", "email": "again@example.com", "token": mails[0]["otp"]}),
        )
        .await
        .assert_error(403, "otp_expired");
    confirm
        .post(
            "/verify",
            json!({"type": "signup", "email": "again@example.com", "token": mails[1]["otp"]}),
        )
        .await
        .assert_ok();
}

// ----------------------------------------------------------------------------- PUT /user

#[tokio::test]
async fn update_user_metadata_and_password() {
    let env = Env::start().await;
    let a = env.sign_up("upd@example.com").await;
    let b = env.sign_in("upd@example.com").await;
    let token = access(&a);
    let put = |body: Value| env.send(Method::PUT, "/user", Some(&token), Some(body), &[]);

    let u = put(json!({"data": {"theme": "dark", "email_verified": null}})).await;
    assert_eq!(u.assert_ok()["user_metadata"], json!({"theme": "dark"}));
    put(json!({"password": PASSWORD}))
        .await
        .assert_error(422, "same_password");
    put(json!({"password": "abc"}))
        .await
        .assert_error(422, "weak_password");
    put(json!({"app_metadata": {"role": "x"}}))
        .await
        .assert_error(403, "not_admin");

    put(json!({"password": "a-different-one"}))
        .await
        .assert_ok();
    // Other sessions ended; this one stays.
    env.get("/user", Some(&access(&b)))
        .await
        .assert_error(403, "session_not_found");
    env.refresh(&refresh_token(&b))
        .await
        .assert_error(400, "refresh_token_not_found");
    env.get("/user", Some(&token)).await.assert_ok();
    env.refresh(&refresh_token(&a)).await.assert_ok();
}

#[tokio::test]
async fn email_change_with_confirmation() {
    // One confirmation from the new address; the secure (two-mail) change is in
    // tests/email_change.rs.
    let env = Env::with(Config {
        autoconfirm: false,
        secure_email_change: false,
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

#[tokio::test]
async fn anonymous_user_becomes_permanent() {
    let env = Env::start().await;
    let s = env.post("/signup", json!({})).await.assert_ok().clone();
    let token = access(&s);
    env.send(
        Method::PUT,
        "/user",
        Some(&token),
        Some(json!({"password": "lonely-pass"})),
        &[],
    )
    .await
    .assert_error(422, "validation_failed");
    let u = env
        .send(
            Method::PUT,
            "/user",
            Some(&token),
            Some(json!({"email": "anon@example.com", "password": "lonely-pass"})),
            &[],
        )
        .await;
    let u = u.assert_ok();
    assert_eq!(u["is_anonymous"], false);
    assert_eq!(u["email"], "anon@example.com");
    env.post(
        "/token?grant_type=password",
        json!({"email": "anon@example.com", "password": "lonely-pass"}),
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn reauthenticate_nonce() {
    let env = Env::start().await;
    let s = env.sign_up("reauth@example.com").await;
    let token = access(&s);
    assert_eq!(
        env.get("/reauthenticate", Some(&token)).await.assert_ok(),
        &json!({})
    );
    let mail = env.last_mail("reauth@example.com").await;
    assert_eq!(mail["type"], "reauthentication");
    env.send(
        Method::PUT,
        "/user",
        Some(&token),
        Some(json!({"password": "next-pass-1", "nonce": "000000"})),
        &[],
    )
    .await
    .assert_error(422, "reauthentication_not_valid");
    env.send(
        Method::PUT,
        "/user",
        Some(&token),
        Some(json!({"password": "next-pass-1", "nonce": mail["otp"]})),
        &[],
    )
    .await
    .assert_ok();
}

// ----------------------------------------------------------------------------- admin

#[tokio::test]
async fn admin_routes_need_a_service_role_bearer() {
    let env = Env::start().await;
    env.get("/admin/users", None)
        .await
        .assert_error(401, "no_authorization");
    env.get("/admin/users", Some(env.emu.anon_key()))
        .await
        .assert_error(403, "not_admin");
    let user = env.sign_up("notadmin@example.com").await;
    env.get("/admin/users", Some(&access(&user)))
        .await
        .assert_error(403, "not_admin");
    // Supabase's well-known local keys work with the default secret.
    env.get("/admin/users", Some(DEMO_SERVICE_ROLE_KEY))
        .await
        .assert_ok();
    env.get("/admin/users", Some(DEMO_ANON_KEY))
        .await
        .assert_error(403, "not_admin");
}

#[tokio::test]
async fn admin_user_crud() {
    let env = Env::start().await;
    let created = env
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"email": "made@example.com", "password": PASSWORD, "email_confirm": true, "user_metadata": {"n": 1}})),
        )
        .await;
    let created = created.assert_ok().clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["email_confirmed_at"].is_string());
    env.admin(
        Method::POST,
        "/admin/users",
        Some(json!({"email": "made@example.com"})),
    )
    .await
    .assert_error(422, "email_exists");

    let list = env
        .admin(Method::GET, "/admin/users?page=1&per_page=10", None)
        .await;
    assert_eq!(list.assert_ok()["users"].as_array().unwrap().len(), 1);
    assert_eq!(list.header("x-total-count"), Some("1"));

    let got = env
        .admin(Method::GET, &format!("/admin/users/{id}"), None)
        .await;
    assert_eq!(got.assert_ok()["user_metadata"]["n"], 1);
    let put = env
        .admin(
            Method::PUT,
            &format!("/admin/users/{id}"),
            Some(json!({"user_metadata": {"n": 2}, "app_metadata": {"plan": "pro"}})),
        )
        .await;
    let put = put.assert_ok();
    assert_eq!(put["user_metadata"]["n"], 2);
    assert_eq!(put["app_metadata"]["plan"], "pro");
    env.sign_in("made@example.com").await;

    env.admin(
        Method::GET,
        &format!("/admin/users/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await
    .assert_error(404, "user_not_found");

    // Soft delete signs the user out everywhere and frees nothing else to sign in with.
    let s = env.sign_in("made@example.com").await;
    env.admin(
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(json!({"should_soft_delete": true})),
    )
    .await
    .assert_ok();
    env.get("/user", Some(&access(&s)))
        .await
        .assert_error(403, "user_not_found");
    env.post(
        "/token?grant_type=password",
        json!({"email": "made@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(400, "invalid_credentials");
}

#[tokio::test]
async fn admin_generate_link() {
    let env = Env::start().await;
    env.sign_up("gl@example.com").await;
    let link = env
        .admin(
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": "magiclink", "email": "gl@example.com"})),
        )
        .await;
    let link = link.assert_ok().clone();
    assert_eq!(link["verification_type"], "magiclink");
    assert_eq!(link["email"], "gl@example.com");
    assert!(
        link["action_link"]
            .as_str()
            .unwrap()
            .contains("/verify?token=")
    );
    assert!(
        env.mails("gl@example.com").await.is_empty(),
        "generate_link sends no mail"
    );
    let s = env
        .post(
            "/verify",
            json!({"type": "magiclink", "token_hash": link["hashed_token"]}),
        )
        .await;
    s.assert_ok();

    let signup = env
        .admin(
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": "signup", "email": "gl2@example.com", "password": PASSWORD})),
        )
        .await;
    let signup = signup.assert_ok();
    let v = env
        .post(
            "/verify",
            json!({"type": "signup", "email": "gl2@example.com", "token": signup["email_otp"]}),
        )
        .await;
    v.assert_ok();
    env.admin(
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "recovery", "email": "none@example.com"})),
    )
    .await
    .assert_error(404, "user_not_found");
    env.admin(
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "weird", "email": "gl@example.com"})),
    )
    .await
    .assert_error(400, "validation_failed");
}

// ----------------------------------------------------------------------------- MFA

fn totp_code(secret: &str, at: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "x".into())
        .unwrap()
        .generate(at)
}

async fn emulator_now(env: &Env) -> u64 {
    env.get("/_emulator/time", None).await.json["now"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn totp_enroll_challenge_verify_unenroll() {
    let env = Env::start().await;
    let a = env.sign_up("mfa@example.com").await;
    let other = env.sign_in("mfa@example.com").await;
    let token = access(&a);

    let enrolled = env
        .post_auth(
            "/factors",
            &token,
            Some(json!({"factor_type": "totp", "friendly_name": "phone"})),
        )
        .await;
    let enrolled = enrolled.assert_ok().clone();
    let factor = enrolled["id"].as_str().unwrap().to_owned();
    assert_eq!(enrolled["type"], "totp");
    assert!(
        enrolled["totp"]["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("<?xml")
            || enrolled["totp"]["qr_code"]
                .as_str()
                .unwrap()
                .contains("<svg")
    );
    assert!(
        enrolled["totp"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let secret = enrolled["totp"]["secret"].as_str().unwrap().to_owned();
    env.post_auth(
        "/factors",
        &token,
        Some(json!({"factor_type": "totp", "friendly_name": "phone"})),
    )
    .await
    .assert_error(422, "mfa_factor_name_conflict");

    let ch = env
        .post_auth(
            &format!("/factors/{factor}/challenge"),
            &token,
            Some(json!({})),
        )
        .await;
    let ch = ch.assert_ok().clone();
    assert_eq!(ch["type"], "totp");
    assert!(ch["expires_at"].is_i64());
    let wrong = env
        .post_auth(
            &format!("/factors/{factor}/verify"),
            &token,
            Some(json!({"challenge_id": ch["id"], "code": "000000"})),
        )
        .await;
    wrong.assert_error(422, "mfa_verification_failed");

    let code = totp_code(&secret, emulator_now(&env).await);
    let s = env
        .post_auth(
            &format!("/factors/{factor}/verify"),
            &token,
            Some(json!({"challenge_id": ch["id"], "code": code})),
        )
        .await;
    let s = s.assert_ok().clone();
    let c = claims(&access(&s));
    assert_eq!(c["aal"], "aal2");
    assert_eq!(c["amr"][0]["method"], "totp");
    assert_eq!(c["session_id"], claims(&token)["session_id"]);
    assert_ne!(
        refresh_token(&s),
        refresh_token(&a),
        "verify issues a new refresh token"
    );
    // The user's other aal1 session is gone; the refreshed aal2 session stays aal2.
    env.get("/user", Some(&access(&other)))
        .await
        .assert_error(403, "session_not_found");
    let refreshed = env.refresh(&refresh_token(&s)).await.assert_ok().clone();
    assert_eq!(claims(&access(&refreshed))["aal"], "aal2");
    let user = env.get("/user", Some(&access(&refreshed))).await;
    assert_eq!(user.assert_ok()["factors"][0]["status"], "verified");

    // A fresh aal1 sign-in may not remove a verified factor or enroll another.
    let weak = env.sign_in("mfa@example.com").await;
    env.send(
        Method::DELETE,
        &format!("/factors/{factor}"),
        Some(&access(&weak)),
        None,
        &[],
    )
    .await
    .assert_error(422, "insufficient_aal");
    env.post_auth(
        "/factors",
        &access(&weak),
        Some(json!({"factor_type": "totp"})),
    )
    .await
    .assert_error(403, "insufficient_aal");
    env.send(
        Method::PUT,
        "/user",
        Some(&access(&weak)),
        Some(json!({"password": "changed-pass"})),
        &[],
    )
    .await
    .assert_error(401, "insufficient_aal");
    let gone = env
        .send(
            Method::DELETE,
            &format!("/factors/{factor}"),
            Some(&access(&refreshed)),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.assert_ok()["id"], factor);

    // Anonymous users cannot enroll.
    let anon = env.post("/signup", json!({})).await.assert_ok().clone();
    env.post_auth(
        "/factors",
        &access(&anon),
        Some(json!({"factor_type": "totp"})),
    )
    .await
    .assert_error(403, "no_authorization");
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

// ------------------------------------------------------------------ PostgREST RPC (Your devices)

#[tokio::test]
async fn rpc_lists_and_revokes_only_the_callers_sessions() {
    let env = Env::start().await;
    let laptop = env.sign_up("devices@example.com").await;
    let phone = env.sign_in("devices@example.com").await;
    let other = env.sign_up("someone-else@example.com").await;
    let list = |token: String| {
        let env = &env;
        async move {
            env.post_auth(
                "/rest/v1/rpc/tessera_list_sessions",
                &token,
                Some(json!({})),
            )
            .await
        }
    };

    let rows = list(access(&laptop)).await;
    let rows = rows.assert_ok().as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "only this user's sessions: {rows:?}");
    let laptop_sid = claims(&access(&laptop))["session_id"].clone();
    let phone_sid = claims(&access(&phone))["session_id"].clone();
    let current: Vec<_> = rows.iter().filter(|r| r["is_current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop_sid);
    for key in [
        "created_at",
        "updated_at",
        "refreshed_at",
        "user_agent",
        "ip",
        "aal",
    ] {
        assert!(rows[0].get(key).is_some(), "{key} in {:?}", rows[0]);
    }
    assert!(rows[0]["created_at"].as_str().unwrap().ends_with("+00:00"));

    // Someone else's session cannot be revoked (false), and stays.
    let other_sid = claims(&access(&other))["session_id"].clone();
    let r = env
        .post_auth(
            "/rest/v1/rpc/tessera_revoke_session",
            &access(&laptop),
            Some(json!({"session_id": other_sid})),
        )
        .await;
    assert_eq!(r.assert_ok(), &json!(false));
    env.get("/user", Some(&access(&other))).await.assert_ok();

    // One's own other device: true, and that session is gone for GoTrue at once.
    let r = env
        .post_auth(
            "/rest/v1/rpc/tessera_revoke_session",
            &access(&laptop),
            Some(json!({"session_id": phone_sid})),
        )
        .await;
    assert_eq!(r.assert_ok(), &json!(true));
    env.get("/user", Some(&access(&phone)))
        .await
        .assert_error(403, "session_not_found");
    env.refresh(&refresh_token(&phone))
        .await
        .assert_error(400, "refresh_token_not_found");
    assert_eq!(
        list(access(&laptop)).await.json.as_array().unwrap().len(),
        1
    );

    // PostgREST checks only the JWT: the revoked phone's token still lists (nothing current).
    let rows = list(access(&phone)).await;
    let rows = rows.assert_ok().as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["is_current"], false);
}

#[tokio::test]
async fn rpc_refuses_like_postgrest() {
    let env = Env::start().await;
    let s = env.sign_up("rpc-errors@example.com").await;
    let pg = |r: &Reply, status: u16, code: &str| {
        assert_eq!(r.status.as_u16(), status, "{}", r.text);
        assert_eq!(r.json["code"], code, "{}", r.text);
        assert!(r.json["message"].is_string() && r.json.get("hint").is_some());
    };
    let anon = env.emu.anon_key().to_owned();
    let r = env
        .post_auth("/rest/v1/rpc/tessera_list_sessions", &anon, Some(json!({})))
        .await;
    pg(&r, 401, "42501");
    let r = env
        .post_auth(
            "/rest/v1/rpc/tessera_revoke_session",
            &access(&s),
            Some(json!({"session_id": "not-a-uuid"})),
        )
        .await;
    pg(&r, 400, "22P02");
    let r = env
        .post_auth("/rest/v1/rpc/tessera_nothing", &access(&s), Some(json!({})))
        .await;
    pg(&r, 404, "PGRST202");
    let r = env
        .post_auth(
            "/rest/v1/rpc/tessera_revoke_session",
            &access(&s),
            Some(json!({})),
        )
        .await;
    pg(&r, 404, "PGRST202");
    let r = env
        .post_auth(
            "/rest/v1/rpc/tessera_list_sessions",
            "not.a.jwt",
            Some(json!({})),
        )
        .await;
    pg(&r, 401, "PGRST301");
    let no_key = reqwest::Client::new()
        .post(env.url("/rest/v1/rpc/tessera_list_sessions"))
        .bearer_auth(access(&s))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status().as_u16(), 401);
    env.advance(7200).await;
    let r = env
        .post_auth(
            "/rest/v1/rpc/tessera_list_sessions",
            &access(&s),
            Some(json!({})),
        )
        .await;
    pg(&r, 401, "PGRST303");
}
