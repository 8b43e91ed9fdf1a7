//! Which `redirect_to` targets are allowed, by GoTrue's rules.
//!
//! A target is allowed when it has the same host as the site URL, is a loopback IP literal
//! (RFC 8252 native apps), or matches a glob of the allow list. A target that is not allowed
//! is silently replaced by the site URL — GoTrue answers no error.

use url::Url;

use crate::config::Config;

/// Is `target` an allowed redirect?
pub fn is_allowed(config: &Config, target: &str) -> bool {
    if target.is_empty() {
        return false;
    }
    let Ok(url) = Url::parse(target) else {
        return false;
    };
    if let (Ok(site), Some(host)) = (Url::parse(&config.site_url), url.host_str())
        && site.host_str() == Some(host)
    {
        return true;
    }
    if let Some(url::Host::Ipv4(ip)) = url.host()
        && ip.is_loopback()
    {
        return true;
    }
    if let Some(url::Host::Ipv6(ip)) = url.host()
        && ip.is_loopback()
    {
        return true;
    }
    config
        .uri_allow_list
        .iter()
        .any(|pattern| glob_match(pattern, target))
}

/// The redirect GoTrue would use: the requested one if allowed, else the site URL.
pub fn resolve(config: &Config, requested: Option<&str>) -> String {
    match requested {
        Some(target) if is_allowed(config, target) => target.to_owned(),
        _ => config.site_url.clone(),
    }
}

/// Glob match with GoTrue's separators (`.` and `/`): `*` matches any run of characters
/// without a separator, `**` any run at all, `?` one non-separator character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn is_sep(c: u8) -> bool {
        c == b'.' || c == b'/'
    }
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=t.len() {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if i < t.len() && is_sep(t[i]) {
                        break;
                    }
                }
                false
            }
            Some(b'?') => !t.is_empty() && !is_sep(t[0]) && go(&p[1..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
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
            resolve(&config, Some("https://evil.example.com")),
            config.site_url
        );
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
    }
}
