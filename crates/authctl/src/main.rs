//! `authctl`: drive Tessera's session engine from a terminal.
//!
//! It uses the same engine, the same keyring entry (service `tessera`, per profile) and
//! the same cross-process lock as the app, so a session signed in here is the app's
//! session and vice versa. Passwords are read from standard input, never from arguments.
//! The server is `--url`, else the one `authctl server set` saved, else the local emulator.

mod input;
mod recover;
mod saved;
mod server;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{
    AuthClient, AuthConfig, AuthError, BackendKind, KEYRING_SERVICE, KeyringStore, OneTimeCode,
    SignOutScope, SignUpOutcome,
};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use input::read_password;
use serde_json::json;
use server::{Given, ServerAction, Source, Target};

/// Tessera's command-line auth client.
#[derive(Debug, Parser)]
#[command(name = "authctl", version, about)]
struct Cli {
    /// Auth server (GoTrue root or `https://<project>.supabase.co/auth/v1`). Default: the
    /// server `authctl server set` saved, else http://127.0.0.1:9999.
    #[arg(long, global = true, env = "TESSERA_AUTH_URL")]
    url: Option<String>,
    /// The project's anon or publishable key. Default: the saved server's, else the
    /// local-stack demo key the emulator accepts.
    #[arg(long, global = true, env = "TESSERA_ANON_KEY", hide_env_values = true)]
    anon_key: Option<String>,
    /// Which auth server `--url` is: `gotrue` (Supabase, the default) or `supertokens` (an
    /// app backend's API domain, header-mode sessions).
    #[arg(long, global = true, env = "TESSERA_BACKEND", default_value = "gotrue")]
    backend: String,
    /// The app backend's logout endpoint, told first on every sign-out.
    #[arg(long, global = true, env = "TESSERA_LOGOUT_HOOK_URL")]
    logout_hook_url: Option<String>,
    /// Which stored session to use (one per profile).
    #[arg(
        long,
        global = true,
        env = "TESSERA_PROFILE",
        default_value = "default"
    )]
    profile: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Who is signed in, which session, until when.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Create an account (password from stdin).
    SignUp {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Sign in with email and password (from stdin), or anonymously.
    SignIn {
        #[arg(
            long,
            required_unless_present = "anonymous",
            conflicts_with = "anonymous"
        )]
        email: Option<String>,
        #[arg(long, requires = "email")]
        password_stdin: bool,
        #[arg(long)]
        anonymous: bool,
    },
    /// Email one-time codes and magic links.
    Otp {
        #[command(subcommand)]
        action: OtpAction,
    },
    /// Finish what a mailed link of this app's started: a magic link, a sign-up
    /// confirmation, a password reset or an email change. The link is read from stdin (it
    /// is a credential: never an argument), copied from the mail as it is — the server's
    /// `…/verify?…` link — or the `tessera://…` link the browser was sent to.
    Link,
    /// Refresh the session now.
    Refresh,
    /// The user, fresh from the server.
    User,
    /// Sign out: local (this session), global (all sessions; the default), others.
    SignOut {
        #[arg(long, default_value = "global")]
        scope: String,
    },
    /// Revocations not yet confirmed by the server (`outbox flush` sends them).
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Print auth events as JSON lines until interrupted (keeps the session refreshed).
    Watch,
    /// Your devices: the user's sessions (`sessions revoke ID` signs one out).
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsAction>,
        #[arg(long)]
        json: bool,
    },
    /// The server commands use: `set URL --anon-key KEY`, `show`, `forget`.
    ///
    /// `server set` checks a server and saves it (every command then uses it unless `--url`
    /// or TESSERA_AUTH_URL is given); `server show` tells which server is in use, where
    /// that comes from, and checks it; `server forget` removes the saved one. Each server
    /// has its own stored session.
    Server {
        #[command(subcommand)]
        action: ServerAction,
    },
    /// A forgotten password: mails a code, then sets a new password with it.
    ///
    /// The code from the mail and the new password are prompted on a terminal (the
    /// password without echo), else read from stdin, one per line. The server signs out
    /// the user's other sessions when the password changes.
    Recover(recover::Recover),
}

#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// Sign one session out (this device's own: a local sign-out).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum OtpAction {
    /// Send a code and magic link to the address.
    Send {
        #[arg(long)]
        email: String,
    },
    /// Verify the emailed code.
    Verify {
        #[arg(long)]
        email: String,
        #[arg(long)]
        code: String,
        /// email, signup, magiclink, recovery, invite, email_change
        #[arg(long = "type", default_value = "email")]
        kind: String,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxAction {
    /// Try to deliver every pending revocation now.
    Flush,
}

/// What a link did, in a line or two.
#[allow(clippy::print_stdout)]
fn print_link_outcome(client: &AuthClient, outcome: auth_core::LinkOutcome) {
    use auth_core::LinkOutcome;
    match outcome {
        LinkOutcome::SignedIn { session } => print_session(&session),
        LinkOutcome::Checked { signed_in } => println!(
            "checked with the server: {}",
            if signed_in {
                "still signed in"
            } else {
                "signed out"
            }
        ),
        LinkOutcome::ConfirmSwitch { switch } => {
            // A terminal has no dialog: the other account's session is revoked.
            println!(
                "the link signs in {}, not {} who is signed in here: not used",
                switch.incoming.email, switch.current.email
            );
            let client = client.clone();
            let id = switch.id;
            tokio::spawn(async move {
                let _ = client.resolve_account_switch(&id, false).await;
            });
        }
        LinkOutcome::EmailConfirmed { email } => println!(
            "{email} is confirmed; the link came too late to sign in: `authctl sign-in --email \
             {email} --password-stdin`"
        ),
        LinkOutcome::EmailChangeWaiting { email } => println!(
            "one address confirmed the change to {email}; now the link sent to the other one"
        ),
        LinkOutcome::EmailChanged { email } => println!("the account's address is now {email}"),
    }
}

fn relative(expires_at: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let left = expires_at - now;
    if left <= 0 {
        format!("expired {}s ago", -left)
    } else {
        format!("in {}m {:02}s", left / 60, left % 60)
    }
}

#[allow(clippy::print_stdout)]
fn print_session(view: &auth_core::SessionView) {
    let who = if view.user.is_anonymous {
        "an anonymous user".to_owned()
    } else {
        view.user.email.clone()
    };
    println!("signed in as {who}");
    println!("user id:    {}", view.user.id);
    println!("session:    {}", view.session_id);
    println!(
        "expires at: {} ({})",
        view.expires_at,
        relative(view.expires_at)
    );
    println!("assurance:  {}", view.aal);
    if view.clock_skew_secs.abs() > 5 {
        println!(
            "clock skew: the server's clock is {}s ahead of this machine's",
            view.clock_skew_secs
        );
    }
}

/// The desktop app's identifier (`tauri.conf.json`): `authctl` locks in the folders the
/// app's path resolver gives it on this desktop, so that the two never refresh at once.
const APP_IDENTIFIER: &str = "dev.tessera.desktop";

/// The folders Tauri's path resolver gives the desktop app (`runtime_dir`, and
/// `app_cache_dir`: the cache folder and the identifier).
fn app_dirs() -> auth_core::AppDirs {
    auth_core::AppDirs {
        runtime: dirs::runtime_dir(),
        app_cache: dirs::cache_dir().map(|cache| cache.join(APP_IDENTIFIER)),
    }
}

#[allow(clippy::print_stdout)]
async fn run(cli: Cli, given: Given) -> Result<(), AuthError> {
    let backend: BackendKind = cli.backend.parse()?;
    let command = match cli.command {
        Command::Server { action } => {
            return server::run(action, &given, backend == BackendKind::GoTrue).await;
        }
        command => command,
    };
    let target = Target::resolve(&given, backend == BackendKind::GoTrue)?;
    let mut cfg = AuthConfig::new(&target.url, &target.anon_key);
    cfg.profile = cli.profile.clone();
    cfg.lock_dir = Some(auth_core::lock_dir(&app_dirs()));
    cfg.background = matches!(command, Command::Watch);
    cfg.user_agent = auth_core::user_agent("authctl", env!("CARGO_PKG_VERSION"));
    cfg.logout_hook_url = cli.logout_hook_url.clone().filter(|u| !u.is_empty());
    cfg.backend = backend;
    let store = Arc::new(KeyringStore::for_platform(KEYRING_SERVICE));
    let client = AuthClient::new(cfg, store)?;
    let mut events = client.subscribe();
    client.start().await?;

    match command {
        Command::Status { json } => {
            let pending = client.pending_revocations().await?.len();
            let session = client.session();
            if json {
                println!(
                    "{}",
                    json!({ "signedIn": session.is_some(), "session": session, "pendingRevocations": pending, "profile": cli.profile })
                );
            } else {
                match &session {
                    Some(view) => print_session(view),
                    None => println!("not signed in"),
                }
                if pending > 0 {
                    println!("pending revocations: {pending} (authctl outbox)");
                }
            }
        }
        Command::SignUp { email, .. } => {
            let password = read_password()?;
            match client.sign_up(&email, &password).await? {
                SignUpOutcome::SignedIn { session } => print_session(&session),
                SignUpOutcome::ConfirmationSent { email } => {
                    println!("check your email: a confirmation was sent to {email}")
                }
            }
        }
        Command::SignIn {
            email, anonymous, ..
        } => {
            let view = if anonymous {
                client.sign_in_anonymously().await?
            } else {
                let email = email.unwrap_or_default();
                let password = read_password()?;
                client.sign_in_with_password(&email, &password).await?
            };
            print_session(&view);
        }
        Command::Otp {
            action: OtpAction::Send { email },
        } => {
            client.sign_in_with_otp(&email).await?;
            println!(
                "sent a sign-in link to {email} (and a code, if the project's template shows \
                 one): `authctl link` takes the link, `authctl otp verify` the code"
            );
        }
        Command::Link => {
            let link = input::read_link()?;
            let outcome = if link.starts_with("http") {
                client.follow_email_link(&link).await?
            } else {
                client.handle_callback(&link).await?
            };
            print_link_outcome(&client, outcome);
        }
        Command::Otp {
            action: OtpAction::Verify { email, code, kind },
        } => {
            let view = client
                .verify_otp(&email, &OneTimeCode::new(code), kind.parse()?)
                .await?;
            print_session(&view);
        }
        Command::Refresh => {
            let view = client.refresh().await?;
            println!(
                "refreshed; expires at {} ({})",
                view.expires_at,
                relative(view.expires_at)
            );
        }
        Command::User => {
            let user = client.user().await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&user).unwrap_or_default()
            );
        }
        Command::SignOut { scope } => {
            let scope: SignOutScope = scope.parse()?;
            let outcome = client.sign_out(scope).await?;
            let local = if outcome.local_done {
                "signed out on this device"
            } else {
                "this device stays signed in"
            };
            let server = if outcome.server_confirmed {
                "the server confirmed".to_owned()
            } else if let Some(e) = &outcome.hook_error {
                format!(
                    "the app's server failed ({}: {}): the sign-out is queued (authctl outbox flush)",
                    e.code, e.message
                )
            } else if let Some(e) = &outcome.server_not_done {
                e.message.clone()
            } else if outcome.queued {
                "the server could not be reached: the revocation is queued (authctl outbox flush)"
                    .to_owned()
            } else {
                "the server did not confirm".to_owned()
            };
            println!("{local} ({}); {server}", scope.as_str());
        }
        Command::Sessions {
            action: None,
            json: as_json,
        } => {
            let devices = client.list_sessions().await?;
            if as_json {
                println!("{}", serde_json::to_string(&devices).unwrap_or_default());
            } else {
                for d in &devices {
                    println!(
                        "{}{}  last active {}  {}  {}  {}",
                        d.id,
                        if d.is_current { " (this device)" } else { "" },
                        d.last_active_at,
                        d.user_agent.as_deref().unwrap_or("unknown client"),
                        d.ip.as_deref().unwrap_or("-"),
                        d.aal.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        Command::Sessions {
            action: Some(SessionsAction::Revoke { id }),
            ..
        } => match client.revoke_session(&id).await? {
            auth_core::RevokeOutcome::ThisDevice { sign_out } => println!(
                "signed out on this device ({})",
                if sign_out.server_confirmed {
                    "the server confirmed"
                } else {
                    "the revocation is queued"
                }
            ),
            auth_core::RevokeOutcome::OtherDevice => {
                println!("signed out session {id}; that device notices at its next check")
            }
        },
        Command::Outbox { action } => {
            if matches!(action, Some(OutboxAction::Flush)) {
                let left = client.flush_outbox().await?;
                println!("{left} revocation(s) still pending");
            }
            for p in client.pending_revocations().await? {
                println!(
                    "{}  scope={}  session={}  email={}  attempts={}  last_error={}",
                    p.id,
                    p.scope.as_str(),
                    p.session_id,
                    p.email,
                    p.attempts,
                    p.last_error.unwrap_or_else(|| "-".into())
                );
            }
        }
        Command::Watch => {
            // A reader that goes away (`authctl watch | head -1`) ends the watch quietly.
            let mut out = std::io::stdout();
            let mut line = |text: String| writeln!(out, "{text}").and_then(|()| out.flush());
            let initial = json!({ "event": "INITIAL_SESSION", "session": client.session() });
            if line(initial.to_string()).is_ok() {
                loop {
                    tokio::select! {
                        ev = events.recv() => match ev {
                            Ok(ev) => {
                                let text = serde_json::to_string(&ev).unwrap_or_default();
                                if line(text).is_err() {
                                    break;
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        },
                        _ = tokio::signal::ctrl_c() => break,
                    }
                }
            }
            client.shutdown();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Command::Recover(args) => recover::run(&client, args).await?,
        Command::Server { .. } => unreachable!("handled before the engine starts"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTHCTL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = Given {
        url: cli.url.clone().filter(|u| !u.trim().is_empty()),
        url_source: Source::of(matches.value_source("url")),
        anon_key: cli.anon_key.clone().filter(|k| !k.trim().is_empty()),
        key_source: Source::of(matches.value_source("anon_key")),
    };
    match run(cli, given).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("authctl: {}: {e}", e.code());
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn authctl_locks_in_the_desktop_apps_folders() {
        let conf: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tauri.conf.json"
        )))
        .unwrap();
        assert_eq!(conf["identifier"], super::APP_IDENTIFIER);
        let dirs = super::app_dirs();
        assert!(dirs.app_cache.unwrap().ends_with(super::APP_IDENTIFIER));
    }
}
