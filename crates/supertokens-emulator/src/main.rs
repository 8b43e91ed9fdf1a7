//! `supertokens-emulator [--port 3567] [--no-check-database]`: a SuperTokens backend
//! (email-password, header-mode sessions) for Tessera's `supertokens` mode.
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "A SuperTokens backend (email-password recipe, header-mode sessions)")]
struct Args {
    #[arg(long, default_value_t = 3567)]
    port: u16,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    access_token_validity: u64,
    /// Accept a revoked session's access token until it expires (no blacklisting).
    #[arg(long)]
    no_check_database: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let handle = supertokens_emulator::start(supertokens_emulator::Config {
        port: args.port,
        access_token_validity: std::time::Duration::from_secs(args.access_token_validity),
        check_database: !args.no_check_database,
        ..supertokens_emulator::Config::default()
    })
    .await?;
    tracing::info!(url = %handle.url(), "supertokens-emulator listening (apiBasePath /auth)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
