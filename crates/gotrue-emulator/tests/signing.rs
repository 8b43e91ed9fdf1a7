//! Signing keys: ES256 access tokens with a published JWKS (GoTrue's `GOTRUE_JWT_KEYS`).
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
