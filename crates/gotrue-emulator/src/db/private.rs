//! The embedded mode's storage rules: what an app's data folder may show to someone who
//! reads it (a backup, another user's process, a synced folder).
//!
//! - Tokens are stored through the SQL function `tessera_key`: in embedded mode the hex
//!   HMAC-SHA-256 of the value under a key derived from the install secret (a `pkce_`
//!   prefix kept), in test mode the value itself. Refresh
//!   tokens and one-time token hashes (which are themselves usable in a link) are stored
//!   and looked up through it, so the rows never hold a usable token.
//! - TOTP secrets cannot be hashed (the server computes codes from them): they are sealed
//!   through `tessera_seal` / `tessera_open` with ChaCha20-Poly1305 under a key derived
//!   from the install's JWT secret (kept by the app in the OS keyring, never in the file).
//!   In test mode both functions return the value as it is.
//! - The captured mailbox (plaintext codes and links) is a `TEMP` table, in memory only.
//! - Deleted rows are overwritten (`secure_delete`), temporary tables stay in memory.
//! - On Unix the database file and its `-wal`/`-shm` are `0600`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use sha2::{Digest, Sha256};

/// The marker of a sealed value (version 1: ChaCha20-Poly1305, 12-byte random nonce).
const SEALED: &str = "sealed1:";

/// Seals and opens values with a key derived from the install's JWT secret.
#[derive(Clone)]
pub struct Sealer {
    aead: ChaCha20Poly1305,
    /// Keys the stored digests of tokens: without the install's secret, a digest cannot be
    /// matched against guesses (a 6-digit code has only 10⁶).
    digests: Hmac<Sha256>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// The key is SHA-256 over a purpose label and the secret (at least 256 random bits),
    /// so it is never the JWT key itself.
    pub fn new(jwt_secret: &str) -> Self {
        let key = Sha256::new()
            .chain_update(b"tessera gotrue-emulator: TOTP sealing key v1\0")
            .chain_update(jwt_secret.as_bytes())
            .finalize();
        let digest_key = Sha256::new()
            .chain_update(b"tessera gotrue-emulator: token digest key v1\0")
            .chain_update(jwt_secret.as_bytes())
            .finalize();
        Self {
            aead: ChaCha20Poly1305::new(&key),
            digests: <Hmac<Sha256> as Mac>::new_from_slice(&digest_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length")),
        }
    }

    /// The stored form of a token: HMAC-SHA-256 under the install's digest key, in hex,
    /// keeping GoTrue's `pkce_` marker.
    pub fn digest(&self, value: &str) -> String {
        let mut mac = self.digests.clone();
        mac.update(value.as_bytes());
        let hex = hex::encode(mac.finalize().into_bytes());
        if value.starts_with("pkce_") {
            format!("pkce_{hex}")
        } else {
            hex
        }
    }

    pub fn seal(&self, plain: &str) -> Result<String, String> {
        use rand::Rng;
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let sealed = self
            .aead
            .encrypt(&Nonce::from(nonce), plain.as_bytes())
            .map_err(|_| "cannot seal".to_owned())?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("{SEALED}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A value that is not sealed (written by a test-mode server) is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(body) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_owned());
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| "a sealed value is malformed".to_owned())?;
        let (nonce, sealed) = bytes
            .split_first_chunk::<12>()
            .ok_or_else(|| "a sealed value is malformed".to_owned())?;
        let plain = self
            .aead
            .decrypt(&Nonce::from(*nonce), sealed)
            .map_err(|_| "a sealed value does not open with this install's secret".to_owned())?;
        String::from_utf8(plain).map_err(|_| "a sealed value is not text".to_owned())
    }
}

/// A scalar SQL function of one text argument (NULL stays NULL).
fn text_function(
    conn: &Connection,
    name: &str,
    f: impl Fn(String) -> Result<String, String> + Send + 'static + std::panic::UnwindSafe,
    deterministic: bool,
) -> rusqlite::Result<()> {
    let mut flags = FunctionFlags::SQLITE_UTF8;
    if deterministic {
        flags |= FunctionFlags::SQLITE_DETERMINISTIC;
    }
    conn.create_scalar_function(name, 1, flags, move |ctx: &Context<'_>| {
        let value: Option<String> = ctx.get(0)?;
        value
            .map(&f)
            .transpose()
            .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
    })
}

/// Registers `tessera_key`, `tessera_seal` and `tessera_open`: with a sealer (embedded
/// mode) the digest, sealing and opening; without one, each returns its argument.
pub fn register(conn: &Connection, sealer: Option<Sealer>) -> rusqlite::Result<()> {
    match sealer {
        Some(sealer) => {
            let opener = sealer.clone();
            let keyer = sealer.clone();
            text_function(conn, "tessera_key", move |v| Ok(keyer.digest(&v)), true)?;
            text_function(conn, "tessera_seal", move |v| sealer.seal(&v), false)?;
            // A value sealed under another secret (the keyring lost it) stays sealed: the
            // factor is listed but its codes do not verify.
            let open = move |v: String| match opener.open(&v) {
                Ok(plain) => Ok(plain),
                Err(e) => {
                    tracing::warn!(error = %e, "a TOTP secret does not open");
                    Ok(v)
                }
            };
            text_function(conn, "tessera_open", open, true)
        }
        None => {
            for name in ["tessera_key", "tessera_seal", "tessera_open"] {
                text_function(conn, name, Ok, true)?;
            }
            Ok(())
        }
    }
}

/// Creates the database file `0600` before SQLite opens it (so it is never readable by
/// others, not even for a moment), and tightens an existing one.
pub fn prepare_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
    }
    restrict(path)
}

/// `0600` for the database and its `-wal`/`-shm` (SQLite gives them the database's mode;
/// this also mends files an older version made).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The embedded mode's settings and clean-up, after the schema exists: the mailbox moves
/// to memory, and tokens a test-mode server stored in plain are replaced by their digest.
pub fn harden(conn: &Connection, mails_schema: &str) -> rusqlite::Result<()> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.execute_batch("DROP TABLE IF EXISTS main.mails")?;
    conn.execute_batch(&mails_schema.replace("CREATE TABLE", "CREATE TEMP TABLE"))?;
    let mut changed = conn.execute(
        "UPDATE refresh_tokens SET token = tessera_key(token), parent = tessera_key(parent)
         WHERE length(token) != 64",
        [],
    )?;
    changed += conn.execute(
        "UPDATE one_time_tokens SET token_hash = tessera_key(token_hash)
         WHERE length(token_hash) NOT IN (64, 69)",
        [],
    )?;
    changed += conn.execute(
        &format!(
            "UPDATE mfa_factors SET secret = tessera_seal(secret) WHERE secret NOT LIKE '{SEALED}%'"
        ),
        [],
    )?;
    if changed > 0 {
        // No page of the old file or its log keeps the plain values.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_keep_the_pkce_marker_and_need_the_secret() {
        let sealer = Sealer::new(&"s".repeat(64));
        let digest = |v: &str| sealer.digest(v);
        assert_eq!(digest("abc").len(), 64);
        assert!(digest("pkce_abc").starts_with("pkce_"));
        assert_eq!(digest("pkce_abc").len(), 69);
        assert_ne!(digest("pkce_abc"), format!("pkce_{}", digest("abc")));
        assert_eq!(digest("abc"), digest("abc"), "stable: looked up by digest");
        assert_ne!(
            digest("abc"),
            Sealer::new(&"t".repeat(64)).digest("abc"),
            "keyed by the install's secret"
        );
        assert_ne!(digest("abc"), hex::encode(Sha256::digest(b"abc")));
    }

    #[test]
    fn sealed_values_open_with_their_secret_only() {
        let secret = "s".repeat(64);
        let sealer = Sealer::new(&secret);
        let sealed = sealer.seal("JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with(SEALED) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealer.seal("JBSWY3DPEHPK3PXP").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(Sealer::new(&"t".repeat(64)).open(&sealed).is_err());
        let mut forged = sealed.clone();
        forged.pop();
        assert!(sealer.open(&forged).is_err());
        assert_eq!(sealer.open("legacy").unwrap(), "legacy");
    }
}
