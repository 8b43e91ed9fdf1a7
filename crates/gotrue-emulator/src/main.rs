//! `gotrue-emulator`: run the GoTrue-compatible server from the command line.
//!
//! Every flag also reads GoTrue's environment variable of the same setting.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser};
use gotrue_emulator::{
    Config, DEFAULT_JWT_SECRET, DEFAULT_PORT, DEMO_PUBLISHABLE_KEY, DEMO_SECRET_KEY, Emulator,
    Es256Key, JwtSigning, MailTemplate, MailTemplates, parse_go_duration,
};

fn duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s)
}

/// A GoTrue (Supabase Auth) compatible server for development and tests.
#[derive(Debug, Parser)]
#[command(name = "gotrue-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "GOTRUE_API_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// SQLite database file (kept across restarts); in memory when not given.
    #[arg(long, env = "GOTRUE_EMULATOR_DB")]
    db: Option<PathBuf>,
    /// HS256 signing secret.
    #[arg(long, env = "GOTRUE_JWT_SECRET", default_value = DEFAULT_JWT_SECRET, hide_default_value = true)]
    jwt_secret: String,
    /// Access-token signing: `hs256` (with the JWT secret) or `es256` (a P-256 key made at
    /// start, published at `/.well-known/jwks.json`; the API keys stay HS256).
    #[arg(long, env = "GOTRUE_EMULATOR_JWT_ALG", value_enum, default_value_t = JwtAlg::Hs256)]
    jwt_alg: JwtAlg,
    /// GoTrue's JSON array of private JWKs; its one EC P-256 key (with `d` and `kid`) signs
    /// ES256 instead of a key made at start (implies `--jwt-alg es256`).
    #[arg(long, env = "GOTRUE_JWT_KEYS", hide_env_values = true)]
    jwt_keys: Option<String>,
    /// Supabase's publishable key (`sb_publishable_…`), accepted wherever the anon key is
    /// (empty: none).
    #[arg(long, env = "GOTRUE_EMULATOR_PUBLISHABLE_KEY", default_value = DEMO_PUBLISHABLE_KEY)]
    publishable_key: String,
    /// Supabase's secret key (`sb_secret_…`), accepted wherever the service_role key is
    /// (empty: none).
    #[arg(long, env = "GOTRUE_EMULATOR_SECRET_KEY", default_value = DEMO_SECRET_KEY, hide_default_value = true, hide_env_values = true)]
    secret_key: String,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "GOTRUE_JWT_EXP", default_value_t = 3600)]
    jwt_exp: u64,
    /// The `aud` claim.
    #[arg(long, env = "GOTRUE_JWT_AUD", default_value = "authenticated")]
    jwt_aud: String,
    /// The `iss` claim (omitted when not set).
    #[arg(long, env = "GOTRUE_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Revoke a session's refresh tokens when an old one is replayed.
    #[arg(long, env = "GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED", default_value_t = true, action = ArgAction::Set)]
    refresh_token_rotation: bool,
    /// Seconds in which a rotated refresh token may still be used.
    #[arg(
        long,
        env = "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL",
        default_value_t = 10
    )]
    refresh_token_reuse_interval: u64,
    /// Confirm emails at sign-up.
    #[arg(long, env = "GOTRUE_MAILER_AUTOCONFIRM", default_value_t = true, action = ArgAction::Set)]
    autoconfirm: bool,
    /// Require email confirmation (same as `--autoconfirm false`).
    #[arg(long)]
    no_autoconfirm: bool,
    /// Confirm an email change from both the current and the new address.
    #[arg(long, env = "GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", default_value_t = true, action = ArgAction::Set)]
    secure_email_change: bool,
    /// Refuse new sign-ups.
    #[arg(long, env = "GOTRUE_DISABLE_SIGNUP", default_value_t = false, action = ArgAction::Set)]
    disable_signup: bool,
    /// Allow anonymous sign-ins.
    #[arg(long, env = "GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", default_value_t = true, action = ArgAction::Set)]
    anonymous_users: bool,
    /// Base URL for links in mails and OAuth redirects (default: the emulator's own address).
    #[arg(long, env = "API_EXTERNAL_URL")]
    external_url: Option<String>,
    /// Redirect target when `redirect_to` is missing or not allowed.
    #[arg(long, env = "GOTRUE_SITE_URL", default_value = "http://localhost:3000")]
    site_url: String,
    /// Comma-separated globs of allowed redirect targets.
    #[arg(
        long,
        env = "GOTRUE_URI_ALLOW_LIST",
        value_delimiter = ',',
        default_value = "tessera://**,http://localhost:*/**,http://127.0.0.1:*/**"
    )]
    uri_allow_list: Vec<String>,
    /// bcrypt cost for stored passwords (4..=31).
    #[arg(long, env = "GOTRUE_EMULATOR_BCRYPT_COST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    bcrypt_cost: u32,
    /// Minimum password length.
    #[arg(long, env = "GOTRUE_PASSWORD_MIN_LENGTH", default_value_t = 6)]
    password_min_length: usize,
    /// Maximum session age, a Go duration such as `24h` (refresh fails after it).
    #[arg(long, env = "GOTRUE_SESSIONS_TIMEBOX", value_parser = duration)]
    sessions_timebox: Option<Duration>,
    /// Maximum time between refreshes, a Go duration (refresh fails after it).
    #[arg(long, env = "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT", value_parser = duration)]
    sessions_inactivity_timeout: Option<Duration>,
    /// How long a PKCE flow state stays valid.
    #[arg(long, env = "GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION", default_value = "300s", value_parser = duration)]
    flow_state_expiry: Duration,
    /// How long an emailed code or link stays valid, in seconds.
    #[arg(long, env = "GOTRUE_MAILER_OTP_EXP", default_value_t = 86_400)]
    otp_exp: u64,
    /// A password change in a session older than 24 hours needs the reauthentication nonce.
    #[arg(long, env = "GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", default_value_t = false, action = ArgAction::Set)]
    update_password_require_reauthentication: bool,
    /// Minimum time between two mails of one kind to one address (Go duration).
    #[arg(long, env = "GOTRUE_SMTP_MAX_FREQUENCY", default_value = "1s", value_parser = duration)]
    smtp_max_frequency: Duration,
    /// Mail the one-time code too: GoTrue's stock templates with a line showing
    /// `{{ .Token }}` (the stock ones mail links only).
    #[arg(long)]
    mail_codes: bool,
    /// `TYPE=FILE`: the body template of one mail type (confirmation, invite, magic_link,
    /// recovery, email_change, reauthentication), rendered under Go html/template's rules;
    /// repeatable. (GoTrue reads its `GOTRUE_MAILER_TEMPLATES_*` from URLs.)
    #[arg(long = "mail-template", value_name = "TYPE=FILE")]
    mail_templates: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum JwtAlg {
    Hs256,
    Es256,
}

/// The signing key of `GOTRUE_JWT_KEYS`: the array's one EC key (other entries, such as a
/// verify-only `oct` key, are ignored: the JWT secret is the HS256 key).
fn signing_key(keys: &str) -> Result<Es256Key, String> {
    let keys: serde_json::Value =
        serde_json::from_str(keys).map_err(|e| format!("GOTRUE_JWT_KEYS is not JSON: {e}"))?;
    let list = keys.as_array().cloned().unwrap_or_else(|| vec![keys]);
    let mut ec = list.iter().filter(|k| k["kty"] == "EC");
    match (ec.next(), ec.next()) {
        (Some(key), None) => Es256Key::from_jwk(key),
        _ => Err("GOTRUE_JWT_KEYS must hold exactly one EC P-256 private key".into()),
    }
}

impl Args {
    fn templates(&self) -> Result<MailTemplates, String> {
        let mut templates = if self.mail_codes {
            MailTemplates::with_codes()
        } else {
            MailTemplates::gotrue_defaults()
        };
        for spec in &self.mail_templates {
            let (kind, file) = spec
                .split_once('=')
                .ok_or_else(|| format!("--mail-template takes TYPE=FILE, not {spec:?}"))?;
            let body = std::fs::read_to_string(file)
                .map_err(|e| format!("--mail-template {kind}: cannot read {file}: {e}"))?;
            let subject = templates.subject(kind).map_err(|e| e.to_string())?;
            templates
                .set(kind, MailTemplate::new(&subject, &body))
                .map_err(|e| e.to_string())?;
        }
        Ok(templates)
    }

    fn into_config(self) -> Result<Config, String> {
        let mail_templates = self.templates()?;
        let jwt_signing = match (
            self.jwt_keys.as_deref().filter(|k| !k.trim().is_empty()),
            self.jwt_alg,
        ) {
            (Some(keys), _) => JwtSigning::Es256(Some(signing_key(keys)?)),
            (None, JwtAlg::Es256) => JwtSigning::Es256(None),
            (None, JwtAlg::Hs256) => JwtSigning::Hs256,
        };
        Ok(Config {
            jwt_signing,
            publishable_key: Some(self.publishable_key).filter(|k| !k.is_empty()),
            secret_key: Some(self.secret_key).filter(|k| !k.is_empty()),
            host: self.host,
            port: self.port,
            db: self.db,
            jwt_secret: self.jwt_secret,
            jwt_exp: Duration::from_secs(self.jwt_exp),
            jwt_aud: self.jwt_aud,
            jwt_issuer: self.jwt_issuer.filter(|s| !s.is_empty()),
            refresh_token_rotation: self.refresh_token_rotation,
            refresh_token_reuse_interval: Duration::from_secs(self.refresh_token_reuse_interval),
            autoconfirm: self.autoconfirm && !self.no_autoconfirm,
            secure_email_change: self.secure_email_change,
            update_password_require_reauthentication: self.update_password_require_reauthentication,
            disable_signup: self.disable_signup,
            anonymous_users: self.anonymous_users,
            external_url: self.external_url.filter(|s| !s.is_empty()),
            site_url: self.site_url,
            uri_allow_list: self
                .uri_allow_list
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
            bcrypt_cost: self.bcrypt_cost,
            password_min_length: self.password_min_length,
            sessions_timebox: self.sessions_timebox,
            sessions_inactivity_timeout: self.sessions_inactivity_timeout,
            flow_state_expiry: self.flow_state_expiry,
            otp_exp: Duration::from_secs(self.otp_exp),
            smtp_max_frequency: self.smtp_max_frequency,
            mail_templates,
            ..Config::default()
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GOTRUE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match Args::parse().into_config() {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let emulator = match Emulator::start(config).await {
        Ok(emulator) => emulator,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    // The first line is machine-readable: tests that spawn the binary with `--port 0` read it.
    #[allow(clippy::print_stdout)]
    {
        println!("GoTrue emulator listening on {}", emulator.url());
        println!("API URL:          {}", emulator.url());
        println!("Supabase-style:   {}/auth/v1", emulator.url());
        println!("anon key:         {}", emulator.anon_key());
        println!("service_role key: {}", emulator.service_role_key());
        println!(
            "Captured mail:    {}/_emulator/mail?to=EMAIL",
            emulator.url()
        );
        if let Some(key) = emulator.publishable_key() {
            println!("publishable key:  {key}");
        }
        if let Some(key) = emulator.secret_key() {
            println!("secret key:       {key}");
        }
        if let Some(kid) = emulator.signing_kid() {
            println!(
                "Signing:          ES256, kid {kid} ({}/.well-known/jwks.json)",
                emulator.url()
            );
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        tracing::error!("cannot wait for Ctrl-C; stopping");
    }
    emulator.shutdown().await;
    ExitCode::SUCCESS
}
