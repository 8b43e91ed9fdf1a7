//! Which server every command talks to, and `authctl server set|show|forget`.
//!
//! In order: `--url` / `TESSERA_AUTH_URL` (and `--anon-key` / `TESSERA_ANON_KEY`); else the
//! server `authctl server set` saved (checked with `auth_core::server::probe` first); else
//! the local emulator (`http://127.0.0.1:9999`, the demo key). Each server has its own
//! stored session (`<profile>@<issuer>.session`): switching finds the other server's
//! session, sends nothing to the old one and deletes nothing.

use std::path::PathBuf;
use std::time::Duration;

use auth_core::server::{ApiKeyKind, ServerInfo, mask_key as mask};
use auth_core::{AuthError, DEMO_ANON_KEY};
use clap::Subcommand;
use clap::parser::ValueSource;
use serde_json::json;

use crate::saved::{self, SavedServer};

pub const DEFAULT_URL: &str = "http://127.0.0.1:9999";
/// How long the check of a server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Subcommand)]
pub enum ServerAction {
    /// Check a server and use it from now on (with `--anon-key KEY`).
    ///
    /// URL is a Supabase project URL (`https://<project>.supabase.co`) or a GoTrue's URL;
    /// KEY its publishable (`sb_publishable_…`) or anon key, never the secret key.
    Set {
        /// `https://<project>.supabase.co`, or a GoTrue's URL.
        #[arg(value_name = "URL")]
        server_url: String,
        /// Print what the server offers as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The server in use, where it comes from, and a fresh check of it.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Forget the saved server (its stored sessions stay, for when it is set again).
    Forget,
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Saved,
    Default,
}

impl Source {
    pub fn of(source: Option<ValueSource>) -> Self {
        match source {
            Some(ValueSource::CommandLine) => Self::Flag,
            Some(ValueSource::EnvVariable) => Self::Env,
            _ => Self::Default,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Env => "env",
            Self::Saved => "saved",
            Self::Default => "default",
        }
    }
}

/// The server a command uses, and why.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub url_source: Source,
    pub anon_key: String,
    pub key_source: Source,
    pub file: Option<PathBuf>,
}

/// What the command line gave (`None`: not given, neither as flag nor in the environment).
#[derive(Debug, Clone)]
pub struct Given {
    pub url: Option<String>,
    pub url_source: Source,
    pub anon_key: Option<String>,
    pub key_source: Source,
}

impl Target {
    /// By the order in the module's description. A saved server is for GoTrue only (it
    /// was checked as one); `--backend supertokens` takes `--url` or the default.
    pub fn resolve(given: &Given, use_saved: bool) -> Result<Self, AuthError> {
        let saved = match (&given.url, use_saved, saved::config_file()) {
            (None, true, Some(file)) => saved::load(&file)?,
            _ => None,
        };
        let (url, url_source) = match (&given.url, &saved) {
            (Some(url), _) => (url.clone(), given.url_source),
            (None, Some(s)) => (s.url.clone(), Source::Saved),
            (None, None) => (DEFAULT_URL.to_owned(), Source::Default),
        };
        let (anon_key, key_source) = match (&given.anon_key, &saved) {
            (Some(key), _) => (key.clone(), given.key_source),
            (None, Some(s)) => (s.anon_key.clone(), Source::Saved),
            (None, None) => (DEMO_ANON_KEY.to_owned(), Source::Default),
        };
        // A secret key is never used, however it was given (flag, environment, file).
        if use_saved {
            auth_core::server::refuse_secret_key(&anon_key)?;
        }
        Ok(Self {
            url,
            url_source,
            anon_key,
            key_source,
            file: saved::config_file(),
        })
    }

    fn describe_source(&self, source: Source, flag: &str, env: &str) -> String {
        match source {
            Source::Flag => flag.to_owned(),
            Source::Env => env.to_owned(),
            Source::Saved => match &self.file {
                Some(file) => format!("saved in {}", file.display()),
                None => "saved".to_owned(),
            },
            Source::Default => "the default: the local emulator".to_owned(),
        }
    }
}

/// What a checked server offers, in a few lines a person can read (as the app's Settings).
pub fn describe(info: &ServerInfo) -> Vec<String> {
    let providers = if info.providers.is_empty() {
        "none".to_owned()
    } else {
        info.providers.join(", ")
    };
    let on = |b: bool| if b { "on" } else { "off" };
    vec![
        format!(
            "Connected to a Supabase auth server ({}) at {}.",
            Some(info.version.as_str())
                .filter(|v| !v.is_empty())
                .unwrap_or("version unknown"),
            info.url
        ),
        format!(
            "Key: {}.",
            match info.key_kind {
                ApiKeyKind::Publishable => "publishable key",
                ApiKeyKind::LegacyAnon => "legacy anon key",
            }
        ),
        format!(
            "Email sign-in: {}. New accounts: {}.",
            on(info.email_enabled),
            if info.signup_enabled {
                "open"
            } else {
                "closed (sign-ups are off)"
            }
        ),
        format!(
            "Email confirmation: {}.",
            if info.email_confirmation {
                "required before the first sign-in"
            } else {
                "not required"
            }
        ),
        format!(
            "Sign-in providers: {providers}. Guest sign-in: {}.",
            on(info.anonymous_enabled)
        ),
    ]
}

#[allow(clippy::print_stdout)]
pub async fn run(action: ServerAction, given: &Given, gotrue: bool) -> Result<(), AuthError> {
    match action {
        ServerAction::Set { .. } if !gotrue => Err(AuthError::InvalidInput(
            "the saved server is a Supabase (GoTrue) one, not used with --backend supertokens: \
             give the backend's --url"
                .into(),
        )),
        ServerAction::Set { server_url, json } => set(&server_url, given, json).await,
        ServerAction::Show { json } => show(given, json, gotrue).await,
        ServerAction::Forget => {
            let file = saved::config_file_or_error()?;
            // A file that cannot be read is removed all the same.
            let before = saved::load(&file).ok().flatten();
            if saved::forget(&file)? {
                match before {
                    Some(s) => println!("forgot the saved server {}", s.url),
                    None => println!("removed {}", file.display()),
                }
                println!(
                    "its stored sessions stay in the keyring for when it is set again; commands \
                     now use {}",
                    given.url.as_deref().unwrap_or(DEFAULT_URL)
                );
            } else {
                println!("no saved server ({} does not exist)", file.display());
            }
            Ok(())
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn set(url: &str, given: &Given, as_json: bool) -> Result<(), AuthError> {
    // Only a key given for this server: never the demo key by default.
    let key = given.anon_key.as_deref().unwrap_or_default();
    let info = auth_core::server::probe(url, key, PROBE_TIMEOUT).await?;
    let file = saved::config_file_or_error()?;
    let server = SavedServer {
        url: info.url.clone(),
        anon_key: key.trim().to_owned(),
    };
    saved::save(&file, &server)?;
    if as_json {
        println!("{}", serde_json::to_string(&info).unwrap_or_default());
    } else {
        for line in describe(&info) {
            println!("{line}");
        }
        println!(
            "Saved in {}: every command now uses this server.",
            file.display()
        );
    }
    if std::env::var_os("TESSERA_AUTH_URL").is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "authctl: note: TESSERA_AUTH_URL is set; commands that get it use it rather than \
             the saved server"
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn show(given: &Given, as_json: bool, gotrue: bool) -> Result<(), AuthError> {
    let target = Target::resolve(given, gotrue)?;
    // The check is a GoTrue's (`/health`, `/settings`): none for a SuperTokens backend.
    let check = if gotrue {
        Some(auth_core::server::probe(&target.url, &target.anon_key, PROBE_TIMEOUT).await)
    } else {
        None
    };
    let configured = target.url_source != Source::Default;
    if as_json {
        let (server, error) = match &check {
            Some(Ok(info)) => (serde_json::to_value(info).ok(), None),
            Some(Err(e)) => (
                None,
                Some(json!({"code": e.code(), "message": e.to_string()})),
            ),
            None => (None, None),
        };
        println!(
            "{}",
            json!({
                "url": target.url,
                "source": target.url_source.as_str(),
                "anonKey": mask(&target.anon_key),
                "anonKeySource": target.key_source.as_str(),
                "backend": if gotrue { "gotrue" } else { "supertokens" },
                "configFile": target.file,
                "server": server,
                "error": error,
            })
        );
    } else {
        let url_from = target.describe_source(target.url_source, "--url", "TESSERA_AUTH_URL");
        let key_from = target.describe_source(target.key_source, "--anon-key", "TESSERA_ANON_KEY");
        println!("server: {} ({url_from})", target.url);
        println!("key:    {} ({key_from})", mask(&target.anon_key));
        match &check {
            Some(Ok(info)) => {
                for line in describe(info) {
                    println!("{line}");
                }
            }
            Some(Err(e)) => println!("check:  failed: {}: {e}", e.code()),
            None => println!("check:  none for a SuperTokens backend"),
        }
        if !configured {
            println!("no server is configured: `authctl server set URL --anon-key KEY` saves one");
        }
    }
    match check {
        // A configured server that cannot be reached now is still the one in use.
        Some(Err(e)) if !configured => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_to_their_kind_and_last_characters() {
        assert_eq!(mask("sb_publishable_abcdefXYZ1"), "sb_publishable_…XYZ1");
        assert_eq!(mask("eyJhbGciOiJIUzI1NiJ9.e30.sig-abcd"), "eyJh…abcd");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask("ééééééééé"), "éééé…éééé");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn given_values_win_over_the_default() {
        let given = Given {
            url: Some("https://abc.supabase.co/auth/v1".into()),
            url_source: Source::Flag,
            anon_key: None,
            key_source: Source::Default,
        };
        let target = Target::resolve(&given, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.url, "https://abc.supabase.co/auth/v1");
        assert_eq!(target.url_source, Source::Flag);
        assert_eq!(target.anon_key, DEMO_ANON_KEY);
        assert_eq!(target.key_source, Source::Default);
    }
}
