//! Signing keys and API keys: ES256 access tokens with a published JWKS (GoTrue's
//! `GOTRUE_JWT_KEYS`), and Supabase's non-JWT publishable and secret keys.
#![allow(clippy::unwrap_used)]

mod support;

use gotrue_emulator::{Config, DEFAULT_JWT_SECRET, Es256Key, JwtSigning};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// Verifies `token` against the JWKS the server serves, as a resource server would.
fn verify_with_jwks(jwks: &Value, token: &str) -> Value {
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = set.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["authenticated"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn es256_tokens_verify_against_the_served_jwks() {
    let env = Env::with(Config::for_tests_es256()).await;
    let jwks = env.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=600"));
    let keys = jwks.assert_ok()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["key_ops"], json!(["verify"]));
    assert!(jwk["x"].is_string() && jwk["y"].is_string());
    assert!(jwk.get("d").is_none(), "the private part is never served");
    assert_eq!(jwk["kid"].as_str(), env.emu.signing_kid());
    // The same set under the gateway prefix, and through the handle.
    let prefixed = env.get("/auth/v1/.well-known/jwks.json", None).await;
    assert_eq!(prefixed.assert_ok(), jwks.assert_ok());
    assert_eq!(&env.emu.jwks(), jwks.assert_ok());

    let session = env.sign_up("es256@example.com").await;
    let token = access(&session);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let claims = verify_with_jwks(jwks.assert_ok(), &token);
    assert_eq!(claims["sub"], user_id(&session));
    assert_eq!(claims["aal"], "aal1");

    // The server verifies its own tokens with the key: user, refresh, factors, logout.
    let me = env.get("/user", Some(&token)).await;
    assert_eq!(me.assert_ok()["email"], "es256@example.com");
    let refreshed = env.refresh(&refresh_token(&session)).await;
    let token = access(refreshed.assert_ok());
    verify_with_jwks(jwks.assert_ok(), &token);
    let factor = env
        .post_auth("/factors", &token, Some(json!({"factor_type": "totp"})))
        .await;
    factor.assert_ok();
    env.post_auth("/logout", &token, None).await.assert_ok();
    env.get("/user", Some(&token))
        .await
        .assert_error(403, "session_not_found");
}

#[tokio::test]
async fn es256_mode_refuses_hs256_and_foreign_tokens_as_bad_jwt() {
    let env = Env::with(Config::for_tests_es256()).await;
    let session = env.sign_up("forged@example.com").await;
    let claims = claims(&access(&session));

    // Same claims, signed HS256 with the very JWT secret the server holds.
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(DEFAULT_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let refused = env.get("/user", Some(&hs256)).await;
    refused.assert_error(403, "bad_jwt");
    assert!(refused.json["msg"].as_str().unwrap().contains("HS256"));
    env.post_auth("/logout", &hs256, None)
        .await
        .assert_error(403, "bad_jwt");

    // Same claims, ES256 under the server's kid but another key.
    let other = Es256Key::generate();
    let mut jwk = other.private_jwk();
    jwk["kid"] = json!(env.emu.signing_kid().unwrap());
    let impostor = Env::with(Config {
        jwt_signing: JwtSigning::Es256(Some(Es256Key::from_jwk(&jwk).unwrap())),
        ..Config::for_tests()
    })
    .await;
    let foreign = impostor.sign_up("forged@example.com").await;
    env.get("/user", Some(&access(&foreign)))
        .await
        .assert_error(403, "bad_jwt");

    // Another server's key and kid.
    let stranger = Env::with(Config::for_tests_es256()).await;
    let unknown_kid = access(&stranger.sign_up("forged@example.com").await);
    assert_ne!(
        jsonwebtoken::decode_header(&unknown_kid)
            .unwrap()
            .kid
            .as_deref(),
        env.emu.signing_kid()
    );
    env.get("/user", Some(&unknown_kid))
        .await
        .assert_error(403, "bad_jwt");

    // The HS256 API keys still work: the admin API takes the service_role key.
    let users = env.admin(Method::GET, "/admin/users", None).await;
    assert!(users.assert_ok()["users"].is_array());
}

/// A request with Supabase's new keys, as supabase-js sends them: the key as `apikey` and,
/// with no session, as the bearer too.
async fn with_key(
    env: &Env,
    key: &str,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = env
        .http
        .request(method, env.url(path))
        .header("apikey", key)
        .bearer_auth(bearer.unwrap_or(key));
    if let Some(body) = body {
        req = req.json(&body);
    }
    Reply::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_publishable_key_is_the_anonymous_caller() {
    let env = Env::with(Config {
        publishable_key: Some("sb_publishable_test-key-of-this-server".into()),
        ..Config::for_tests()
    })
    .await;
    let key = env.emu.publishable_key().unwrap().to_owned();
    assert_eq!(key, "sb_publishable_test-key-of-this-server");
    let credentials = json!({"email": "pk@example.com", "password": PASSWORD});
    let signed_up = with_key(
        &env,
        &key,
        Method::POST,
        "/signup",
        None,
        Some(credentials.clone()),
    )
    .await;
    let signed_up = signed_up.assert_ok().clone();
    let signed_in = with_key(
        &env,
        &key,
        Method::POST,
        "/token?grant_type=password",
        None,
        Some(credentials),
    )
    .await;
    let signed_in = signed_in.assert_ok().clone();
    let refreshed = with_key(
        &env,
        &key,
        Method::POST,
        "/token?grant_type=refresh_token",
        None,
        Some(json!({"refresh_token": refresh_token(&signed_in)})),
    )
    .await;
    refreshed.assert_ok();
    // With a session, the user's token is the bearer and the key stays the apikey.
    let me = with_key(
        &env,
        &key,
        Method::GET,
        "/user",
        Some(&access(&signed_up)),
        None,
    )
    .await;
    assert_eq!(me.assert_ok()["email"], "pk@example.com");

    // As a bearer the key is "anon", never a user: GoTrue's answer to the anon JWT.
    let anon = with_key(&env, &key, Method::GET, "/user", None, None).await;
    anon.assert_error(403, "bad_jwt");
    assert_eq!(anon.json["msg"], "invalid claim: missing sub claim");
    with_key(&env, &key, Method::POST, "/logout", None, None)
        .await
        .assert_error(403, "bad_jwt");
    with_key(&env, &key, Method::GET, "/admin/users", None, None)
        .await
        .assert_error(403, "not_admin");
    // A key that is only like it is a bad JWT.
    let near = format!("{key}x");
    env.get("/user", Some(&near))
        .await
        .assert_error(403, "bad_jwt");
}

#[tokio::test]
async fn a_secret_key_opens_the_admin_api_and_the_demo_keys_are_defaults() {
    let env = Env::start().await;
    assert_eq!(
        env.emu.publishable_key(),
        Some(gotrue_emulator::DEMO_PUBLISHABLE_KEY)
    );
    let secret = env.emu.secret_key().unwrap().to_owned();
    assert_eq!(secret, gotrue_emulator::DEMO_SECRET_KEY);
    let users = with_key(&env, &secret, Method::GET, "/admin/users", None, None).await;
    assert!(users.assert_ok()["users"].is_array());
    let created = with_key(
        &env,
        &secret,
        Method::POST,
        "/admin/users",
        None,
        Some(json!({"email": "made@example.com", "password": PASSWORD, "email_confirm": true})),
    )
    .await;
    assert_eq!(created.assert_ok()["email"], "made@example.com");

    // Without keys configured, they are bad JWTs like any other string.
    let none = Env::with(Config {
        publishable_key: None,
        secret_key: None,
        ..Config::for_tests()
    })
    .await;
    with_key(&none, &secret, Method::GET, "/admin/users", None, None)
        .await
        .assert_error(403, "bad_jwt");

    // A key without its prefix is refused at start.
    for config in [
        Config {
            publishable_key: Some(none.emu.anon_key().to_owned()),
            ..Config::for_tests()
        },
        Config {
            secret_key: Some("sb_publishable_not-a-secret-key-at-all".into()),
            ..Config::for_tests()
        },
    ] {
        assert!(gotrue_emulator::Emulator::start(config).await.is_err());
    }
}
