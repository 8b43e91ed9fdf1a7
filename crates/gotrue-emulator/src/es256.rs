//! The asymmetric signing key of the ES256 mode (GoTrue's `GOTRUE_JWT_KEYS` with one P-256
//! key): made at start or read from a private JWK, published as a public JWK.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

/// A P-256 private key and its key id (`kid`). Its `Debug` shows the `kid` only.
#[derive(Clone)]
pub struct Es256Key {
    secret: p256::SecretKey,
    kid: String,
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Es256Key {
    /// A fresh key (the OS-seeded CSPRNG of `rand`) with a random UUID as `kid`, as
    /// Supabase names its signing keys.
    pub fn generate() -> Self {
        use rand::Rng;
        loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill(&mut bytes);
            // Rejects only 0 and values ≥ the group order (odds about 2^-32).
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                return Self {
                    secret,
                    kid: uuid::Uuid::new_v4().to_string(),
                };
            }
        }
    }

    /// Reads a private JWK as GoTrue's `GOTRUE_JWT_KEYS` holds them: `kty` `EC`, `crv`
    /// `P-256`, `d` and a `kid` (`x`/`y`, when given, must be the key's).
    pub fn from_jwk(jwk: &Value) -> Result<Self, String> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("kty") != Some("EC") || field("crv") != Some("P-256") {
            return Err("the signing key must be an EC P-256 JWK".into());
        }
        if field("alg").is_some_and(|a| a != "ES256") {
            return Err("a P-256 signing key must have alg ES256".into());
        }
        let kid = field("kid")
            .filter(|k| !k.is_empty())
            .ok_or("the signing JWK needs a kid")?;
        let d = field("d").ok_or("the signing JWK has no private part (d)")?;
        let d = URL_SAFE_NO_PAD
            .decode(d)
            .map_err(|_| "the JWK's d is not base64url")?;
        let secret =
            p256::SecretKey::from_slice(&d).map_err(|_| "the JWK's d is not a P-256 key")?;
        let key = Self {
            secret,
            kid: kid.to_owned(),
        };
        let public = key.public_jwk();
        for coordinate in ["x", "y"] {
            if field(coordinate).is_some_and(|c| Some(c) != public[coordinate].as_str()) {
                return Err(format!("the JWK's {coordinate} does not match its d"));
            }
        }
        Ok(key)
    }

    /// The key id written into every token's header and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as `GET /.well-known/jwks.json` lists it.
    pub fn public_jwk(&self) -> Value {
        let point = self.secret.public_key().to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| {
            URL_SAFE_NO_PAD.encode(c.map(|c| &c[..]).unwrap_or_default())
        };
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": coordinate(point.x()),
            "y": coordinate(point.y()),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["verify"],
        })
    }

    /// The private JWK (with `d`), in the form [`Es256Key::from_jwk`] reads: for keeping
    /// one key across restarts. It is a secret.
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.public_jwk();
        jwk["d"] = json!(URL_SAFE_NO_PAD.encode(self.secret.to_bytes()));
        jwk["key_ops"] = json!(["sign", "verify"]);
        jwk
    }

    /// The keys `jsonwebtoken` signs and verifies with.
    pub(crate) fn jwt_keys(&self) -> (EncodingKey, DecodingKey) {
        // PKCS#8 encoding of a valid in-memory key cannot fail.
        let der = self
            .secret
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let point = self.secret.public_key().to_encoded_point(false);
        (
            EncodingKey::from_ec_der(&der),
            DecodingKey::from_ec_der(point.as_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_jwk_round_trips_and_public_jwk_has_no_secret() {
        let key = Es256Key::generate();
        let again = Es256Key::from_jwk(&key.private_jwk()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.public_jwk(), key.public_jwk());
        assert!(key.public_jwk().get("d").is_none());
        let mut wrong = key.private_jwk();
        wrong["x"] = Es256Key::generate().public_jwk()["x"].clone();
        assert!(Es256Key::from_jwk(&wrong).is_err());
        let mut no_kid = key.private_jwk();
        no_kid.as_object_mut().unwrap().remove("kid");
        assert!(Es256Key::from_jwk(&no_kid).is_err());
        assert!(!format!("{key:?}").contains(key.private_jwk()["d"].as_str().unwrap()));
    }
}
