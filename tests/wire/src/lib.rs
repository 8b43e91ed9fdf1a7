//! A test's view of GoTrue over HTTP, shared by the emulator's own tests and the contract
//! scenarios (which also run against a real GoTrue): an answer read whole ([`Reply`]) with
//! GoTrue's error shape asserted, a JWT's claims, a session's fields, PKCE pairs, and the
//! parameters of a redirect.

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// A response: status, headers and the body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("a Location header in {} {}", self.status, self.text))
            .to_owned()
    }

    /// Asserts a GoTrue error in the initial (unversioned) shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.text);
        assert_eq!(
            self.json["error_code"], code,
            "error_code of {:?}",
            self.text
        );
        assert_eq!(self.json["code"], status, "code of {:?}", self.text);
        assert!(self.json["msg"].is_string(), "msg of {:?}", self.text);
        assert_eq!(self.header("x-sb-error-code"), Some(code));
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert!(
            self.status.is_success(),
            "expected success, got {} {}",
            self.status,
            self.text
        );
        &self.json
    }
}

/// The payload of a JWT, without checking its signature.
#[track_caller]
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[track_caller]
pub fn access(session: &Value) -> String {
    session["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an access token in {session}"))
        .to_owned()
}

#[track_caller]
pub fn refresh_token(session: &Value) -> String {
    session["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a refresh token in {session}"))
        .to_owned()
}

#[track_caller]
pub fn user_id(session: &Value) -> String {
    session["user"]["id"]
        .as_str()
        .or_else(|| session["id"].as_str())
        .unwrap_or_else(|| panic!("a user id in {session}"))
        .to_owned()
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = format!("verifier-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Query or fragment parameters of a URL part.
pub fn params_of(part: &str) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(part.as_bytes())
        .into_owned()
        .collect()
}

pub fn fragment(location: &str) -> std::collections::HashMap<String, String> {
    params_of(location.split_once('#').map(|(_, f)| f).unwrap_or_default())
}

pub fn query(location: &str) -> std::collections::HashMap<String, String> {
    let before_fragment = location.split('#').next().unwrap_or_default();
    params_of(
        before_fragment
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default(),
    )
}
