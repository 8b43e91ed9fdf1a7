//! Deep links and redirects that come back into the app, parsed strictly.
//!
//! Accepted shapes (base `tessera://auth` by default):
//! - `…/callback?flow=ID&code=CODE` — finishes a PKCE flow this engine started;
//! - `…/callback?flow=ID&error=…&error_code=…&error_description=…` — that flow failed
//!   (GoTrue leaves `error` out for a status its OAuth table lacks: `error_code` alone counts);
//! - `…/callback?flow=ID&message=…` — half of a flow: the first address of a secure email
//!   change is confirmed, the other is still to come;
//! - `…/callback?flow=ID&token_hash=HASH&type=TYPE` and `…/confirm?flow=ID&token_hash=…`
//!   — an email link (its flow id comes from the redirect URL this engine sent, through
//!   the email template's `{{ .RedirectTo }}`) verified in the app;
//! - `…/signed-out` (no parameters) — "check with the server now": a web dashboard that
//!   signed this app's session out sends the person here. The link carries no authority;
//!   the engine asks the server and signs out only if the server says the session is gone.
//!
//! Tokens in a fragment (`#access_token=…`, the implicit flow) are refused: this engine
//! never starts implicit flows, so such a link can only be injected.

use std::collections::HashMap;

use url::Url;

use crate::error::AuthError;
use crate::secret::OneTimeCode;

/// A parsed callback.
#[derive(Debug, PartialEq)]
pub enum Callback {
    Code {
        flow: String,
        code: String,
    },
    Error {
        flow: Option<String>,
        code: String,
        description: String,
    },
    TokenHash {
        flow: String,
        token_hash: OneTimeCode,
        kind: String,
    },
    /// GoTrue's message redirect for a PKCE flow (`prepRedirectURL`): no code yet.
    Message {
        flow: String,
    },
    SignedOut,
}

const VERIFY_TYPES: &[&str] = &[
    "signup",
    "invite",
    "magiclink",
    "recovery",
    "email_change",
    "email",
];

fn reject(why: &str) -> AuthError {
    AuthError::InvalidCallback(why.to_owned())
}

fn token_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

/// An email link: `token_hash` and `type`, and the flow of this app that sent the mail.
fn token_hash_link(
    query: &HashMap<String, String>,
    flow: Option<String>,
) -> Result<Callback, AuthError> {
    if query.contains_key("code") || query.contains_key("error") {
        return Err(reject("the link mixes a code and a token_hash"));
    }
    let hash = query
        .get("token_hash")
        .ok_or_else(|| reject("the link has no token_hash"))?;
    if !token_like(hash, 256) {
        return Err(reject("malformed token_hash"));
    }
    let kind = query.get("type").map(String::as_str).unwrap_or("email");
    if !VERIFY_TYPES.contains(&kind) {
        return Err(reject("unknown link type"));
    }
    // Without the flow id, anybody's link (an attacker's own magic link, say) would sign
    // this app into the account it belongs to.
    let flow = flow.ok_or_else(|| reject("the link names no sign-in of this app"))?;
    Ok(Callback::TokenHash {
        flow,
        token_hash: OneTimeCode::new(hash.clone()),
        kind: kind.to_owned(),
    })
}

/// Parses `input` against the configured base (`scheme://host`, e.g. `tessera://auth`).
pub fn parse(input: &str, base: &str) -> Result<Callback, AuthError> {
    if input.len() > 4096 {
        return Err(reject("the link is too long"));
    }
    // The URL parser would silently drop surrounding spaces and inner tabs or newlines; a
    // link that needs such repair was not made by the auth server or this app.
    if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(reject("the link contains spaces or control characters"));
    }
    // The link must spell the base exactly (case aside), so that the URL parser's
    // leniency (empty user info, empty port, …) cannot make another link look like ours.
    let prefix = base.trim_end_matches('/');
    let spelled_like_base = input
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        && input[prefix.len()..].starts_with('/');
    let url = Url::parse(input).map_err(|_| reject("not a URL"))?;
    if !spelled_like_base {
        return Err(reject("the link is not for this app"));
    }
    let base = Url::parse(base)
        .map_err(|_| AuthError::Config(format!("callback base {base:?} is not a URL")))?;
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port() != base.port()
    {
        return Err(reject("the link is not for this app"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reject("the link carries credentials"));
    }
    let mut query: HashMap<String, String> = HashMap::new();
    for (k, v) in url.query_pairs() {
        if query.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(reject("a parameter appears twice"));
        }
    }
    let fragment: HashMap<String, String> = url
        .fragment()
        .map(|f| {
            url::form_urlencoded::parse(f.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if fragment.contains_key("access_token") || fragment.contains_key("refresh_token") {
        return Err(reject(
            "tokens in a link are refused (this app only uses PKCE)",
        ));
    }
    let base_path = base.path().trim_end_matches('/');
    let path = url
        .path()
        .strip_prefix(base_path)
        .unwrap_or(url.path())
        .trim_end_matches('/');
    match path {
        "/callback" | "/confirm" => {
            let flow = query.get("flow").cloned();
            if let Some(flow) = &flow
                && !token_like(flow, 64)
            {
                return Err(reject("malformed flow id"));
            }
            if query.contains_key("token_hash") || path == "/confirm" {
                return token_hash_link(&query, flow);
            }
            let get = |k: &str| query.get(k).or_else(|| fragment.get(k)).cloned();
            let error = get("error").or_else(|| get("error_code"));
            if let Some(error) = error {
                // The code reaches the UI as an error code: it must look like one.
                let code = get("error_code").filter(|c| !c.is_empty()).unwrap_or(error);
                if !token_like(&code, 64) {
                    return Err(reject("malformed error code"));
                }
                let description: String = get("error_description")
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| code.clone())
                    .chars()
                    .take(500)
                    .collect();
                return Ok(Callback::Error {
                    flow,
                    code,
                    description,
                });
            }
            if !query.contains_key("code") && query.contains_key("message") {
                let flow = flow.ok_or_else(|| reject("the message names no flow of this app"))?;
                return Ok(Callback::Message { flow });
            }
            let code = query
                .get("code")
                .ok_or_else(|| reject("the callback has no code"))?;
            if !token_like(code, 256) {
                return Err(reject("malformed code"));
            }
            let flow = flow.ok_or_else(|| reject("the callback names no flow of this app"))?;
            Ok(Callback::Code {
                flow,
                code: code.clone(),
            })
        }
        "/signed-out" => {
            if !query.is_empty() {
                return Err(reject("the sign-out landing takes no parameters"));
            }
            Ok(Callback::SignedOut)
        }
        _ => Err(reject("unknown link path")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "tessera://auth";

    #[test]
    fn accepts_the_known_shapes() {
        assert_eq!(
            parse("tessera://auth/callback?flow=abc&code=123e4567-e89b", BASE).unwrap(),
            Callback::Code {
                flow: "abc".into(),
                code: "123e4567-e89b".into()
            }
        );
        assert!(matches!(
            parse("tessera://auth/callback?flow=f1&error=access_denied&error_code=bad_oauth_callback&error_description=nope#error=access_denied", BASE).unwrap(),
            Callback::Error { code, .. } if code == "bad_oauth_callback"
        ));
        assert!(matches!(
            parse("tessera://auth/confirm?flow=f2&token_hash=pkce_abc123&type=magiclink", BASE).unwrap(),
            Callback::TokenHash { kind, flow, .. } if kind == "magiclink" && flow == "f2"
        ));
        assert!(matches!(
            parse("tessera://auth/callback?flow=f3&token_hash=abc123&type=signup", BASE).unwrap(),
            Callback::TokenHash { kind, flow, .. } if kind == "signup" && flow == "f3"
        ));
        assert_eq!(
            parse("tessera://auth/signed-out", BASE).unwrap(),
            Callback::SignedOut
        );
        // GoTrue's redirects as a real server (v2.196) writes them: the query sorted, the
        // message of a secure email change's first link, an error without `error`.
        assert_eq!(
            parse("tessera://auth/callback?code=c0de-1&flow=f4", BASE).unwrap(),
            Callback::Code {
                flow: "f4".into(),
                code: "c0de-1".into()
            }
        );
        assert_eq!(
            parse("tessera://auth/callback?flow=f5&message=Confirmation+link+accepted.+Please+proceed+to+confirm+link+sent+to+the+other+email#message=Confirmation+link+accepted&sb=", BASE).unwrap(),
            Callback::Message { flow: "f5".into() }
        );
        assert!(matches!(
            parse("tessera://auth/callback?error_code=flow_state_not_found&error_description=No+flow&flow=f6", BASE).unwrap(),
            Callback::Error { code, flow: Some(flow), .. } if code == "flow_state_not_found" && flow == "f6"
        ));
        assert!(parse("tessera://auth/signed-out?state=s1", BASE).is_err());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "https://auth/callback?flow=a&code=b",
            "tessera://evil/callback?flow=a&code=b",
            "tessera://auth/other?flow=a&code=b",
            "tessera://auth/callback?code=b",
            "tessera://auth/callback?flow=a",
            "tessera://auth/callback?flow=a&code=b&code=c",
            "tessera://auth/callback?flow=a&code=%3Cscript%3E",
            "tessera://auth/callback#access_token=x&refresh_token=y",
            "tessera://auth/confirm?flow=a&token_hash=x&type=bogus",
            // An email link that names no flow of this app: anybody's link.
            "tessera://auth/confirm?token_hash=x&type=magiclink",
            "tessera://auth/callback?token_hash=x&type=magiclink",
            "tessera://auth/confirm?flow=a&token_hash=x&code=c",
            "tessera://user:pw@auth/callback?flow=a&code=b",
            "not a url",
            " tessera://auth/callback?flow=a&code=b",
            "tessera://@auth/callback?flow=a&code=b",
            "tessera://auth:/callback?flow=a&code=b",
            "tessera://auth/callback?flow=a&error&error_description=x",
            "tessera://auth/callback?flow=a&error=%3Cb%3E",
            "tessera://au\nth/callback?flow=a&code=b",
            "tessera://auth/callback?flow=a&code=b\t",
        ] {
            assert!(parse(bad, BASE).is_err(), "{bad} should be refused");
        }
    }
}
