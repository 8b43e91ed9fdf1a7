//! The embedded mode's data at rest and its start-up checks: what the database folder
//! holds (no refresh token, code or TOTP secret in plain), restarts, file permissions, the
//! secret an embedded server needs, and a test-mode database opened embedded. (Its HTTP
//! surface is in `embedded.rs`.)
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use gotrue_emulator::{Config, Emulator, MailTemplates, new_jwt_secret};
use serde_json::json;
use support::*;

/// Every file in `dir` (the database, its -wal and -shm) as bytes.
fn folder_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn refresh_tokens_and_codes_are_not_readable_from_the_data_folder() {
    let (env, dir) = embedded_server_with(MailTemplates::with_codes()).await;
    confirmed_user(&env, "atrest@example.com").await;
    let first = env.sign_in("atrest@example.com").await;
    let rotated = env
        .refresh(&refresh_token(&first))
        .await
        .assert_ok()
        .clone();
    // A magic link and a code: the mailbox is read in process.
    env.post("/otp", json!({"email": "atrest@example.com"}))
        .await
        .assert_ok();
    let mail = env.emu.mail_for(Some("atrest@example.com")).unwrap();
    let otp = mail.last().unwrap().otp.clone().unwrap();
    assert_eq!(otp.len(), 6);
    // The link's token hash signs in by itself (`/verify?token=<hash>`): not stored either.
    let link_hash = mail.last().unwrap().token_hash.clone();

    let secrets = [
        refresh_token(&first),
        refresh_token(&rotated),
        otp.clone(),
        link_hash,
    ];
    for (path, bytes) in folder_bytes(dir.path()) {
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{} holds a secret in plain",
                path.display()
            );
        }
    }
    // The table holds keyed digests (HMAC-SHA-256), looked up by digest.
    let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite")).unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT token FROM refresh_tokens ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Keyed digests: a plain SHA-256 of a guess (or of a leaked token) matches nothing.
    let plain = |t: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(t.as_bytes()))
    };
    assert_eq!(stored.len(), 2);
    for (row, token) in stored
        .iter()
        .zip([refresh_token(&first), refresh_token(&rotated)])
    {
        assert_eq!(row.len(), 64, "{row}");
        assert!(!row.contains(&token) && *row != plain(&token), "{row}");
    }
    let mails: i64 = db
        .query_row("SELECT COUNT(*) FROM mails", [], |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(mails, 0, "the mailbox is kept in memory only");
    // Still a working server: the rotated token refreshes, the code signs in.
    env.refresh(&refresh_token(&rotated)).await.assert_ok();
    env.post(
        "/verify",
        json!({"email": "atrest@example.com", "token": otp, "type": "email"}),
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn a_replayed_refresh_token_still_gets_a_working_one() {
    let (env, _dir) = embedded_server().await;
    confirmed_user(&env, "replay@example.com").await;
    let first = env.sign_in("replay@example.com").await;
    let second = env
        .refresh(&refresh_token(&first))
        .await
        .assert_ok()
        .clone();
    // The answer was lost: the old token again, inside the reuse interval.
    let again = env
        .refresh(&refresh_token(&first))
        .await
        .assert_ok()
        .clone();
    env.refresh(&refresh_token(&again)).await.assert_ok();
    // The token handed out first is not a way back in once the interval is over.
    env.emu.clock().advance_ms(60_000);
    env.refresh(&refresh_token(&second))
        .await
        .assert_error(400, "refresh_token_already_used");
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret = new_jwt_secret();
    let db = dir.path().join("emulator.sqlite");
    let config = || Config {
        bcrypt_cost: 4,
        ..Config::embedded(secret.clone(), db.clone(), 0)
    };
    let env = Env::with(config()).await;
    confirmed_user(&env, "restart@example.com").await;
    let session = env.sign_in("restart@example.com").await;
    env.emu.shutdown().await;
    let env = Env::with(config()).await;
    env.refresh(&refresh_token(&session)).await.assert_ok();
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (env, dir) = embedded_server().await;
    confirmed_user(&env, "modes@example.com").await;
    env.sign_in("modes@example.com").await;
    let files = folder_bytes(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in [
        "emulator.sqlite",
        "emulator.sqlite-wal",
        "emulator.sqlite-shm",
    ] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
    for (path, _) in files {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
    }
}

#[tokio::test]
async fn an_embedded_server_needs_its_own_secret_and_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("emulator.sqlite");
    let demo = Config::embedded(gotrue_emulator::DEFAULT_JWT_SECRET.into(), db.clone(), 0);
    assert!(Emulator::start(demo).await.is_err());
    let short = Config::embedded("a".repeat(63), db.clone(), 0);
    assert!(Emulator::start(short).await.is_err());
    let open = Config {
        host: "0.0.0.0".parse().unwrap(),
        ..Config::embedded(new_jwt_secret(), db.clone(), 0)
    };
    assert!(Emulator::start(open).await.is_err());
    // The public demo keys, or a secret key at all, are refused.
    let demo_publishable = Config {
        publishable_key: Some(gotrue_emulator::DEMO_PUBLISHABLE_KEY.into()),
        ..Config::embedded(new_jwt_secret(), db.clone(), 0)
    };
    assert!(Emulator::start(demo_publishable).await.is_err());
    let with_secret = Config {
        secret_key: Some(gotrue_emulator::DEMO_SECRET_KEY.into()),
        ..Config::embedded(new_jwt_secret(), db, 0)
    };
    assert!(Emulator::start(with_secret).await.is_err());
}

#[test]
fn the_secret_is_random_and_never_in_debug() {
    let secret = new_jwt_secret();
    assert_eq!(secret.len(), 64);
    assert_ne!(secret, new_jwt_secret());
    let config = Config::embedded(secret.clone(), "x.sqlite".into(), 0);
    assert!(!format!("{config:?}").contains(&secret));
}

#[tokio::test]
async fn totp_secrets_are_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let secret = new_jwt_secret();
    let db = dir.path().join("emulator.sqlite");
    let config = |secret: &str| Config {
        bcrypt_cost: 4,
        ..Config::embedded(secret.to_owned(), db.clone(), 0)
    };
    let env = Env::with(config(&secret)).await;
    confirmed_user(&env, "totp@example.com").await;
    let session = env.sign_in("totp@example.com").await;
    let bearer = access(&session);
    let enrolled = env
        .post_auth("/factors", &bearer, Some(json!({"factor_type": "totp"})))
        .await
        .assert_ok()
        .clone();
    let totp_secret = enrolled["totp"]["secret"].as_str().unwrap().to_owned();
    let factor = enrolled["id"].as_str().unwrap().to_owned();
    for (path, bytes) in folder_bytes(dir.path()) {
        assert!(
            !contains(&bytes, &totp_secret),
            "{} holds the TOTP secret in plain",
            path.display()
        );
    }
    // The server still reads it: a challenge and a code from the secret verify.
    env.emu.shutdown().await;
    let env = Env::with(config(&secret)).await;
    let session = env.sign_in("totp@example.com").await;
    let bearer = access(&session);
    let challenge = env
        .post_auth(&format!("/factors/{factor}/challenge"), &bearer, None)
        .await
        .assert_ok()
        .clone();
    let code = totp_code(&totp_secret, env.emu.clock().now_secs());
    env.post_auth(
        &format!("/factors/{factor}/verify"),
        &bearer,
        Some(json!({"challenge_id": challenge["id"], "code": code})),
    )
    .await
    .assert_ok();
    // With another secret (the keyring entry lost) the account still works at aal1.
    env.emu.shutdown().await;
    let env = Env::with(config(&new_jwt_secret())).await;
    let session = env.sign_in("totp@example.com").await;
    env.get("/user", Some(&access(&session))).await.assert_ok();
}

fn totp_code(secret: &str, now: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "t".into())
        .unwrap()
        .generate(now as u64)
}

#[tokio::test]
async fn a_database_from_a_test_mode_server_is_cleaned_when_opened_embedded() {
    // The app before the embedded mode ran a test-mode server on its data folder.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("emulator.sqlite");
    let old = Env::with(Config {
        db: Some(db.clone()),
        mail_templates: MailTemplates::with_codes(),
        ..Config::for_tests()
    })
    .await;
    confirmed_user(&old, "upgrade@example.com").await;
    let session = old.sign_in("upgrade@example.com").await;
    let enrolled = old
        .post_auth(
            "/factors",
            &access(&session),
            Some(json!({"factor_type": "totp"})),
        )
        .await
        .assert_ok()
        .clone();
    old.post("/otp", json!({"email": "upgrade@example.com"}))
        .await
        .assert_ok();
    let otp = old.emu.mail_for(Some("upgrade@example.com")).unwrap()[0]
        .otp
        .clone()
        .unwrap();
    old.emu.shutdown().await;

    let env = Env::with(Config {
        bcrypt_cost: 4,
        ..Config::embedded(new_jwt_secret(), db, 0)
    })
    .await;
    let secrets = [
        refresh_token(&session),
        enrolled["totp"]["secret"].as_str().unwrap().to_owned(),
        otp,
    ];
    for (path, bytes) in folder_bytes(dir.path()) {
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{} keeps a secret",
                path.display()
            );
        }
    }
    // The user stays signed in across the upgrade.
    env.refresh(&refresh_token(&session)).await.assert_ok();
}
