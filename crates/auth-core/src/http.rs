//! The one HTTP client builder every outgoing call uses (auth server, logout hook).

use std::time::Duration;

use url::Url;

use crate::error::AuthError;

/// An HTTP client for one http(s) endpoint: time-outs, no redirects, our `User-Agent`.
pub(crate) fn http_client(
    url: &str,
    what: &str,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, AuthError> {
    let parsed = Url::parse(url).map_err(|e| AuthError::Config(format!("{what} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AuthError::Config(format!(
            "{what} {url:?} must be http or https"
        )));
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .map_err(|e| AuthError::Config(e.to_string()))
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
