//! Reading the claims of an access token the server issued. The signature is not checked
//! here: the engine is not the token's audience, and the server checks it on every
//! request. The claims only label the session (`session_id`, `aal`) for the UI.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Longer tokens are refused unread (GoTrue's are well under 2 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The claims the engine reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    /// GoTrue's `session_id`; SuperTokens calls it `sessionHandle`.
    #[serde(default, alias = "sessionHandle")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub aal: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub is_anonymous: Option<bool>,
    /// GoTrue's authentication methods of this session, most recent first:
    /// `[{"method": "password", "timestamp": 1700000000}, …]`. Read leniently (another
    /// server's shape is ignored, not an error).
    #[serde(default)]
    pub amr: Option<serde_json::Value>,
}

/// One authentication of a session (`amr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub method: String,
    pub timestamp: Option<i64>,
}

impl Claims {
    /// The session's authentications, oldest (the sign-in) first.
    pub fn authentications(&self) -> Vec<Authentication> {
        let Some(serde_json::Value::Array(entries)) = &self.amr else {
            return Vec::new();
        };
        let mut out: Vec<Authentication> = entries
            .iter()
            .filter_map(|e| match e {
                serde_json::Value::String(method) => Some(Authentication {
                    method: method.clone(),
                    timestamp: None,
                }),
                serde_json::Value::Object(o) => Some(Authentication {
                    method: o.get("method")?.as_str()?.to_owned(),
                    timestamp: o.get("timestamp").and_then(serde_json::Value::as_i64),
                }),
                _ => None,
            })
            .filter(|a| !a.method.is_empty() && a.method.len() <= 64)
            .take(16)
            .collect();
        out.reverse();
        out
    }
}

/// Why a token's claims could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("a JWT has three dot-separated parts")]
    Shape,
    #[error("a JWT part is not base64url")]
    Encoding,
    #[error("the JWT header is not a JSON object naming its algorithm")]
    Header,
    #[error("the JWT claims are not a JSON object of the expected types")]
    Payload,
}

/// Decodes the header and claims of a compact JWS (`header.claims.signature`).
pub fn decode_claims(token: &str) -> Result<Claims, ClaimsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ClaimsError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::Shape);
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(ClaimsError::Shape);
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| ClaimsError::Encoding)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| ClaimsError::Encoding)?;
    URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| ClaimsError::Encoding)?;
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header: Header = serde_json::from_slice(&header).map_err(|_| ClaimsError::Header)?;
    if header.alg.is_empty() {
        return Err(ClaimsError::Header);
    }
    serde_json::from_slice(&payload).map_err(|_| ClaimsError::Payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn reads_gotrue_claims_and_refuses_other_shapes() {
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(r#"{"sub":"u1","session_id":"s1","aal":"aal1","exp":1700000000,"extra":[1]}"#),
            b64("sig")
        );
        let claims = decode_claims(&token).unwrap();
        assert_eq!(claims.session_id.as_deref(), Some("s1"));
        assert!(claims.authentications().is_empty());
        let with_amr = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"ES256","kid":"k"}"#),
            b64(
                r#"{"amr":[{"method":"totp","timestamp":20},{"method":"password","timestamp":10},7]}"#
            ),
            b64("sig")
        );
        let methods = decode_claims(&with_amr).unwrap().authentications();
        assert_eq!(
            methods,
            [
                Authentication {
                    method: "password".into(),
                    timestamp: Some(10)
                },
                Authentication {
                    method: "totp".into(),
                    timestamp: Some(20)
                },
            ]
        );
        assert_eq!(claims.exp, Some(1_700_000_000));
        assert_eq!(decode_claims("a.b"), Err(ClaimsError::Shape));
        assert_eq!(
            decode_claims(&format!("{token}.x")),
            Err(ClaimsError::Shape)
        );
        assert_eq!(decode_claims("!!.e30.c2ln"), Err(ClaimsError::Encoding));
        let no_alg = format!("{}.{}.{}", b64("{}"), b64("{}"), b64("s"));
        assert_eq!(decode_claims(&no_alg), Err(ClaimsError::Header));
        let bad_exp = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"x"}"#),
            b64(r#"{"exp":"soon"}"#),
            b64("s")
        );
        assert_eq!(decode_claims(&bad_exp), Err(ClaimsError::Payload));
        assert_eq!(
            decode_claims(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(ClaimsError::TooLong)
        );
    }
}
