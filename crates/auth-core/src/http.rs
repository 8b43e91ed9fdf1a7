//! The one HTTP client builder every outgoing call uses (auth server, logout hook).

use std::time::Duration;

use url::Url;

use crate::error::AuthError;

/// Checks an endpoint's URL: `https`, or plain `http` only on the loopback interface
/// (`127.0.0.0/8`, `::1`, `localhost`: the emulators and the embedded server). Tokens
/// must never cross a network in the clear.
pub(crate) fn check_url(url: &str, what: &str) -> Result<Url, AuthError> {
    let parsed = Url::parse(url).map_err(|e| AuthError::Config(format!("{what} {url:?}: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(AuthError::Config(format!(
            "{what} {url:?} must use https (plain http is allowed only on 127.0.0.1, ::1 \
             and localhost)"
        ))),
        _ => Err(AuthError::Config(format!(
            "{what} {url:?} must be an https URL"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An HTTP client for one http(s) endpoint: time-outs, no redirects, our `User-Agent`.
/// The URL must pass [`check_url`].
pub(crate) fn http_client(
    url: &str,
    what: &str,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, AuthError> {
    check_url(url, what)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_everywhere_but_loopback() {
        for ok in [
            "https://x.supabase.co/auth/v1",
            "http://127.0.0.1:9999",
            "http://127.9.9.9",
            "http://[::1]:1",
            "http://LOCALHOST:1",
        ] {
            assert!(check_url(ok, "auth URL").is_ok(), "{ok}");
        }
        for bad in [
            "http://x.supabase.co",
            "http://localhost.evil.example",
            "http://0.0.0.0:9999",
            "http://[::ffff:127.0.0.1]:1",
            "ftp://127.0.0.1",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert_eq!(
                check_url(bad, "auth URL").unwrap_err().code(),
                "config_error",
                "{bad}"
            );
        }
    }
}
