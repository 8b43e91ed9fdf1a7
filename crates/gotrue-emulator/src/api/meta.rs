//! `GET /health`, `GET /settings`, `GET /.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::config::OAUTH_PROVIDERS;

pub async fn health() -> Json<Value> {
    Json(json!({
        "version": concat!("gotrue-emulator-", env!("CARGO_PKG_VERSION")),
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    }))
}

/// The names GoTrue lists under `external`; those the fake provider serves are `true`.
const EXTERNAL: &[&str] = &[
    "apple",
    "azure",
    "bitbucket",
    "discord",
    "facebook",
    "snapchat",
    "figma",
    "fly",
    "github",
    "gitlab",
    "google",
    "keycloak",
    "kakao",
    "linkedin",
    "linkedin_oidc",
    "notion",
    "spotify",
    "slack",
    "slack_oidc",
    "workos",
    "twitch",
    "twitter",
    "zoom",
];

pub async fn settings(State(state): State<AppState>) -> Json<Value> {
    let mut external = Map::new();
    external.insert(
        "anonymous_users".into(),
        json!(state.config.anonymous_users),
    );
    for name in EXTERNAL {
        external.insert(
            (*name).into(),
            json!(!state.config.is_embedded() && OAUTH_PROVIDERS.contains(name)),
        );
    }
    external.insert("email".into(), json!(true));
    external.insert("phone".into(), json!(false));
    Json(json!({
        "external": external,
        "disable_signup": state.config.disable_signup,
        "mailer_autoconfirm": state.config.autoconfirm,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
        "saml_private_key_next_configured": false,
        "passkeys_enabled": false,
    }))
}

/// The public signing keys: HS256 keys are symmetric and never published, so in HS256
/// mode the set is empty — as GoTrue's; in ES256 mode it holds the P-256 key.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=600"),
    );
    response
}
