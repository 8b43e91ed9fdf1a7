//! Connecting a server: what a person types (a Supabase project URL and its key) checked
//! before it is used. [`check_api_key`] refuses a secret key, which must never sit in an
//! installed app; [`probe`] finds the API root (`https://<ref>.supabase.co` →
//! `…/auth/v1`), asks `GET /health` whether it is a GoTrue and `GET /settings` what it
//! offers, and names what is wrong in words a person can act on.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AuthError;

/// Which kind of public key a project gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApiKeyKind {
    /// The legacy `anon` key: a JWT whose `role` is `anon`.
    LegacyAnon,
    /// The new `sb_publishable_…` key (not a JWT: it goes in `apikey` and as the anonymous
    /// bearer, as supabase-js sends it).
    Publishable,
}

/// Why a check failed, with a stable code (`ServerCheck.code`).
fn refused(code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::ServerCheck {
        code,
        message: message.into(),
    }
}

/// Checks the key a person pasted: an anon JWT or a publishable key. A secret key
/// (`sb_secret_…`, or a JWT whose `role` is `service_role`) is refused: it bypasses Row
/// Level Security, and anything in an installed app can be read out of it.
pub fn check_api_key(key: &str) -> Result<ApiKeyKind, AuthError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(refused(
            "missing_api_key",
            "Paste the project's publishable key (sb_publishable_…) or its anon key.",
        ));
    }
    if key.starts_with("sb_secret_") {
        return Err(secret_key());
    }
    if let Some(rest) = key.strip_prefix("sb_publishable_") {
        if rest.is_empty()
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(not_a_key());
        }
        return Ok(ApiKeyKind::Publishable);
    }
    match jwt_role(key).as_deref() {
        Some("anon") => Ok(ApiKeyKind::LegacyAnon),
        Some("service_role" | "supabase_admin") => Err(secret_key()),
        Some(other) => Err(refused(
            "invalid_api_key",
            format!(
                "This key is for the role {other:?}; the app needs the project's publishable \
                 or anon key."
            ),
        )),
        None => Err(not_a_key()),
    }
}

/// Refuses a secret key (`sb_secret_…`, a `service_role` JWT) however it was configured;
/// anything else is left for the server to judge (a bare GoTrue may take any key).
pub fn refuse_secret_key(key: &str) -> Result<(), AuthError> {
    match check_api_key(key) {
        Err(e) if e.code() == "secret_api_key" => Err(e),
        _ => Ok(()),
    }
}

/// A key shown masked: its kind and its last characters (`sb_publishable_…f3Qa`,
/// `eyJh…abcd`). The key is public, but there is no reason to show it whole.
pub fn mask_key(key: &str) -> String {
    let key = key.trim();
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    match key {
        "" => String::new(),
        k if k.starts_with("sb_publishable_") => format!("sb_publishable_…{tail}"),
        _ if chars.len() <= 8 => "…".into(),
        _ => format!("{}…{tail}", chars[..4].iter().collect::<String>()),
    }
}

fn secret_key() -> AuthError {
    refused(
        "secret_api_key",
        "This is a secret key (service_role). It bypasses every access rule and must never \
         be put in an app people install: use the publishable key (sb_publishable_…) or the \
         anon key from the project's API settings.",
    )
}

fn not_a_key() -> AuthError {
    refused(
        "invalid_api_key",
        "This does not look like a Supabase API key: use the publishable key \
         (sb_publishable_…) or the anon key from the project's API settings.",
    )
}

/// The `role` claim of a JWT, read without checking the signature (the server checks it).
fn jwt_role(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("role")?.as_str().map(str::to_owned)
}

/// The API roots to try for what a person typed, best first: a URL ending in `/auth/v1`
/// as it is; a Supabase project (`https://<ref>.supabase.co`) with `/auth/v1`; any other
/// URL with `/auth/v1` (a gateway in front of GoTrue) and then as it is (a bare GoTrue).
pub fn candidate_urls(input: &str) -> Result<Vec<String>, AuthError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(refused(
            "invalid_url",
            "Enter the project URL, e.g. https://abcdefgh.supabase.co",
        ));
    }
    let mut url = url::Url::parse(input).map_err(|_| {
        refused(
            "invalid_url",
            format!("{input:?} is not a URL: it should look like https://abcdefgh.supabase.co"),
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused(
            "invalid_url",
            "The URL must not carry a user name or password.",
        ));
    }
    url.set_query(None);
    url.set_fragment(None);
    crate::http::check_url(url.as_str(), "the server URL").map_err(|_| {
        refused(
            "insecure_url",
            "The server URL must start with https:// (plain http only for this computer: \
             127.0.0.1 or localhost).",
        )
    })?;
    let root = url.as_str().trim_end_matches('/').to_owned();
    if root.ends_with("/auth/v1") {
        return Ok(vec![root]);
    }
    let supabase = url
        .host_str()
        .is_some_and(|h| h.to_ascii_lowercase().ends_with(".supabase.co"));
    if supabase && url.path().trim_matches('/').is_empty() {
        return Ok(vec![format!("{root}/auth/v1")]);
    }
    Ok(vec![format!("{root}/auth/v1"), root])
}

/// What a server offers, from `GET /settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// The API root requests go to (`https://<ref>.supabase.co/auth/v1`).
    pub url: String,
    pub key_kind: ApiKeyKind,
    /// `GET /health`'s `version`.
    pub version: String,
    /// OAuth providers that are on (`github`, `google`, …), sorted.
    pub providers: Vec<String>,
    pub email_enabled: bool,
    pub signup_enabled: bool,
    /// New accounts and new addresses must be confirmed from a mail (`mailer_autoconfirm`
    /// is off).
    pub email_confirmation: bool,
    pub anonymous_enabled: bool,
}

#[derive(Deserialize)]
struct Health {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    external: BTreeMap<String, Value>,
    #[serde(default)]
    disable_signup: bool,
    #[serde(default)]
    mailer_autoconfirm: bool,
}

/// Not OAuth providers, though GoTrue lists them under `external`.
const NOT_PROVIDERS: &[&str] = &["email", "phone", "anonymous_users", "saml"];

impl ServerInfo {
    fn from_settings(url: String, key_kind: ApiKeyKind, version: String, s: Settings) -> Self {
        let on = |name: &str| s.external.get(name).and_then(Value::as_bool) == Some(true);
        let providers = s
            .external
            .iter()
            .filter(|(name, v)| {
                !NOT_PROVIDERS.contains(&name.as_str())
                    && v.as_bool() == Some(true)
                    && name.len() <= 40
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
            .map(|(name, _)| name.clone())
            .collect();
        Self {
            url,
            key_kind,
            version: printable(&version, 64),
            providers,
            email_enabled: on("email"),
            signup_enabled: !s.disable_signup,
            email_confirmation: !s.mailer_autoconfirm,
            anonymous_enabled: on("anonymous_users"),
        }
    }
}

/// Checks a server before it is saved: the key ([`check_api_key`]), then for each
/// [`candidate_urls`] root `GET /health` (is it a GoTrue?) and `GET /settings` (with the
/// key, as the app will send it). The first root that answers as a GoTrue wins.
pub async fn probe(
    input_url: &str,
    api_key: &str,
    timeout: Duration,
) -> Result<ServerInfo, AuthError> {
    let key_kind = check_api_key(api_key)?;
    let key = api_key.trim();
    let candidates = candidate_urls(input_url)?;
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AuthError::Config(e.to_string()))?;
    let mut last = None;
    for root in candidates {
        match probe_root(&http, &root, key, timeout).await {
            Ok((version, settings)) => {
                return Ok(ServerInfo::from_settings(root, key_kind, version, settings));
            }
            // Another root may be the right one; an unreachable host or a refused key is
            // the same for every root.
            Err(
                e @ AuthError::ServerCheck {
                    code: "not_gotrue", ..
                },
            ) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| refused("not_gotrue", "No auth server answered there.")))
}

async fn probe_root(
    http: &reqwest::Client,
    root: &str,
    key: &str,
    timeout: Duration,
) -> Result<(String, Settings), AuthError> {
    let get = |path: &str| {
        http.get(format!("{root}{path}"))
            .header("apikey", key)
            .bearer_auth(key)
            .header("Accept", "application/json")
            .send()
    };
    let health = get("/health").await.map_err(|e| transport(&e, timeout))?;
    let status = health.status();
    let body = read_limited(health).await?;
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(key_refused(&body));
    }
    let health: Option<Health> = serde_json::from_slice(&body).ok();
    let Some(health) =
        health.filter(|h| status.is_success() && h.name.eq_ignore_ascii_case("gotrue"))
    else {
        return Err(refused(
            "not_gotrue",
            format!(
                "The server at {root} is not a Supabase auth server (GET /health answered {}). \
                 Check the project URL.",
                status.as_u16()
            ),
        ));
    };
    let settings = get("/settings").await.map_err(|e| transport(&e, timeout))?;
    let status = settings.status();
    let body = read_limited(settings).await?;
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(key_refused(&body));
    }
    if !status.is_success() {
        return Err(refused(
            "not_gotrue",
            format!(
                "The auth server at {root} did not give its settings ({}).",
                status.as_u16()
            ),
        ));
    }
    let settings = serde_json::from_slice(&body).map_err(|_| {
        refused(
            "not_gotrue",
            format!("The auth server at {root} sent settings that cannot be read."),
        )
    })?;
    Ok((health.version, settings))
}

/// A body of at most 64 KiB (health and settings are small).
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, AuthError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AuthError::Network(e.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            return Err(refused(
                "not_gotrue",
                "The server sent far more than an auth server would.",
            ));
        }
    }
    Ok(body)
}

/// Text from a server, fit to show: control and direction characters removed, at most
/// `max` characters (a hostile server must not write escape sequences into a terminal or
/// pages into a dialog).
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .take(max)
        .collect()
}

fn key_refused(body: &[u8]) -> AuthError {
    let said = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(Value::as_str)
                .map(|m| printable(m, 120))
        })
        .filter(|m| !m.is_empty());
    refused(
        "invalid_api_key",
        format!(
            "The server refused the key{}: copy the publishable or anon key of this project \
             from its API settings.",
            said.map(|s| format!(" ({s})")).unwrap_or_default()
        ),
    )
}

/// Names a failure to reach the server the way a person can act on it.
fn transport(e: &reqwest::Error, timeout: Duration) -> AuthError {
    if e.is_timeout() {
        return refused(
            "server_timeout",
            format!("The server did not answer within {} s.", timeout.as_secs()),
        );
    }
    let chain = error_chain(e).to_ascii_lowercase();
    if chain.contains("certificate") || chain.contains("tls") || chain.contains("ssl") {
        return refused(
            "tls_error",
            "The server's certificate is not valid for this address (TLS). Check the URL, or \
             the system's certificates.",
        );
    }
    if chain.contains("dns") || chain.contains("resolve") || chain.contains("lookup") {
        return refused(
            "server_unreachable",
            "No server has that name: check the project URL (and the network).",
        );
    }
    refused(
        "server_unreachable",
        "The server cannot be reached: check the URL and the network.",
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(role: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"supabase","role":"{role}"}}"#));
        format!("{header}.{claims}.c2ln")
    }

    fn code(e: AuthError) -> String {
        e.code().to_owned()
    }

    #[test]
    fn anon_and_publishable_keys_are_taken() {
        assert_eq!(check_api_key(&jwt("anon")).unwrap(), ApiKeyKind::LegacyAnon);
        assert_eq!(
            check_api_key(crate::DEMO_ANON_KEY).unwrap(),
            ApiKeyKind::LegacyAnon
        );
        assert_eq!(
            check_api_key(" sb_publishable_abcDEF123_x-y ").unwrap(),
            ApiKeyKind::Publishable
        );
    }

    #[test]
    fn secret_keys_are_refused_with_their_own_code() {
        assert_eq!(
            code(check_api_key("sb_secret_abc").unwrap_err()),
            "secret_api_key"
        );
        assert_eq!(
            code(check_api_key(&jwt("service_role")).unwrap_err()),
            "secret_api_key"
        );
    }

    #[test]
    fn what_is_no_key_is_said_so() {
        for bad in [
            "",
            "hello",
            "sb_publishable_",
            "sb_publishable_a b",
            "a.b.c",
        ] {
            let c = code(check_api_key(bad).unwrap_err());
            assert!(
                c == "invalid_api_key" || c == "missing_api_key",
                "{bad:?}: {c}"
            );
        }
        assert_eq!(
            code(check_api_key(&jwt("authenticated")).unwrap_err()),
            "invalid_api_key"
        );
    }

    #[test]
    fn project_urls_become_api_roots() {
        assert_eq!(
            candidate_urls("https://abc.supabase.co").unwrap(),
            ["https://abc.supabase.co/auth/v1"]
        );
        assert_eq!(
            candidate_urls(" https://ABC.supabase.co/auth/v1/ ").unwrap(),
            ["https://abc.supabase.co/auth/v1"]
        );
        assert_eq!(
            candidate_urls("http://127.0.0.1:9999").unwrap(),
            ["http://127.0.0.1:9999/auth/v1", "http://127.0.0.1:9999"]
        );
        assert_eq!(
            candidate_urls("https://auth.example.com/gotrue?x=1#y").unwrap(),
            [
                "https://auth.example.com/gotrue/auth/v1",
                "https://auth.example.com/gotrue"
            ]
        );
    }

    #[test]
    fn bad_urls_are_named() {
        assert_eq!(code(candidate_urls("").unwrap_err()), "invalid_url");
        assert_eq!(
            code(candidate_urls("abc.supabase.co").unwrap_err()),
            "invalid_url"
        );
        assert_eq!(
            code(candidate_urls("http://abc.supabase.co").unwrap_err()),
            "insecure_url"
        );
        assert_eq!(
            code(candidate_urls("ftp://abc.supabase.co").unwrap_err()),
            "insecure_url"
        );
        assert_eq!(
            code(candidate_urls("https://u:p@abc.supabase.co").unwrap_err()),
            "invalid_url"
        );
    }

    #[test]
    fn keys_are_masked_to_their_kind_and_last_characters() {
        assert_eq!(
            mask_key("sb_publishable_abcdefXYZ1"),
            "sb_publishable_…XYZ1"
        );
        assert_eq!(mask_key("eyJhbGciOiJIUzI1NiJ9.e30.sig-abcd"), "eyJh…abcd");
        assert_eq!(mask_key("short"), "…");
        assert_eq!(mask_key(""), "");
        assert_eq!(mask_key("ééééééééééé"), "éééé…éééé");
    }

    #[test]
    fn only_secret_keys_are_refused_outright() {
        assert!(refuse_secret_key("sb_secret_abcdefghijklmnop").is_err());
        assert!(refuse_secret_key(&jwt("service_role")).is_err());
        assert!(refuse_secret_key(crate::DEMO_ANON_KEY).is_ok());
        assert!(refuse_secret_key("").is_ok());
    }

    #[test]
    fn server_text_is_made_printable() {
        assert_eq!(printable("ok\u{1b}[31mred\u{202e}x\n", 100), "ok[31mredx");
        assert_eq!(printable("abcdef", 3), "abc");
    }

    #[test]
    fn settings_name_the_providers_that_are_on() {
        let settings: Settings = serde_json::from_str(
            r#"{"external":{"github":true,"google":false,"email":true,"phone":false,
                "anonymous_users":true,"azure":true,"\u001b[2Jevil":true},"disable_signup":true,
                "mailer_autoconfirm":false}"#,
        )
        .unwrap();
        let info =
            ServerInfo::from_settings("u".into(), ApiKeyKind::Publishable, "v".into(), settings);
        assert_eq!(info.providers, ["azure", "github"]);
        assert!(info.email_enabled && info.anonymous_enabled && info.email_confirmation);
        assert!(!info.signup_enabled);
    }
}
