//! The embedded mode's storage rules: what an app's data folder may show to someone who
//! reads it (a backup, another user's process, a synced folder).
//!
//! - Tokens are stored through the SQL function `tessera_key`: in embedded mode the hex
//!   SHA-256 of the value (a `pkce_` prefix kept), in test mode the value itself. Refresh
//!   tokens and one-time token hashes (which are themselves usable in a link) are stored
//!   and looked up through it, so the rows never hold a usable token.
//! - The captured mailbox (plaintext codes and links) is a `TEMP` table, in memory only.
//! - Deleted rows are overwritten (`secure_delete`), temporary tables stay in memory.
//! - On Unix the database file and its `-wal`/`-shm` are `0600`.
//!
//! TOTP secrets cannot be hashed (the server must compute codes); they stay in the file,
//! protected by its mode only (docs/security-embedded.md).

use std::path::Path;

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use sha2::{Digest, Sha256};

/// The stored form of a token in embedded mode.
pub fn digest(value: &str) -> String {
    match value.strip_prefix("pkce_") {
        Some(_) => format!("pkce_{}", hex::encode(Sha256::digest(value.as_bytes()))),
        None => hex::encode(Sha256::digest(value.as_bytes())),
    }
}

/// Registers `tessera_key(value)`: the digest when `hashed`, the value itself otherwise.
pub fn register_key(conn: &Connection, hashed: bool) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "tessera_key",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let value: Option<String> = ctx.get(0)?;
            Ok(value.map(|v| if hashed { digest(&v) } else { v }))
        },
    )
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
    fn digests_keep_the_pkce_marker_and_hide_the_value() {
        assert_eq!(digest("abc").len(), 64);
        assert!(digest("pkce_abc").starts_with("pkce_"));
        assert_eq!(digest("pkce_abc").len(), 69);
        assert_ne!(digest("pkce_abc"), format!("pkce_{}", digest("abc")));
    }
}
