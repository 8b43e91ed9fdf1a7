//! The server's description of itself: health, settings and its signing keys.

use serde_json::json;

use crate::env::Env;

/// `/health` names GoTrue, `/settings` lists the enabled providers and the sign-up rules,
/// and an HS256 server publishes no keys (cached for ten minutes).
pub async fn health_settings_and_jwks(env: Env) {
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
