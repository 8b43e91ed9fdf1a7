//! Which `redirect_to` targets are allowed, by GoTrue's rules (`GetReferrer` and
//! `IsRedirectURLValid` in `internal/utilities/request.go`, v2.196).
//!
//! GoTrue tries the requested `redirect_to` (its `redirect_to` header, then the query or
//! form), then the `Referer` header, then settles on the site URL — silently: a target
//! that is not allowed is never an error, the user just lands on the site URL. A target is
//! allowed when it is the site itself (same scheme and host, and same port unless the host
//! is a loopback name), when its host is a loopback IP literal (and never another IP
//! literal, whatever the allow list says), or when the URL without its fragment matches a
//! pattern of the allow list (gobwas globs with `.` and `/` as separators). An `http(s)`
//! host must look like a host name.

use axum::http::HeaderMap;
use std::collections::HashMap;
use url::Url;

use crate::config::Config;

/// Is `target` an allowed redirect?
pub fn is_allowed(config: &Config, target: &str) -> bool {
    if target.is_empty() {
        return false;
    }
    let (Ok(site), Ok(url)) = (Url::parse(&config.site_url), Url::parse(target)) else {
        return false;
    };
    // Go compares the host as written (`url.Hostname()`); the url crate would normalise it
    // (lower case, `2130706433` read as `127.0.0.1`).
    let host = raw_host(target);
    if raw_host(&config.site_url) == host
        && site.scheme() == url.scheme()
        && (site.port() == url.port() || is_loopback_name(host))
    {
        return true;
    }
    let is_http = matches!(url.scheme(), "http" | "https");
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
        // A decimal IP address (`http://2130706433/`) is never allowed.
        return false;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    if is_http && !is_regular_hostname(host) {
        return false;
    }
    let without_fragment = target.split('#').next().unwrap_or(target);
    config
        .uri_allow_list
        .iter()
        .any(|pattern| glob_match(pattern, without_fragment))
}

/// Go's `url.Hostname()` of a URL as written: the authority without user info, port or
/// IPv6 brackets ("" when there is none).
fn raw_host(url: &str) -> &str {
    let Some((_, rest)) = url.split_once("://") else {
        return "";
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    host_port.split(':').next().unwrap_or_default()
}

/// GoTrue's `isLocalhost`: names whose port may differ from the site URL's.
fn is_loopback_name(host: &str) -> bool {
    matches!(
        host.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "::"
    )
}

/// `^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$`
fn is_regular_hostname(host: &str) -> bool {
    let b = host.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
}

/// The redirect GoTrue would use: the requested one if allowed, else the `Referer` if
/// allowed, else the site URL.
pub fn resolve(config: &Config, requested: Option<&str>, referer: Option<&str>) -> String {
    [requested, referer]
        .into_iter()
        .flatten()
        .find(|target| is_allowed(config, target))
        .map_or_else(|| config.site_url.clone(), str::to_owned)
}

/// GoTrue's `GetReferrer` for a request: `redirect_to` (header first, then the query), then
/// `Referer`, then the site URL.
pub fn for_request(
    config: &Config,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let requested = header("redirect_to").or_else(|| {
        query
            .get("redirect_to")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    });
    resolve(config, requested, header("referer"))
}

/// A gobwas glob (GoTrue compiles the allow list with `glob.MustCompile(uri, '.', '/')`),
/// matched against the whole text: `*` is any run of characters without a separator, `**`
/// any run at all, `?` one character that is not a separator, `[abc]`, `[a-z]`, `[!…]` one
/// character in (or not in) the class, `{a,b}` one of the alternatives, `\x` the character
/// `x`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    go(&pattern, &text)
}

fn is_sep(c: char) -> bool {
    c == '.' || c == '/'
}

fn go(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
        Some('*') => {
            for i in 0..=t.len() {
                if go(&p[1..], &t[i..]) {
                    return true;
                }
                if i < t.len() && is_sep(t[i]) {
                    break;
                }
            }
            false
        }
        Some('?') => !t.is_empty() && !is_sep(t[0]) && go(&p[1..], &t[1..]),
        Some('[') => match p.iter().position(|&c| c == ']') {
            Some(end) if end > 1 => {
                let (negated, class) = match p[1] {
                    '!' => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let Some(&c) = t.first() else {
                    return false;
                };
                in_class(class, c) != negated && go(&p[end + 1..], &t[1..])
            }
            _ => t.first() == Some(&'[') && go(&p[1..], &t[1..]),
        },
        Some('{') => match closing_brace(p) {
            Some(end) => {
                let rest = &p[end + 1..];
                split_alternatives(&p[1..end]).into_iter().any(|alt| {
                    let mut joined = alt.to_vec();
                    joined.extend_from_slice(rest);
                    go(&joined, t)
                })
            }
            None => t.first() == Some(&'{') && go(&p[1..], &t[1..]),
        },
        Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
        Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
    }
}

fn in_class(class: &[char], c: char) -> bool {
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            if class[i] <= c && c <= class[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if class[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// The index of the `}` closing the `{` at `p[0]` (nested braces counted).
fn closing_brace(p: &[char]) -> Option<usize> {
    let mut depth = 0;
    for (i, &c) in p.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The top-level, comma-separated alternatives of a `{…}` body.
fn split_alternatives(body: &[char]) -> Vec<&[char]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, &c) in body.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_admit_the_app_and_loopback() {
        let config = Config::default();
        assert!(is_allowed(&config, "tessera://auth/callback"));
        assert!(is_allowed(&config, "http://localhost:5173/cb"));
        assert!(is_allowed(&config, "http://127.0.0.1:41234/anything"));
        assert!(is_allowed(&config, "http://[::1]:8080/"));
        assert!(!is_allowed(&config, "https://evil.example.com/"));
        assert!(!is_allowed(&config, "other://auth/callback"));
        assert!(!is_allowed(&config, "not a url"));
        assert_eq!(
            resolve(&config, Some("https://evil.example.com"), None),
            config.site_url
        );
    }

    #[test]
    fn the_site_needs_its_scheme_and_port_unless_loopback() {
        let config = Config {
            site_url: "https://app.example.com".into(),
            uri_allow_list: vec![],
            ..Config::default()
        };
        assert!(is_allowed(&config, "https://app.example.com/welcome"));
        assert!(!is_allowed(&config, "http://app.example.com/welcome"));
        assert!(!is_allowed(&config, "https://app.example.com:8443/x"));
        let local = Config {
            site_url: "http://localhost:3000".into(),
            uri_allow_list: vec![],
            ..Config::default()
        };
        assert!(is_allowed(&local, "http://localhost:5173/cb"));
    }

    #[test]
    fn ip_literals_and_odd_hosts_are_judged_before_the_allow_list() {
        let config = Config {
            uri_allow_list: vec!["**".into()],
            ..Config::default()
        };
        assert!(!is_allowed(&config, "http://10.0.0.1/x"));
        assert!(!is_allowed(&config, "http://2130706433/x"));
        assert!(!is_allowed(&config, "https://a_b.example.com/x"));
        assert!(is_allowed(&config, "http://127.0.0.2/x"));
        assert!(is_allowed(&config, "myapp://anything"));
    }

    #[test]
    fn the_fragment_is_not_matched_and_the_referer_is_the_second_choice() {
        let config = Config {
            uri_allow_list: vec!["https://app.example.com/cb".into()],
            ..Config::default()
        };
        assert!(is_allowed(&config, "https://app.example.com/cb#x"));
        assert_eq!(
            resolve(
                &config,
                Some("https://evil.example.com/"),
                Some("https://app.example.com/cb")
            ),
            "https://app.example.com/cb"
        );
        assert_eq!(resolve(&config, None, None), config.site_url);
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "https://*.example.com/**",
            "https://app.example.com/a/b"
        ));
        assert!(!glob_match(
            "https://*.example.com/**",
            "https://a.b.example.com/x"
        ));
        assert!(glob_match("myapp://**", "myapp://"));
        assert!(glob_match(
            "http://localhost:*/**",
            "http://localhost:3000/x"
        ));
        assert!(!glob_match(
            "http://localhost:*/**",
            "http://localhost.evil.com:3000/x"
        ));
        // What Tessera's callback URL needs: the flow id has no separator.
        let callback = "tessera://auth/callback?flow=AbC-_12xyzAbC-_1";
        assert!(glob_match("tessera://auth/callback*", callback));
        assert!(glob_match("tessera://auth/callback**", callback));
        assert!(!glob_match("tessera://auth/callback", callback));
        assert!(glob_match(
            "https://{app,www}.example.com/[a-c]?",
            "https://www.example.com/b1"
        ));
        assert!(!glob_match(
            "https://{app,www}.example.com/[!a-c]",
            "https://app.example.com/b"
        ));
        assert!(glob_match(
            r"https://app.example.com/\*",
            "https://app.example.com/*"
        ));
    }
}
