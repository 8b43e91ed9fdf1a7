//! OAuth's state: what happens when it is missing, unknown, used, expired or refused.
//! None of these needs a provider round trip: the state comes from `/authorize`'s
//! redirect, and the scenario plays the provider's return to `/callback`.

use serde_json::json;

use crate::env::{Env, access, claims, fragment, pkce, query, urlencode};

/// Starts a PKCE OAuth sign-in with GitHub back to the app; returns the `state`.
async fn authorize(env: &Env) -> String {
    let (_, challenge) = pkce();
    let reply = env
        .get(
            &format!(
                "/authorize?provider=github&redirect_to={}&code_challenge={challenge}&code_challenge_method=s256",
                urlencode("tessera://auth/callback?flow=oauthFlow1")
            ),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 302, "{}", reply.text);
    query(&reply.location())["state"].clone()
}

/// GoTrue sends a bad state to the **site URL**, not to the app: 303, the error in the
/// query (`loadFlowState`).
#[track_caller]
fn assert_site_url_error(reply: &crate::env::Reply, code: &str) -> String {
    assert_eq!(reply.status.as_u16(), 303, "{}", reply.text);
    let location = reply.location();
    assert!(location.starts_with("http://localhost:3000"), "{location}");
    let q = query(&location);
    assert_eq!(q["error_code"], code, "{location}");
    assert_eq!(q["error"], "invalid_request", "{location}");
    q["error_description"].clone()
}

pub async fn an_unknown_or_broken_state_lands_on_the_site_url(env: Env) {
    let unknown = uuid::Uuid::new_v4();
    let reply = env
        .get(&format!("/callback?state={unknown}&code=abc"), None)
        .await;
    assert_eq!(
        assert_site_url_error(&reply, "bad_oauth_state"),
        "OAuth state not found or expired"
    );
    let reply = env.get("/callback?state=not-a-uuid&code=abc", None).await;
    assert_site_url_error(&reply, "bad_oauth_state");
    let reply = env.get("/callback?code=abc", None).await;
    assert_site_url_error(&reply, "bad_oauth_callback");
}

/// The OAuth flow state lives 300 s from `/authorize`: a sign-in that spends longer at the
/// provider comes back to the site URL.
pub async fn an_oauth_state_expires_five_minutes_after_authorize(env: Env) {
    let state = authorize(&env).await;
    env.age_flow_states(301, &[&state]).await;
    let reply = env
        .get(&format!("/callback?state={state}&code=abc"), None)
        .await;
    assert_eq!(
        assert_site_url_error(&reply, "bad_oauth_state"),
        "OAuth state has expired"
    );
}

/// A provider's refusal (`error=access_denied`) is passed to the app's redirect in the query
/// and the fragment, with no `error_code`.
pub async fn a_provider_refusal_reaches_the_app_without_an_error_code(env: Env) {
    let state = authorize(&env).await;
    let reply = env
        .get(
            &format!(
                "/callback?state={state}&error=access_denied&error_description=The+user+said+no"
            ),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 302, "{}", reply.text);
    let location = reply.location();
    assert!(
        location.starts_with("tessera://auth/callback?"),
        "{location}"
    );
    let q = query(&location);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "The user said no");
    assert_eq!(q["flow"], "oauthFlow1");
    assert!(!q.contains_key("error_code"), "{location}");
    let f = fragment(&location);
    assert_eq!(f["error"], "access_denied");
    assert!(f.contains_key("sb"));
}

/// `/authorize` checks its input before any provider is involved: an unknown provider and
/// half a PKCE pair are validation failures.
pub async fn authorize_checks_its_input(env: Env) {
    env.get("/authorize?provider=myspace", None)
        .await
        .assert_error(400, "validation_failed");
    env.get("/authorize?provider=github&code_challenge=abc", None)
        .await
        .assert_error(400, "validation_failed");
}

/// The PKCE grant checks its code before anything else: an empty one is a validation
/// failure, an unknown one has no flow state.
pub async fn a_pkce_grant_checks_its_code(env: Env) {
    let (verifier, _) = pkce();
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": "", "code_verifier": verifier}),
    )
    .await
    .assert_error(400, "validation_failed");
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": uuid::Uuid::new_v4().to_string(), "code_verifier": verifier}),
    )
    .await
    .assert_error(404, "flow_state_not_found");
}

/// The fake provider's page, submitted like a browser: returns the `/callback` URL it
/// redirects to.
async fn provider_submit(env: &Env, authorize_path: &str, form: &[(&str, &str)]) -> String {
    let authorize = env.get(authorize_path, None).await;
    assert_eq!(authorize.status.as_u16(), 302, "{}", authorize.text);
    let page_url = authorize.location();
    let state = query(&page_url)["state"].clone();
    let mut fields = vec![("state", state.as_str())];
    fields.extend_from_slice(form);
    let submit = env
        .http
        .post(&page_url)
        .form(&fields)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the provider page: {e}"));
    assert_eq!(submit.status().as_u16(), 302);
    let callback_url = submit
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(callback_url.contains("/callback?"), "{callback_url}");
    callback_url
}

/// Runs the fake provider's page like a browser: authorize → form → callback → app URL.
async fn oauth_to_app(env: &Env, provider: &str, email: &str, challenge: Option<&str>) -> String {
    let mut path = format!(
        "/authorize?provider={provider}&redirect_to={}",
        urlencode("tessera://auth/callback")
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
    let callback_url =
        provider_submit(env, &path, &[("email", email), ("decision", "allow")]).await;
    let callback = env.get(&callback_url, None).await;
    assert_eq!(callback.status.as_u16(), 302, "{}", callback.text);
    callback.location()
}

async fn pkce_grant(env: &Env, code: &str, verifier: &str) -> crate::env::Reply {
    env.post(
        "/token?grant_type=pkce",
        json!({"auth_code": code, "code_verifier": verifier}),
    )
    .await
}

/// A PKCE sign-in through the provider: the code needs its verifier, works once, signs the
/// same person in as the same user, and expires with its flow state (emulator only: its
/// fake provider).
pub async fn oauth_pkce_sign_in_and_code_rules(env: Env) {
    env.require_emulator("the fake OAuth provider");
    let octo = env.email("octo");
    let (verifier, challenge) = pkce();
    let app_url = oauth_to_app(&env, "github", &octo, Some(&challenge)).await;
    assert!(
        app_url.starts_with("tessera://auth/callback?code="),
        "{app_url}"
    );
    let code = query(&app_url)["code"].clone();
    pkce_grant(&env, &code, "wrong-verifier")
        .await
        .assert_error(400, "bad_code_verifier");
    let s = pkce_grant(&env, &code, &verifier).await;
    let s = s.assert_ok().clone();
    assert!(s["provider_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(s["user"]["email"], octo);
    assert_eq!(s["user"]["app_metadata"]["provider"], "github");
    assert_eq!(s["user"]["identities"][0]["provider"], "github");
    let c = claims(&access(&s));
    assert_eq!(c["amr"][0]["method"], "oauth");
    assert_eq!(c["amr"][0]["provider"], "github");

    // Single use.
    pkce_grant(&env, &code, &verifier)
        .await
        .assert_error(404, "flow_state_not_found");

    // The same person signing in again gets the same user.
    let (verifier2, challenge2) = pkce();
    let app_url = oauth_to_app(&env, "github", &octo, Some(&challenge2)).await;
    let s2 = pkce_grant(&env, &query(&app_url)["code"], &verifier2).await;
    assert_eq!(s2.assert_ok()["user"]["id"], s["user"]["id"]);

    // Expired flow.
    let (verifier3, challenge3) = pkce();
    let app_url = oauth_to_app(&env, "google", &env.email("late"), Some(&challenge3)).await;
    env.advance(301).await;
    pkce_grant(&env, &query(&app_url)["code"], &verifier3)
        .await
        .assert_error(422, "flow_state_expired");
}

/// Without PKCE the session comes back in the fragment; a cancel at the provider comes
/// back as `access_denied`; a finished callback cannot be replayed (emulator only: its
/// fake provider).
pub async fn oauth_implicit_flow_cancel_and_replayed_callback(env: Env) {
    env.require_emulator("the fake OAuth provider");
    let app_url = oauth_to_app(&env, "google", &env.email("implicit"), None).await;
    let f = fragment(&app_url);
    assert!(app_url.starts_with("tessera://auth/callback#"), "{app_url}");
    assert_eq!(f["token_type"], "bearer");
    assert!(f.contains_key("provider_token"));
    env.get("/user", Some(&f["access_token"])).await.assert_ok();

    // The user cancels at the provider.
    let (_, challenge) = pkce();
    let callback_url = provider_submit(
        &env,
        &format!("/authorize?provider=github&redirect_to=tessera://auth/callback&code_challenge={challenge}&code_challenge_method=S256"),
        &[("decision", "deny")],
    )
    .await;
    let denied = env.get(&callback_url, None).await.location();
    assert!(denied.starts_with("tessera://auth/callback?"), "{denied}");
    assert_eq!(query(&denied)["error"], "access_denied");
    assert!(fragment(&denied).contains_key("error_description"));

    // Replaying a finished callback is refused.
    let replay = env.email("replay");
    let callback_url = provider_submit(
        &env,
        &format!("/authorize?provider=github&redirect_to=tessera://auth/callback&code_challenge={challenge}&code_challenge_method=s256"),
        &[("email", &replay)],
    )
    .await;
    let first = env.get(&callback_url, None).await;
    assert!(query(&first.location()).contains_key("code"));
    let second = env.get(&callback_url, None).await;
    assert_eq!(
        query(&second.location())["error_code"],
        "flow_state_already_used"
    );
}

/// A `redirect_to` off the allow list is dropped: the sign-in lands on the site URL
/// (emulator only: its fake provider).
pub async fn redirect_targets_outside_the_allow_list_fall_back_to_site_url(env: Env) {
    env.require_emulator("the fake OAuth provider");
    let site = env.email("site");
    let callback_url = provider_submit(
        &env,
        "/authorize?provider=github&redirect_to=https://evil.example.com/steal",
        &[("email", &site)],
    )
    .await;
    let callback = env.get(&callback_url, None).await;
    assert!(
        callback.location().starts_with("http://localhost:3000#"),
        "{}",
        callback.location()
    );
}

/// The same without a provider round trip: a refusal at the provider of a sign-in that
/// asked for a redirect off the allow list comes back to the site URL.
pub async fn a_refusal_for_a_redirect_off_the_allow_list_lands_on_the_site_url(env: Env) {
    let (_, challenge) = pkce();
    let reply = env
        .get(
            &format!(
                "/authorize?provider=github&redirect_to={}&code_challenge={challenge}&code_challenge_method=s256",
                urlencode("https://evil.example.com/steal")
            ),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 302, "{}", reply.text);
    let state = query(&reply.location())["state"].clone();
    let reply = env
        .get(
            &format!("/callback?state={state}&error=access_denied&error_description=no"),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 302, "{}", reply.text);
    let location = reply.location();
    assert!(location.starts_with("http://localhost:3000"), "{location}");
    assert_eq!(query(&location)["error"], "access_denied");
}
