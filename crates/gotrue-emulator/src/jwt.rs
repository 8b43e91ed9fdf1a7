//! Access tokens, API keys and the other secrets the emulator mints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha224, Sha256};

use crate::db::Amr;

/// The claims GoTrue writes into an access token, in its order.
#[derive(Debug, Clone, Serialize)]
pub struct AccessClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub email: String,
    pub phone: String,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub role: String,
    pub aal: String,
    pub amr: Vec<Amr>,
    pub session_id: String,
    pub is_anonymous: bool,
}

/// What the emulator reads back from a bearer token; every field is optional so that the
/// checks can answer GoTrue's exact error for each missing piece.
#[derive(Debug, Clone, Deserialize)]
pub struct BearerClaims {
    pub sub: Option<String>,
    pub exp: Option<i64>,
    pub role: Option<String>,
    pub session_id: Option<String>,
}

/// HS256 keys derived from the configured secret (its raw bytes, as GoTrue uses them).
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// Why a bearer token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Bad signature, malformed token or wrong algorithm; the text is the parser's detail.
    Invalid(String),
    Expired,
}

impl Keys {
    pub fn new(secret: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let header = Header::new(Algorithm::HS256);
        // Signing HS256 with serde-serializable claims cannot fail.
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies signature and expiry against `now` (no leeway, as GoTrue).
    pub fn verify(&self, token: &str, now: i64) -> Result<BearerClaims, JwtError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<BearerClaims>(token, &self.decoding, &validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        match data.claims.exp {
            Some(exp) if exp <= now => Err(JwtError::Expired),
            _ => Ok(data.claims),
        }
    }

    /// An API key such as Supabase's `anon` and `service_role` keys: a JWT with a role, the
    /// demo issuer and a far expiry, signed with the same secret.
    pub fn api_key(&self, role: &str) -> String {
        #[derive(Serialize)]
        struct KeyClaims<'a> {
            iss: &'a str,
            role: &'a str,
            exp: i64,
        }
        self.sign(&KeyClaims {
            iss: "supabase-demo",
            role,
            exp: 1_983_812_996,
        })
    }
}

/// A legacy-format refresh token: 12 characters of lower-case base32, as GoTrue mints them.
pub fn new_refresh_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// GoTrue's server-side check of a refresh token's format, before any lookup.
pub fn refresh_token_format_ok(token: &str) -> bool {
    token.len() == 12
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A numeric one-time code of `len` digits.
pub fn new_otp(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// GoTrue's emailed token hash: lower-case hex of SHA-224 over address + code.
pub fn token_hash(address: &str, otp: &str) -> String {
    hex::encode(Sha224::digest(format!("{address}{otp}").as_bytes()))
}

/// Random URL-safe text of `bytes` random bytes (provider codes, fake provider tokens).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    URL_SAFE_NO_PAD.encode(buf)
}

/// PKCE methods GoTrue accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    S256,
    Plain,
}

impl PkceMethod {
    /// Case-insensitive, as GoTrue parses it.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "s256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "s256",
            Self::Plain => "plain",
        }
    }

    /// Does `verifier` answer `challenge`?
    pub fn verify(self, challenge: &str, verifier: &str) -> bool {
        match self {
            Self::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
            Self::Plain => verifier == challenge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_look_like_gotrues() {
        for _ in 0..100 {
            let t = new_refresh_token();
            assert!(refresh_token_format_ok(&t), "{t}");
        }
        assert!(!refresh_token_format_ok("short"));
        assert!(!refresh_token_format_ok("ABCDEFGHIJKL"));
    }

    #[test]
    fn verify_rejects_expired_and_forged() {
        let keys = Keys::new("secret-one-secret-one-secret-one-secret");
        #[derive(Serialize)]
        struct C {
            sub: &'static str,
            exp: i64,
        }
        let token = keys.sign(&C { sub: "x", exp: 100 });
        assert_eq!(keys.verify(&token, 99).map(|c| c.sub), Ok(Some("x".into())));
        assert_eq!(
            keys.verify(&token, 100).map(|c| c.sub),
            Err(JwtError::Expired)
        );
        let other = Keys::new("another-secret-another-secret-another");
        assert!(matches!(other.verify(&token, 0), Err(JwtError::Invalid(_))));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(PkceMethod::S256.verify(challenge, verifier));
        assert!(!PkceMethod::S256.verify(challenge, "wrong"));
        assert_eq!(PkceMethod::parse("S256"), Some(PkceMethod::S256));
    }

    #[test]
    fn token_hash_is_sha224_hex() {
        assert_eq!(token_hash("a@example.com", "123456").len(), 56);
    }
}
