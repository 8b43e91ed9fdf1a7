//! Access tokens, API keys and the other secrets the emulator mints.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::models::Amr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
