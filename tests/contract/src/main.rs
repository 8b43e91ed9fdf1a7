//! `gotrue-contract`: runs the contract scenarios against GoTrue servers given by URL —
//! by hand, against a real GoTrue — and, with `--compare`, against the emulator beside
//! them, printing one Markdown table (the figures of `docs/fidelity.md`).
//!
//! ```text
//! gotrue-contract --profile confirm=http://127.0.0.1:9997 --profile autoconfirm=http://127.0.0.1:9998 \
//!     --smtp 127.0.0.1:2525 --database postgres://…/postgres --compare
//! gotrue-contract templates DIR   # the profiles' templates, for GOTRUE_MAILER_TEMPLATES_*
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use gotrue_contract::smtp::SmtpSink;
use gotrue_contract::target::{Mailbox, Target};
use gotrue_contract::{Outcome, Profile, scenarios};

/// The local stack's demo keys (signed with its well-known JWT secret).
const DEMO_ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";
const DEMO_SERVICE_ROLE_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU";

#[derive(Parser, Debug)]
#[command(about = "Runs GoTrue's contract scenarios against servers given by URL")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// `PROFILE=URL`: the server that has this profile's configuration (autoconfirm,
    /// confirm, codes, app-link-template). Scenarios of a profile with no server are skipped.
    #[arg(long = "profile", value_name = "PROFILE=URL")]
    profiles: Vec<String>,
    /// The servers' anon key.
    #[arg(long, default_value = DEMO_ANON_KEY)]
    anon_key: String,
    /// The servers' service_role key (the admin API).
    #[arg(long, default_value = DEMO_SERVICE_ROLE_KEY)]
    service_key: String,
    /// Where to listen for the servers' mail (their SMTP host and port).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: String,
    /// A psql connection string to the servers' database (to back-date flow states).
    #[arg(long)]
    database: Option<String>,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Also run every scenario against the emulator and compare.
    #[arg(long)]
    compare: bool,
    /// The servers are gotrue-emulators in test mode (another build, say): read their mail
    /// from `/_emulator/mail` and let scenarios use their clock, instead of the SMTP sink.
    #[arg(long)]
    emulators: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes the profiles' mail templates to DIR (`<profile>/<type>.html`), for a real
    /// GoTrue's `GOTRUE_MAILER_TEMPLATES_*` URLs.
    Templates { dir: std::path::PathBuf },
}

fn cell(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed => "pass".into(),
        Outcome::Failed(why) => format!("FAIL: {}", why.replace('\n', " ").replace('|', "\\|")),
        Outcome::Skipped(why) => format!("skipped: {why}"),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // A scenario's failure is a row of the table, not a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    if let Some(Command::Templates { dir }) = &args.command {
        return match write_templates(dir) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mut servers = BTreeMap::new();
    for p in &args.profiles {
        let Some((name, url)) = p.split_once('=') else {
            eprintln!("--profile takes PROFILE=URL, not {p:?}");
            return std::process::ExitCode::from(2);
        };
        let Some(profile) = Profile::parse(name) else {
            eprintln!("no profile is called {name:?}");
            return std::process::ExitCode::from(2);
        };
        servers.insert(profile, url.trim_end_matches('/').to_owned());
    }
    let sink = match SmtpSink::start(&args.smtp).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("cannot listen for mail on {}: {e}", args.smtp);
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    println!("| scenario | profile | real server | emulator | same |");
    println!("|---|---|---|---|---|");
    for scenario in scenarios::all() {
        if args
            .only
            .as_deref()
            .is_some_and(|o| !scenario.name.contains(o))
        {
            continue;
        }
        let real = match servers.get(&scenario.profile) {
            Some(url) => {
                let mut target = Target::remote(
                    scenario.profile,
                    url,
                    (&args.anon_key, &args.service_key),
                    Mailbox::Smtp(sink.clone()),
                    args.database.clone(),
                );
                if args.emulators {
                    target.mailbox = Mailbox::Emulator;
                    target.emulator_routes = true;
                }
                gotrue_contract::run(&scenario, target).await
            }
            None => Outcome::Skipped(format!("no server for profile {}", scenario.profile.name())),
        };
        let emulator = if args.compare {
            Some(gotrue_contract::run(&scenario, Target::emulator(scenario.profile).await).await)
        } else {
            None
        };
        let same = match (&real, &emulator) {
            (Outcome::Passed, Some(Outcome::Passed)) => "same",
            (Outcome::Skipped(_), _) | (_, None) => "—",
            _ => "DIFFERENT",
        };
        if matches!(real, Outcome::Failed(_)) || matches!(emulator, Some(Outcome::Failed(_))) {
            failed += 1;
        }
        println!(
            "| {} | {} | {} | {} | {same} |",
            scenario.name,
            scenario.profile.name(),
            cell(&real),
            emulator.as_ref().map(cell).unwrap_or_else(|| "—".into()),
        );
    }
    if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

fn write_templates(dir: &std::path::Path) -> std::io::Result<()> {
    for profile in Profile::ALL {
        let templates = profile.emulator_config().mail_templates;
        let sub = dir.join(profile.name());
        std::fs::create_dir_all(&sub)?;
        for (name, t) in [
            ("confirmation", &templates.confirmation),
            ("invite", &templates.invite),
            ("magic_link", &templates.magic_link),
            ("recovery", &templates.recovery),
            ("email_change", &templates.email_change),
            ("reauthentication", &templates.reauthentication),
        ] {
            std::fs::write(sub.join(format!("{name}.html")), &t.body)?;
        }
    }
    println!(
        "wrote the templates of every profile under {}",
        dir.display()
    );
    Ok(())
}
