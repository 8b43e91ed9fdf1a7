//! `example-logout-backend --auth-url URL --anon-key KEY [--port 8787]`
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "An example app backend with POST /api/auth/logout")]
struct Args {
    #[arg(
        long,
        env = "TESSERA_AUTH_URL",
        default_value = "http://127.0.0.1:54329"
    )]
    auth_url: String,
    #[arg(long, env = "TESSERA_ANON_KEY")]
    anon_key: String,
    #[arg(long, default_value_t = 8787)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let handle = example_logout_backend::start(
        example_logout_backend::Config {
            auth_url: args.auth_url,
            anon_key: args.anon_key,
        },
        ([127, 0, 0, 1], args.port).into(),
    )
    .await?;
    tracing::info!(url = %handle.logout_url(), "example backend listening");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
