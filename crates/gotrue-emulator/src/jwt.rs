//! Access tokens, API keys and the other secrets the emulator mints.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::es256::Es256Key;
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

/// The signing keys: HS256 under the configured secret (its raw bytes, as GoTrue uses
/// them) and, in ES256 mode, a P-256 key that signs access tokens instead.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    es256: Option<EsKeys>,
    /// Supabase's non-JWT API keys (`sb_publishable_…`, `sb_secret_…`) and the role of the
    /// JWT key each stands for.
    opaque: Vec<(String, &'static str)>,
}

#[derive(Clone)]
struct EsKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_jwk: Value,
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
    /// HS256 only (GoTrue's default: `GOTRUE_JWT_KEYS` empty).
    #[cfg(test)]
    pub fn new(secret: &str) -> Self {
        Self::with_signing_key(secret, None)
    }

    /// With `es256`, access tokens are signed ES256 with its `kid` in the header.
    pub fn with_signing_key(secret: &str, es256: Option<&Es256Key>) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            es256: es256.map(|key| {
                let (encoding, decoding) = key.jwt_keys();
                EsKeys {
                    kid: key.kid().to_owned(),
                    encoding,
                    decoding,
                    public_jwk: key.public_jwk(),
                }
            }),
            opaque: Vec::new(),
        }
    }

    /// Accepts `key` (Supabase's `sb_publishable_…` or `sb_secret_…`) as the JWT API key
    /// of `role` (`anon` or `service_role`).
    pub fn with_opaque_key(mut self, key: Option<&str>, role: &'static str) -> Self {
        if let Some(key) = key {
            self.opaque.push((key.to_owned(), role));
        }
        self
    }

    /// The role of a configured non-JWT API key, compared in constant time.
    fn opaque_role(&self, token: &str) -> Option<&'static str> {
        self.opaque
            .iter()
            .find(|(key, _)| constant_time_eq(key.as_bytes(), token.as_bytes()))
            .map(|(_, role)| *role)
    }

    /// Signs an access token: ES256 with the key's `kid` in ES256 mode, else HS256.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        match &self.es256 {
            Some(es) => {
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(es.kid.clone());
                // Signing with a valid key and serde-serializable claims cannot fail.
                jsonwebtoken::encode(&header, claims, &es.encoding).unwrap_or_default()
            }
            None => self.sign_hs256(claims),
        }
    }

    fn sign_hs256<T: Serialize>(&self, claims: &T) -> String {
        let header = Header::new(Algorithm::HS256);
        // Signing HS256 with serde-serializable claims cannot fail.
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }

    /// The public keys `GET /.well-known/jwks.json` lists: none in HS256 mode (a symmetric
    /// key is never published), the P-256 key in ES256 mode.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.es256.iter().map(|es| es.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// The `kid` of the ES256 signing key, if any.
    pub fn kid(&self) -> Option<&str> {
        self.es256.as_ref().map(|es| es.kid.as_str())
    }

    /// Verifies signature and expiry against `now` (no leeway, as GoTrue).
    ///
    /// HS256 mode accepts HS256 only. ES256 mode accepts ES256 under its own `kid`, and
    /// HS256 under the secret only for tokens without a `sub`: the API keys (`anon`,
    /// `service_role`) stay HS256 JWTs under the JWT secret, as the legacy keys of a
    /// Supabase project that moved to signing keys do. A user token signed HS256 is refused
    /// as GoTrue with only an ES256 key refuses it ("signing method HS256 is invalid").
    ///
    /// A configured non-JWT API key reads as the claims of the JWT key it stands for (its
    /// role, no `sub`, no expiry), as Supabase's gateway swaps it for that JWT.
    pub fn verify(&self, token: &str, now: i64) -> Result<BearerClaims, JwtError> {
        self.verify_claims(token, now).map(|(claims, _)| claims)
    }

    /// [`Keys::verify`], also returning the whole claims object (`{"role": …}` for a
    /// non-JWT API key).
    pub fn verify_claims(&self, token: &str, now: i64) -> Result<(BearerClaims, Value), JwtError> {
        if let Some(role) = self.opaque_role(token) {
            let claims = BearerClaims {
                sub: None,
                exp: None,
                role: Some(role.to_owned()),
                session_id: None,
            };
            return Ok((claims, serde_json::json!({ "role": role })));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Invalid(e.to_string()))?;
        let decoding = match (header.alg, &self.es256) {
            (Algorithm::HS256, _) => &self.decoding,
            (Algorithm::ES256, Some(es)) => {
                if header.kid.as_deref() != Some(es.kid.as_str()) {
                    return Err(JwtError::Invalid(format!(
                        "no key found for kid {:?}",
                        header.kid.unwrap_or_default()
                    )));
                }
                &es.decoding
            }
            (alg, _) => {
                return Err(JwtError::Invalid(format!(
                    "signing method {alg:?} is invalid"
                )));
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(token, decoding, &validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        let claims: BearerClaims = serde_json::from_value(data.claims.clone())
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        let user_token = claims.sub.as_deref().is_some_and(|s| !s.is_empty());
        if self.es256.is_some() && header.alg == Algorithm::HS256 && user_token {
            return Err(JwtError::Invalid("signing method HS256 is invalid".into()));
        }
        match claims.exp {
            Some(exp) if exp <= now => Err(JwtError::Expired),
            _ => Ok((claims, data.claims)),
        }
    }

    /// An API key such as Supabase's `anon` and `service_role` keys: a JWT with a role, the
    /// demo issuer and a far expiry, signed HS256 with the JWT secret in either mode (the
    /// ES256 key signs access tokens only; see [`Keys::verify`]).
    pub fn api_key(&self, role: &str) -> String {
        #[derive(Serialize)]
        struct KeyClaims<'a> {
            iss: &'a str,
            role: &'a str,
            exp: i64,
        }
        self.sign_hs256(&KeyClaims {
            iss: "supabase-demo",
            role,
            exp: 1_983_812_996,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    #[test]
    fn es256_mode_signs_with_kid_and_refuses_hs256_user_tokens() {
        #[derive(Serialize)]
        struct C {
            sub: Option<&'static str>,
            exp: i64,
        }
        let secret = "secret-one-secret-one-secret-one-secret";
        let key = Es256Key::generate();
        let keys = Keys::with_signing_key(secret, Some(&key));
        let user = C {
            sub: Some("x"),
            exp: 100,
        };
        let token = keys.sign(&user);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(keys.verify(&token, 99).map(|c| c.sub), Ok(Some("x".into())));
        assert_eq!(keys.jwks()["keys"][0]["kid"], key.kid());
        // Another key under the same kid, or the HS256 secret, cannot make a user token.
        let impostor = Keys::with_signing_key(
            secret,
            Some(
                &Es256Key::from_jwk(&{
                    let mut jwk = Es256Key::generate().private_jwk();
                    jwk["kid"] = key.kid().into();
                    jwk
                })
                .unwrap(),
            ),
        );
        assert!(matches!(
            keys.verify(&impostor.sign(&user), 0),
            Err(JwtError::Invalid(_))
        ));
        let hs = Keys::new(secret);
        assert!(matches!(
            keys.verify(&hs.sign(&user), 0),
            Err(JwtError::Invalid(_))
        ));
        // The API keys stay HS256 under the secret and are still accepted.
        let anon = keys.api_key("anon");
        assert_eq!(
            jsonwebtoken::decode_header(&anon).unwrap().alg,
            Algorithm::HS256
        );
        assert_eq!(
            keys.verify(&anon, 0).map(|c| c.role),
            Ok(Some("anon".into()))
        );
        // HS256 mode publishes nothing and refuses ES256 tokens.
        assert_eq!(hs.jwks(), serde_json::json!({ "keys": [] }));
        assert!(matches!(hs.verify(&token, 0), Err(JwtError::Invalid(_))));
    }
}
