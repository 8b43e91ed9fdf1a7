//! `GET /authorize` and `GET|POST /callback`: OAuth sign-in through the emulator's fake
//! provider (`/_emulator/oauth/{provider}/authorize`), PKCE or implicit.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::verify::{with_fragment, with_query};
use super::{AppState, Client, new_flow_state, pkce_params, start_session};
use crate::config::OAUTH_PROVIDERS;
use crate::db::{FlowStateRow, IdentityRow, OAuthGrantRow, UserRow};
use crate::error::ApiError;
use crate::models::merge_metadata;
use crate::redirect;
use crate::tokens::{self, PkceMethod};

fn found(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Starts an OAuth sign-in: stores a flow state (its id is the OAuth `state`) and sends the
/// browser to the provider.
pub async fn authorize(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let provider = query
        .get("provider")
        .map(|p| p.to_lowercase())
        .unwrap_or_default();
    if !OAUTH_PROVIDERS.contains(&provider.as_str()) {
        return Err(ApiError::validation(format!(
            "Unsupported provider: provider {provider} could not be found"
        )));
    }
    // The fake provider is a test server's: an embedded server has no provider enabled.
    if state.config.is_embedded() {
        return Err(ApiError::bad_request(
            "provider_disabled",
            "Unsupported provider: Provider is not enabled",
        ));
    }
    let pkce = pkce_params(
        query.get("code_challenge").map(String::as_str),
        query.get("code_challenge_method").map(String::as_str),
    )?;
    let redirect_to = redirect::for_request(&state.config, &headers, &query);
    let flow = {
        let conn = state.db.lock();
        // The implicit flow keeps a flow state too (no challenge), as GoTrue does.
        let pkce = pkce.unwrap_or((String::new(), PkceMethod::S256));
        new_flow_state(
            &state,
            &conn,
            None,
            &pkce,
            &provider,
            "oauth",
            Some(&redirect_to),
        )?
    };
    let scopes = query.get("scopes").cloned().unwrap_or_default();
    let callback = format!("{}/callback", state.external_url);
    let location = with_query(
        &format!(
            "{}/_emulator/oauth/{provider}/authorize",
            state.external_url
        ),
        &[
            ("client_id", "gotrue-emulator"),
            ("redirect_uri", &callback),
            ("response_type", "code"),
            ("scope", &scopes),
            ("state", &flow.id),
        ],
    );
    Ok(found(&location))
}

pub async fn callback_get(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    client: Client,
) -> Response {
    callback(&state, &client, &params)
}

pub async fn callback_post(
    State(state): State<AppState>,
    client: Client,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    callback(&state, &client, &params)
}

/// GoTrue's `loadExternalState`: the flow state the OAuth `state` names, if it is usable.
fn load_flow_state(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<FlowStateRow, ApiError> {
    let flow_id = params.get("state").map(String::as_str).unwrap_or_default();
    if flow_id.is_empty() {
        return Err(ApiError::bad_request(
            "bad_oauth_callback",
            "OAuth state parameter missing",
        ));
    }
    if uuid::Uuid::parse_str(flow_id).is_err() {
        return Err(ApiError::bad_request(
            "bad_oauth_state",
            "OAuth state parameter is invalid",
        ));
    }
    let flow = FlowStateRow::find(&state.db.lock(), flow_id)?.ok_or_else(|| {
        ApiError::bad_request("bad_oauth_state", "OAuth state not found or expired")
    })?;
    if flow.is_expired(state.flow_state_expiry(), state.now()) {
        return Err(ApiError::bad_request(
            "bad_oauth_state",
            "OAuth state has expired",
        ));
    }
    if !flow.code_challenge.is_empty() && flow.user_id.is_some() {
        return Err(ApiError::bad_request(
            "flow_state_already_used",
            "State has already been used",
        ));
    }
    Ok(flow)
}

/// Where GoTrue sends the browser when the OAuth state is missing, unknown, expired or used
/// (`loadFlowState`): to the **site URL**, not the app, with the error in the query (303).
fn site_url_error(state: &AppState, err: &ApiError) -> Response {
    let class = oauth_error_class(err);
    let location = with_query(
        &state.config.site_url,
        &[
            ("error", class),
            ("error_code", &err.code),
            ("error_description", &err.msg),
        ],
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// GoTrue's `getErrorQueryString`: `access_denied` for a refused sign-up or a banned
/// user, else `oauthErrorMap`, else `server_error`.
fn oauth_error_class(err: &ApiError) -> &'static str {
    if matches!(&*err.code, "signup_disabled" | "user_banned") {
        return "access_denied";
    }
    super::verify::oauth_error_class(err.status.as_u16()).unwrap_or("server_error")
}

/// GoTrue's `redirectErrors` for the callback: the error in the query and in the fragment
/// (with `sb`), 302. A provider's own refusal (`?error=access_denied`) carries no
/// `error_code`.
fn callback_error(target: &str, error: &str, description: &str, code: Option<&str>) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(code) = code {
        pairs.push(("error_code", code));
    }
    let with_q = with_query(target, &pairs);
    pairs.push(("sb", ""));
    found(&with_fragment(&with_q, &pairs))
}

/// The provider came back: find or create the user, then either hand out an auth code
/// (PKCE) or tokens in the fragment (implicit).
fn callback(state: &AppState, client: &Client, params: &HashMap<String, String>) -> Response {
    let flow = match load_flow_state(state, params) {
        Ok(flow) => flow,
        Err(err) => return site_url_error(state, &err),
    };
    let target = flow
        .redirect_to
        .clone()
        .unwrap_or_else(|| state.config.site_url.clone());
    if let Some(error) = params.get("error").filter(|e| !e.is_empty()) {
        let description = params
            .get("error_description")
            .map(String::as_str)
            .unwrap_or_default();
        return callback_error(&target, error, description, None);
    }
    let code = params.get("code").map(String::as_str).unwrap_or_default();
    if code.is_empty() {
        let err = ApiError::bad_request(
            "bad_oauth_callback",
            "OAuth callback with missing authorization code missing",
        );
        return callback_error(&target, oauth_error_class(&err), &err.msg, Some(&err.code));
    }
    match finish(state, client, &flow, code) {
        Ok(location) => found(&location),
        Err(err) => callback_error(&target, oauth_error_class(&err), &err.msg, Some(&err.code)),
    }
}

fn finish(
    state: &AppState,
    client: &Client,
    flow: &FlowStateRow,
    code: &str,
) -> Result<String, ApiError> {
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    if flow.user_id.is_some() {
        return Err(ApiError::bad_request(
            "flow_state_already_used",
            "State has already been used",
        ));
    }
    let grant = OAuthGrantRow::take(&tx, code)?
        .filter(|g| g.flow_state_id == flow.id)
        .ok_or_else(|| {
            ApiError::bad_request("bad_oauth_callback", "OAuth callback with invalid code")
        })?;
    let now = state.now();
    let provider = grant.provider.as_str();
    // A stable provider-side user id for this address.
    let provider_id = tokens::token_hash(provider, &grant.email)[..20].to_owned();
    let identity_data = json!({
        "email": grant.email,
        "email_verified": true,
        "phone_verified": false,
        "full_name": grant.email.split('@').next().unwrap_or_default(),
        "iss": format!("{}/_emulator/oauth/{provider}", state.external_url),
        "provider_id": provider_id,
        "sub": provider_id,
    });
    let mut user = match IdentityRow::find(&tx, &provider_id, provider)? {
        Some(mut identity) => {
            identity.last_sign_in_at = Some(now);
            identity.updated_at = now;
            identity.save(&tx)?;
            UserRow::find(&tx, &identity.user_id)?
                .ok_or_else(|| ApiError::not_found("user_not_found", "User not found"))?
        }
        None => {
            let mut user = match UserRow::find_by_email(&tx, &grant.email)? {
                // A verified provider email links to the existing account, as GoTrue does.
                Some(user) => user,
                None => {
                    if state.config.disable_signup {
                        return Err(ApiError::unprocessable(
                            "signup_disabled",
                            "Signups not allowed for this instance",
                        ));
                    }
                    let mut user =
                        UserRow::new(&state.config.jwt_aud, &state.config.jwt_default_group, now);
                    user.email = Some(grant.email.clone());
                    user.email_confirmed_at = Some(now);
                    user.app_metadata = json!({ "provider": provider, "providers": [] });
                    user.user_metadata = identity_data.clone();
                    user.save(&tx)?;
                    user
                }
            };
            let mut providers: Vec<String> = user.app_metadata["providers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if !providers.iter().any(|p| p == provider) {
                providers.push(provider.to_owned());
            }
            merge_metadata(&mut user.app_metadata, &json!({ "providers": providers }));
            if user.app_metadata.get("provider").is_none() {
                merge_metadata(&mut user.app_metadata, &json!({ "provider": provider }));
            }
            user.save(&tx)?;
            IdentityRow {
                id: uuid::Uuid::new_v4().to_string(),
                provider_id: provider_id.clone(),
                user_id: user.id.clone(),
                provider: provider.to_owned(),
                identity_data,
                email: Some(grant.email.clone()),
                last_sign_in_at: Some(now),
                created_at: now,
                updated_at: now,
            }
            .save(&tx)?;
            user
        }
    };
    if user.is_banned(now) {
        return Err(ApiError::forbidden("user_banned", "User is banned"));
    }
    let provider_token = format!("emu_{}", tokens::random_token(24));
    let target = flow
        .redirect_to
        .clone()
        .unwrap_or_else(|| state.config.site_url.clone());
    let location = if flow.code_challenge.is_empty() {
        FlowStateRow::delete(&tx, &flow.id)?;
        let (session, refresh) =
            start_session(state, &tx, &mut user, "oauth", Some(provider), client)?;
        let (access, expires_at) = super::access_token(state, &user, &session);
        let expires_in = (expires_at - state.clock.now_secs()).to_string();
        let expires_at = expires_at.to_string();
        with_fragment(
            &target,
            &[
                ("access_token", &access),
                ("expires_at", &expires_at),
                ("expires_in", &expires_in),
                ("provider_token", &provider_token),
                ("refresh_token", &refresh.token),
                ("token_type", "bearer"),
                ("sb", ""),
            ],
        )
    } else {
        let mut flow = flow.clone();
        flow.user_id = Some(user.id.clone());
        flow.provider_access_token = Some(provider_token);
        flow.auth_code_issued_at = Some(now);
        flow.save(&tx)?;
        with_query(&target, &[("code", &flow.auth_code)])
    };
    tx.commit()?;
    Ok(location)
}
