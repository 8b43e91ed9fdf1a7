//! The Edge Function (`/functions/v1/whoami`) and Storage (`/storage/v1/object/…`)
//! stand-ins a data proxy talks to: JWT checks as the real services make them, owner-only
//! objects, byte ranges; and PostgREST's RPC for Tessera's "Your devices" functions.
//! (Their absence in embedded mode is in `embedded.rs`.)
#![allow(clippy::unwrap_used)]

mod support;

use gotrue_emulator::Config;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// A token with `claims`, signed HS256 with `secret`.
fn forge(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn whoami(env: &Env, method: Method, bearer: Option<&str>) -> Reply {
    env.send(
        method,
        "/functions/v1/whoami",
        bearer,
        Some(json!({"x": 1})),
        &[],
    )
    .await
}

async fn function_calls(env: &Env) -> Value {
    env.get("/_emulator/stats", None).await.json["function_calls"].clone()
}

#[tokio::test]
async fn whoami_answers_the_verified_claims() {
    let env = Env::start().await;
    let s = env.sign_up("whoami@example.com").await;
    let token = access(&s);
    let reply = whoami(&env, Method::POST, Some(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["method"], "POST");
    assert_eq!(reply.json["claims"], claims(&token));
    assert_eq!(reply.json["claims"]["role"], "authenticated");
    let reply = whoami(&env, Method::GET, Some(env.emu.anon_key())).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["method"], "GET");
    assert_eq!(reply.json["claims"]["role"], "anon");
    assert_eq!(function_calls(&env).await, 2);
}

#[tokio::test]
async fn whoami_refuses_like_the_functions_gateway() {
    let env = Env::start().await;
    let s = env.sign_up("whoami-no@example.com").await;
    let token = access(&s);
    // No API key: the gateway's answer.
    let reply = Reply::read(
        env.http
            .get(env.url("/functions/v1/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["message"], "No API key found in request");
    // No bearer, a forged token, a token without a role.
    let reply = whoami(&env, Method::GET, None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json,
        json!({"code": 401, "message": "Missing authorization header"})
    );
    let mut forged_claims = claims(&token);
    let forged = forge("another-secret-another-secret-another", &forged_claims);
    let reply = whoami(&env, Method::GET, Some(&forged)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json, json!({"code": 401, "message": "Invalid JWT"}));
    forged_claims.as_object_mut().unwrap().remove("role");
    let roleless = forge(gotrue_emulator::DEFAULT_JWT_SECRET, &forged_claims);
    let reply = whoami(&env, Method::GET, Some(&roleless)).await;
    assert_eq!(reply.json, json!({"code": 401, "message": "Invalid JWT"}));
    // Expired on the emulator's clock: says so, for the proxy's refresh-and-retry.
    let ttl = claims(&token)["exp"].as_i64().unwrap() - claims(&token)["iat"].as_i64().unwrap();
    env.advance(ttl + 1).await;
    let reply = whoami(&env, Method::POST, Some(&token)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json, json!({"code": 401, "message": "JWT expired"}));
    assert!(reply.text.contains("JWT expired"));
    assert_eq!(function_calls(&env).await, 0);
}

/// Supabase's new keys are not JWTs. The gateway swaps `Bearer sb_publishable_…` for the
/// anon JWT on REST, Storage and GraphQL, not on Edge Functions: behind `verify_jwt` it is
/// refused as a malformed JWT (hosted: supabase/supabase#45993), and a function meant for
/// signed-out callers turns `verify_jwt` off and reads `apikey` itself.
#[tokio::test]
async fn a_publishable_key_is_an_api_key_not_a_bearer() {
    let env = Env::start().await;
    let key = env.emu.publishable_key().unwrap().to_owned();
    let reply = whoami(&env, Method::GET, Some(&key)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json,
        json!({"code": "UNAUTHORIZED_INVALID_JWT_FORMAT", "message": "Invalid JWT"})
    );
    let hello = |apikey: &str| {
        env.http
            .post(env.url("/functions/v1/hello"))
            .header("apikey", apikey)
            .send()
    };
    let reply = Reply::read(hello(&key).await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json, json!({"hello": "anon"}));
    let reply = Reply::read(hello("sb_publishable_not-this-projects").await.unwrap()).await;
    assert_eq!(reply.status, 401);
    // REST with the key in `apikey` only, or as the bearer too: the anon role.
    for bearer in [None, Some(key.as_str())] {
        let mut req = env
            .http
            .post(env.url("/rest/v1/rpc/tessera_list_sessions"))
            .header("apikey", &key)
            .json(&json!({}));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let reply = Reply::read(req.send().await.unwrap()).await;
        assert_eq!(reply.json["code"], "42501", "{}", reply.text);
    }
}

#[tokio::test]
async fn whoami_verifies_es256_tokens() {
    let env = Env::with(Config::for_tests_es256()).await;
    let s = env.sign_up("whoami-es@example.com").await;
    let reply = whoami(&env, Method::GET, Some(&access(&s))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["claims"]["sub"], user_id(&s));
}

const OBJECT: &str = "/storage/v1/object/files/me/blob.bin";

/// A raw request with the API key, `bearer` and `headers`, `body` as bytes.
async fn raw(
    env: &Env,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> reqwest::Response {
    let mut req = env
        .http
        .request(method, env.url(path))
        .header("apikey", env.emu.anon_key());
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    req.send().await.unwrap()
}

async fn upload(env: &Env, method: Method, token: &str, upsert: bool, body: Vec<u8>) -> Reply {
    let mut headers = vec![("content-type", "application/x-tessera")];
    if upsert {
        headers.push(("x-upsert", "true"));
    }
    Reply::read(raw(env, method, OBJECT, Some(token), &headers, Some(body)).await).await
}

/// Status, headers and bytes of a download.
async fn download(
    env: &Env,
    path: &str,
    token: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let headers: Vec<(&str, &str)> = range.iter().map(|r| ("range", *r)).collect();
    let resp = raw(env, Method::GET, path, Some(token), &headers, None).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn storage_round_trips_bytes_and_ranges() {
    let env = Env::start().await;
    let token = access(&env.sign_up("files@example.com").await);
    let bytes: Vec<u8> = (0..=255u8).collect();
    let reply = upload(&env, Method::POST, &token, false, bytes.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["Key"], "files/me/blob.bin");
    assert!(uuid::Uuid::parse_str(reply.json["Id"].as_str().unwrap()).is_ok());
    for path in [OBJECT, "/storage/v1/object/authenticated/files/me/blob.bin"] {
        let (status, headers, body) = download(&env, path, &token, None).await;
        assert_eq!(status, 200);
        assert_eq!(body, bytes);
        assert_eq!(headers["content-type"], "application/x-tessera");
        assert_eq!(headers["accept-ranges"], "bytes");
    }
    for (range, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=250-", 250, 255),
        ("bytes=-4", 252, 255),
        ("bytes=200-999", 200, 255),
    ] {
        let (status, headers, body) = download(&env, OBJECT, &token, Some(range)).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(body, bytes[first..=last], "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {first}-{last}/256").as_str()
        );
        assert_eq!(headers["accept-ranges"], "bytes");
    }
    let (status, headers, _) = download(&env, OBJECT, &token, Some("bytes=256-")).await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */256");
    // Create again: Storage's duplicate answer; with x-upsert (or PUT) it replaces.
    let reply = upload(&env, Method::POST, &token, false, b"again".to_vec()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json,
        json!({"statusCode": "409", "error": "Duplicate", "message": "The resource already exists"})
    );
    let reply = upload(&env, Method::POST, &token, true, b"upserted".to_vec()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(download(&env, OBJECT, &token, None).await.2, b"upserted");
    let reply = upload(&env, Method::PUT, &token, false, b"updated".to_vec()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(download(&env, OBJECT, &token, None).await.2, b"updated");
    // Remove.
    let reply = env
        .send(
            Method::DELETE,
            "/storage/v1/object/files",
            Some(&token),
            Some(json!({"prefixes": ["me/blob.bin", "me/none"]})),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json.as_array().unwrap().len(), 1);
    assert_eq!(reply.json[0]["name"], "me/blob.bin");
    assert_eq!(reply.json[0]["metadata"]["size"], 7);
    let (status, _, body) = download(&env, OBJECT, &token, None).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"statusCode": "404", "error": "not_found", "message": "Object not found"})
    );
    let stats = env.get("/_emulator/stats", None).await.json;
    assert!(stats["storage_requests"].as_u64().unwrap() >= 10);
}

#[tokio::test]
async fn storage_is_owner_only() {
    let env = Env::start().await;
    let owner = access(&env.sign_up("owner@example.com").await);
    let other = access(&env.sign_up("other@example.com").await);
    let anon = env.emu.anon_key().to_owned();
    upload(&env, Method::POST, &owner, false, b"mine".to_vec())
        .await
        .assert_ok();
    // Another user, or the anon key, cannot see it; the owner's expired token says so.
    for token in [&other, &anon] {
        let (status, _, body) = download(&env, OBJECT, token, None).await;
        assert_eq!(status, 400);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["statusCode"], "404");
    }
    let rls = json!({"statusCode": "403", "error": "Unauthorized",
                     "message": "new row violates row-level security policy"});
    // Neither can overwrite it, and anon cannot write at all.
    let reply = upload(&env, Method::PUT, &other, false, b"theirs".to_vec()).await;
    assert_eq!((reply.status.as_u16(), &reply.json), (403, &rls));
    let reply = Reply::read(
        raw(
            &env,
            Method::POST,
            "/storage/v1/object/files/anon.txt",
            Some(&anon),
            &[],
            Some(b"x".to_vec()),
        )
        .await,
    )
    .await;
    assert_eq!((reply.status.as_u16(), &reply.json), (403, &rls));
    // Another user deleting it removes nothing.
    let reply = env
        .send(
            Method::DELETE,
            "/storage/v1/object/files",
            Some(&other),
            Some(json!({"prefixes": ["me/blob.bin"]})),
            &[],
        )
        .await;
    assert_eq!(reply.json, json!([]));
    assert_eq!(download(&env, OBJECT, &owner, None).await.2, b"mine");
    // Forged and expired tokens.
    let forged = forge("another-secret-another-secret-another", &claims(&owner));
    let reply = upload(&env, Method::PUT, &forged, false, b"x".to_vec()).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["error"], "InvalidJWT");
    env.advance(3601).await;
    let (status, _, body) = download(&env, OBJECT, &owner, None).await;
    assert_eq!(status, 401);
    assert!(String::from_utf8(body).unwrap().contains("jwt expired"));
}

#[tokio::test]
async fn storage_takes_the_file_part_of_a_form_upload() {
    let env = Env::start().await;
    let token = access(&env.sign_up("form@example.com").await);
    let file: Vec<u8> = (0..=255u8).rev().collect();
    // What storage-js sends for a Blob: cacheControl, then the file under the empty name.
    let mut body = b"--b0undary\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n--b0undary\r\nContent-Disposition: form-data; name=\"\"; filename=\"blob\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--b0undary--\r\n");
    let content_type = ("content-type", "multipart/form-data; boundary=b0undary");
    let resp = raw(
        &env,
        Method::POST,
        OBJECT,
        Some(&token),
        &[content_type],
        Some(body),
    )
    .await;
    Reply::read(resp).await.assert_ok();
    let (status, headers, bytes) = download(&env, OBJECT, &token, None).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, file);
    assert_eq!(headers["content-type"], "image/png");
}

#[tokio::test]
async fn storage_takes_bodies_beyond_the_default_limit() {
    let env = Env::start().await;
    let token = access(&env.sign_up("big@example.com").await);
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    upload(&env, Method::POST, &token, false, big.clone())
        .await
        .assert_ok();
    let (status, _, bytes) = download(&env, OBJECT, &token, None).await;
    assert_eq!(status, 200);
    assert!(bytes == big);
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
