//! The admin API: who may call it, users' lifecycle, and generated links.

use reqwest::Method;
use serde_json::json;

use crate::env::{Env, PASSWORD, access};

/// Only a `service_role` bearer may call `/admin/*`: none is 401, the anon key and a
/// user's token are 403 `not_admin`.
pub async fn admin_routes_need_a_service_role_bearer(env: Env) {
    env.get("/admin/users", None)
        .await
        .assert_error(401, "no_authorization");
    env.get("/admin/users", Some(&env.target.anon_key))
        .await
        .assert_error(403, "not_admin");
    let user = env.sign_up(&env.email("notadmin")).await;
    env.get("/admin/users", Some(&access(&user)))
        .await
        .assert_error(403, "not_admin");
    env.get("/admin/users", Some(&env.target.service_role_key))
        .await
        .assert_ok();
}

/// Create (a taken address is refused), list (filtered by address), read, update, and a
/// soft delete that signs the user out everywhere.
pub async fn admin_user_crud(env: Env) {
    let email = env.email("made");
    let created = env
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"email": email, "password": PASSWORD, "email_confirm": true, "user_metadata": {"n": 1}})),
        )
        .await;
    let created = created.assert_ok().clone();
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(created["email_confirmed_at"].is_string());
    assert!(created.get("confirmed_at").is_none(), "{created}");
    assert_eq!(
        created["user_metadata"],
        json!({"n": 1, "email_verified": true})
    );
    env.admin(
        Method::POST,
        "/admin/users",
        Some(json!({ "email": email })),
    )
    .await
    .assert_error(422, "email_exists");

    let list = env
        .admin(
            Method::GET,
            &format!("/admin/users?page=1&per_page=10&filter={email}"),
            None,
        )
        .await;
    let users = list.assert_ok()["users"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(users.len(), 1, "{}", list.text);
    assert_eq!(users[0]["id"], id);
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
    env.sign_in(&email).await;

    env.admin(
        Method::GET,
        &format!("/admin/users/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await
    .assert_error(404, "user_not_found");

    // Soft delete signs the user out everywhere and frees nothing else to sign in with.
    let s = env.sign_in(&email).await;
    env.admin(
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(json!({"should_soft_delete": true})),
    )
    .await
    .assert_ok();
    // The user is still found by id; its sessions are gone.
    env.get("/user", Some(&access(&s)))
        .await
        .assert_error(403, "session_not_found");
    env.post(
        "/token?grant_type=password",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .assert_error(400, "invalid_credentials");
}

/// `generate_link` answers with the link and its parts, and sends no mail; its token hash
/// and code verify; an unknown user or type is refused.
pub async fn admin_generate_link(env: Env) {
    let email = env.email("gl");
    env.sign_up(&email).await;
    let link = env
        .admin(
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": "magiclink", "email": email})),
        )
        .await;
    let link = link.assert_ok().clone();
    assert_eq!(link["verification_type"], "magiclink");
    assert_eq!(link["email"], email);
    assert!(
        link["action_link"]
            .as_str()
            .unwrap_or_default()
            .contains("/verify?token="),
        "{link}"
    );
    assert!(
        env.mails(&email).await.is_empty(),
        "generate_link sends no mail"
    );
    env.post(
        "/verify",
        json!({"type": "magiclink", "token_hash": link["hashed_token"]}),
    )
    .await
    .assert_ok();

    let email2 = env.email("gl2");
    let signup = env
        .admin(
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": "signup", "email": email2, "password": PASSWORD})),
        )
        .await;
    let signup = signup.assert_ok();
    env.post(
        "/verify",
        json!({"type": "signup", "email": email2, "token": signup["email_otp"]}),
    )
    .await
    .assert_ok();
    env.admin(
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "recovery", "email": env.email("none")})),
    )
    .await
    .assert_error(404, "user_not_found");
    env.admin(
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "weird", "email": email})),
    )
    .await
    .assert_error(400, "validation_failed");
}
