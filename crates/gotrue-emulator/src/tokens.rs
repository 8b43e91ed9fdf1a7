//! Minting and checking what is not a JWT: refresh tokens, one-time codes and their
//! hashes, random provider tokens, and PKCE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha224, Sha256};

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
