//! Error bodies: their two shapes (by `X-Supabase-Api-Version`), and bad input answered
//! with a JSON error, never a 500.

use reqwest::Method;
use serde_json::json;

use crate::env::Env;

/// Without the version header an error is `{code, error_code, msg}`; with
/// `X-Supabase-Api-Version: 2024-01-01` it is `{code, message}` and the version is echoed.
/// `x-sb-error-code` is always there.
pub async fn error_body_follows_the_api_version_header(env: Env) {
    let body = json!({"email": env.email("x"), "password": "wrong-pass"});
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
            Some(json!({"email": env.email("w"), "password": "1"})),
            &[("X-Supabase-Api-Version", "2024-01-01")],
        )
        .await;
    assert_eq!(weak.json["code"], "weak_password");
    assert_eq!(weak.json["weak_password"]["reasons"], json!(["length"]));
}

/// Broken JSON, wrong types, a body too large and odd values are client errors with a
/// JSON body; an unknown route and a wrong method get the router's bare answers.
pub async fn bad_input_gets_json_errors_never_500(env: Env) {
    let json_type = "application/json";
    for body in ["{not json", r#"{"email": 5, "password": ["x"]}"#, "[]"] {
        let r = env.post_raw("/signup", json_type, body.to_owned()).await;
        assert_eq!(
            (r.status.as_u16(), r.json["error_code"].as_str()),
            (400, Some("bad_json")),
            "{body}: {}",
            r.text
        );
    }

    let huge = "x".repeat(2 * 1024 * 1024);
    let r = env
        .post_raw("/signup", json_type, format!("{{\"email\":\"{huge}\"}}"))
        .await;
    assert_eq!(r.status.as_u16(), 413, "{}", r.text);
    assert_eq!(r.json["error_code"], "request_entity_too_large");

    // The router's own answers are not GoTrue errors: a plain-text 404, a bare 405.
    let nf = env.get("/no/such/route", None).await;
    assert_eq!(nf.status.as_u16(), 404, "{}", nf.text);
    assert_eq!(nf.text, "404 page not found\n");
    assert_eq!(nf.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(nf.header("x-sb-error-code"), None);
    let wrong_method = env.send(Method::DELETE, "/token", None, None, &[]).await;
    assert_eq!(wrong_method.status.as_u16(), 405, "{}", wrong_method.text);
    assert!(wrong_method.text.is_empty(), "{}", wrong_method.text);

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
