//! The data proxy: the web UI's PostgREST, Storage, Edge Functions and GraphQL calls,
//! sent on by the Rust side with the user's access token, so that no token is ever in
//! JavaScript and supabase-js works unchanged against the proxy's base URL.
//!
//! - Only `/rest/v1/…`, `/storage/v1/…`, `/functions/v1/…` and `/graphql/v1` are sent on;
//!   `/auth/v1` and everything else get 403 (session management stays in the engine), and
//!   so does any path with a `.`/`..` segment, an encoded `.`, `/` or `\`, or an empty
//!   segment: the project's gateway would resolve them, and `/rest/v1/../../auth/v1/user`
//!   must not reach the auth server with the user's token.
//! - `apikey` is the project's anon/publishable key and `Authorization` the user's access
//!   token. Signed out, a legacy anon key (a JWT) is the bearer, as supabase-js sends it;
//!   a publishable key (`sb_publishable_…`, not a JWT) goes in `apikey` only, as Supabase
//!   documents for the new keys: its gateway turns it into the anon role for REST, Storage
//!   and GraphQL, while Edge Functions refuse it as a bearer (`verify_jwt` cannot read it).
//!   Whatever the page set in either header, or in `Cookie`, is dropped, as are hop-by-hop
//!   headers.
//! - The token comes from the engine (single-flight refresh; a token about to expire is
//!   refreshed first). A `401` (or Storage's `400`/`403`) whose body says the JWT expired
//!   (the server's clock ahead of ours) triggers one refresh and one retry; every other answer passes through as
//!   it is: status, headers (hop-by-hop and `Set-Cookie` aside) and body.
//! - Bodies are bounded both ways ([`ProxyConfig::max_body`], 50 MiB by default): a bigger
//!   request gets 413 before anything is sent, and a bigger answer 502, read no further.
//!   Time-outs answer 504. Every error the proxy makes itself is JSON
//!   `{"code", "message"}` with a `x-tessera-proxy` header, so a page can tell it from
//!   the project's own answers.

use std::time::Duration;

use crate::client::AuthClient;
use crate::error::AuthError;

/// The API paths the proxy sends on.
pub const PROXIED_PREFIXES: &[&str] = &["/rest/v1/", "/storage/v1/", "/functions/v1/"];
/// GraphQL's endpoint (`/graphql/v1`, with or without a trailing part).
pub const GRAPHQL: &str = "/graphql/v1";

/// Request headers never sent on: hop-by-hop, and what the proxy sets or must not forward.
const DROPPED_REQUEST: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "apikey",
    "cookie",
    "origin",
    "referer",
    // The answer is read as it comes (identity): nothing to decode on the way.
    "accept-encoding",
];

/// Answer headers never passed back.
const DROPPED_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "set-cookie",
];

/// The proxy's limits.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The largest request or answer body (default 50 MiB).
    pub max_body: usize,
    /// How long one call may take, answer included (default 60 s).
    pub timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_body: 50 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A call from the page: method, path with query (`/rest/v1/notes?select=*`), headers
/// and body.
#[derive(Debug, Clone, Default)]
pub struct ProxyRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The answer for the page.
#[derive(Clone, Default)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ProxyResponse {
    /// The body is left out (it is the user's data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ProxyResponse {
    /// An answer the proxy makes itself.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        Self {
            status,
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("x-tessera-proxy".into(), b"1".to_vec()),
            ],
            body: body.into_bytes(),
        }
    }

    /// A header's value, if the answer has it.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Whether the proxy sends `path_and_query` on (see the module's description).
pub fn is_proxied(path_and_query: &str) -> bool {
    let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    if !path.starts_with('/')
        || path.contains('\\')
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path[1..].split('/').any(|s| s == "." || s == "..")
    {
        return false;
    }
    let allowed = PROXIED_PREFIXES.iter().any(|p| path.starts_with(p))
        || path == GRAPHQL
        || path.starts_with("/graphql/v1/");
    // No empty segment after the prefix (`/rest/v1//x`), except a trailing `/`.
    let trimmed = path.trim_end_matches('/');
    allowed && !trimmed[1..].split('/').any(str::is_empty)
}

/// Sends the page's data calls on to the project (see the module's description).
pub struct DataProxy {
    client: AuthClient,
    http: reqwest::Client,
    base: String,
    cfg: ProxyConfig,
}

impl std::fmt::Debug for DataProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataProxy")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl DataProxy {
    /// A proxy for the engine's project: its root is the auth URL without `/auth/v1` (or
    /// the configured REST URL without `/rest/v1`).
    pub fn new(client: AuthClient, cfg: ProxyConfig) -> Result<Self, AuthError> {
        let base = project_base(client.config());
        let http = crate::http::http_client(
            &base,
            "the project URL",
            cfg.timeout,
            &client.config().user_agent,
        )?;
        Ok(Self {
            client,
            http,
            base,
            cfg,
        })
    }

    /// The project root calls go to (`https://<ref>.supabase.co`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Answers one call from the page.
    pub async fn handle(&self, request: ProxyRequest) -> ProxyResponse {
        if !is_proxied(&request.path_and_query) {
            return ProxyResponse::error(
                403,
                "proxy_forbidden",
                "Only /rest/v1, /storage/v1, /functions/v1 and /graphql/v1 go through the data \
                 proxy; sign-in and sign-out are the app's commands.",
            );
        }
        if self.client.config().backend != crate::BackendKind::GoTrue {
            return ProxyResponse::error(
                501,
                "proxy_unsupported",
                "The data proxy needs a Supabase project.",
            );
        }
        if request.body.len() > self.cfg.max_body {
            return ProxyResponse::error(
                413,
                "payload_too_large",
                &format!(
                    "The request body is larger than the proxy's limit ({} MiB).",
                    self.cfg.max_body / (1024 * 1024)
                ),
            );
        }
        let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
            return ProxyResponse::error(405, "bad_method", "Not an HTTP method.");
        };
        let signed_in = self.client.session().is_some();
        let bearer = match self.bearer().await {
            Ok(bearer) => bearer,
            Err(response) => return *response,
        };
        let first = match self.send(&method, &request, &bearer).await {
            Ok(answer) => answer,
            Err(response) => return *response,
        };
        // 401 from PostgREST and the functions gateway; Storage answers 400 or 403 with
        // "jwt expired" in the body.
        if matches!(first.status, 400 | 401 | 403) && signed_in && says_jwt_expired(&first.body) {
            // The server thinks the token expired though ours had time left (its clock is
            // ahead): refresh once and try once more.
            tracing::info!("data proxy: the server says the JWT expired; refreshing once");
            if self.client.refresh().await.is_ok() {
                let bearer = match self.bearer().await {
                    Ok(bearer) => bearer,
                    Err(response) => return *response,
                };
                return match self.send(&method, &request, &bearer).await {
                    Ok(answer) => answer,
                    Err(response) => *response,
                };
            }
        }
        first
    }

    /// The user's access token; when nobody is signed in, the key itself if it is a
    /// legacy anon JWT, and no bearer at all for a publishable key.
    async fn bearer(&self) -> Result<Option<String>, Box<ProxyResponse>> {
        match self.client.access_token().await {
            Ok(token) => Ok(Some(token.expose_secret().to_owned())),
            Err(AuthError::NotSignedIn) => {
                let key = &self.client.config().anon_key;
                Ok((!key.starts_with("sb_")).then(|| key.clone()))
            }
            Err(e) => Err(Box::new(ProxyResponse::error(
                503,
                "session_unavailable",
                &format!(
                    "The session's access token cannot be renewed now ({}).",
                    e.code()
                ),
            ))),
        }
    }

    async fn send(
        &self,
        method: &reqwest::Method,
        request: &ProxyRequest,
        bearer: &Option<String>,
    ) -> Result<ProxyResponse, Box<ProxyResponse>> {
        let mut call = self.http.request(
            method.clone(),
            format!("{}{}", self.base, request.path_and_query),
        );
        for (name, value) in &request.headers {
            if DROPPED_REQUEST.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                continue;
            }
            call = call.header(name.as_str(), value.as_slice());
        }
        call = call.header("apikey", self.client.config().anon_key.as_str());
        if let Some(bearer) = bearer {
            call = call.bearer_auth(bearer);
        }
        if !request.body.is_empty() {
            call = call.body(request.body.clone());
        }
        let mut answer = call.send().await.map_err(|e| Box::new(transport(&e)))?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .filter(|(name, _)| !DROPPED_RESPONSE.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        if answer
            .content_length()
            .is_some_and(|n| n > self.cfg.max_body as u64)
        {
            return Err(Box::new(too_large(self.cfg.max_body)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| Box::new(transport(&e)))? {
            if body.len() + chunk.len() > self.cfg.max_body {
                return Err(Box::new(too_large(self.cfg.max_body)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(ProxyResponse {
            status,
            headers,
            body,
        })
    }
}

fn too_large(max: usize) -> ProxyResponse {
    ProxyResponse::error(
        502,
        "response_too_large",
        &format!(
            "The answer is larger than the proxy's limit ({} MiB).",
            max / (1024 * 1024)
        ),
    )
}

fn transport(e: &reqwest::Error) -> ProxyResponse {
    if e.is_timeout() {
        ProxyResponse::error(504, "proxy_timeout", "The project did not answer in time.")
    } else {
        ProxyResponse::error(502, "proxy_unreachable", "The project cannot be reached.")
    }
}

/// PostgREST (`{"code":"PGRST303","message":"JWT expired"}`), Storage (`jwt expired`) and
/// the functions gateway name an expired token in their 401 bodies.
fn says_jwt_expired(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    text.contains("jwt expired") || text.contains("token is expired") || text.contains("pgrst303")
}

/// The project's root: the REST URL without `/rest/v1`, else the auth URL without
/// `/auth/v1` (a bare GoTrue, like the emulator, serves the stand-ins at its root).
fn project_base(cfg: &crate::AuthConfig) -> String {
    if let Some(rest) = cfg.rest_url.as_deref().filter(|r| !r.trim().is_empty()) {
        let rest = rest.trim().trim_end_matches('/');
        return rest.strip_suffix("/rest/v1").unwrap_or(rest).to_owned();
    }
    let url = cfg.url.trim().trim_end_matches('/');
    url.strip_suffix("/auth/v1").unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_apis_go_through() {
        for ok in [
            "/rest/v1/notes?select=*",
            "/rest/v1/rpc/tessera_list_sessions",
            "/storage/v1/object/avatars/a/b.png",
            "/functions/v1/whoami",
            "/graphql/v1",
            "/graphql/v1?query=x",
            "/rest/v1/",
        ] {
            assert!(is_proxied(ok), "{ok}");
        }
        for bad in [
            "/auth/v1/user",
            "/auth/v1/token?grant_type=refresh_token",
            "/rest/v1/../../auth/v1/user",
            "/rest/v1/./x",
            "/rest/v1/%2e%2e/auth/v1/user",
            "/rest/v1/%2E%2E%2fauth",
            "/rest/v1/a%2fb",
            "/rest/v1//auth/v1",
            "/rest/v1\\..\\auth",
            "/restx/v1/a",
            "/graphql/v10",
            "/",
            "",
            "rest/v1/notes",
            "/_emulator/issued-tokens",
            "/admin/users",
        ] {
            assert!(!is_proxied(bad), "{bad}");
        }
    }

    #[test]
    fn the_project_root_comes_from_the_auth_or_rest_url() {
        let mut cfg = crate::AuthConfig::new("https://abc.supabase.co/auth/v1/", "k");
        assert_eq!(project_base(&cfg), "https://abc.supabase.co");
        cfg.url = "http://127.0.0.1:9999".into();
        assert_eq!(project_base(&cfg), "http://127.0.0.1:9999");
        cfg.rest_url = Some("https://api.example.com/rest/v1".into());
        assert_eq!(project_base(&cfg), "https://api.example.com");
    }

    #[test]
    fn expired_jwt_answers_are_recognised() {
        assert!(says_jwt_expired(
            br#"{"code":"PGRST303","message":"JWT expired"}"#
        ));
        assert!(says_jwt_expired(
            br#"{"statusCode":"400","message":"jwt expired"}"#
        ));
        assert!(!says_jwt_expired(br#"{"message":"Invalid JWT"}"#));
    }
}
