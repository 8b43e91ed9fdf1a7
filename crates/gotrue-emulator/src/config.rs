//! Emulator settings. Defaults follow Supabase's local development stack.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::es256::Es256Key;
use crate::mail::templates::MailTemplates;

/// The JWT secret of Supabase's local stack (and of its well-known demo keys).
pub const DEFAULT_JWT_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

/// The publishable key `supabase start` prints (not a JWT, not a secret): the test
/// server accepts it by default.
pub const DEMO_PUBLISHABLE_KEY: &str = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH";

/// The secret key `supabase start` prints: the test server's admin API accepts it by default.
pub const DEMO_SECRET_KEY: &str = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";

/// GoTrue's default port.
pub const DEFAULT_PORT: u16 = 9999;

/// OAuth providers the fake provider page answers for (all enabled in `/settings`).
pub const OAUTH_PROVIDERS: &[&str] = &[
    "apple",
    "azure",
    "bitbucket",
    "discord",
    "facebook",
    "figma",
    "github",
    "gitlab",
    "google",
    "keycloak",
    "linkedin_oidc",
    "notion",
    "slack_oidc",
    "spotify",
    "twitch",
    "twitter",
    "workos",
    "zoom",
];

/// What the emulator is run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A test server: `/_emulator/*` (mail, faults, issued tokens, time, the fake OAuth
    /// provider) and the admin API are served, data is stored as GoTrue stores it, any
    /// `Host` and body type is accepted. Every test suite runs against this mode.
    #[default]
    Test,
    /// The user's own server inside an app (see [`Config::embedded`]): no `/_emulator/*`
    /// and no admin API (not mounted: 404), an API key signed with the install's secret
    /// on every route but `GET /verify`, only `Host: 127.0.0.1:<port>` or
    /// `localhost:<port>` (421 otherwise), JSON bodies only (415), no CORS, no OAuth
    /// providers, refresh tokens stored as SHA-256, mail kept in memory only, and the
    /// database file `0600`.
    Embedded,
}

/// How access tokens are signed (GoTrue's `GOTRUE_JWT_KEYS`).
#[derive(Debug, Clone, Default)]
pub enum JwtSigning {
    /// HS256 with the JWT secret; `/.well-known/jwks.json` is `{"keys":[]}` (the default).
    #[default]
    Hs256,
    /// ES256 with a P-256 key: this one, or (`None`) a new key made at start, so tokens
    /// of an earlier run no longer verify. Tokens carry its `kid`; the JWKS lists its
    /// public part. The API keys stay HS256 under the JWT secret.
    Es256(Option<Es256Key>),
}

/// Everything that changes how the emulator behaves. Its `Debug` hides the JWT secret.
#[derive(Clone)]
pub struct Config {
    /// Test server or embedded server.
    pub mode: Mode,
    /// Address to listen on (loopback by default).
    pub host: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// SQLite database file; `None` keeps everything in memory.
    pub db: Option<PathBuf>,
    /// HS256 secret: the raw bytes of this string are the key, as in GoTrue.
    pub jwt_secret: String,
    /// How access tokens are signed: HS256 (default) or ES256 with a published key.
    pub jwt_signing: JwtSigning,
    /// Supabase's publishable key (`sb_publishable_…`, not a JWT): accepted wherever the
    /// anon key is (`apikey`, and as a bearer it is the anonymous caller, not a user).
    pub publishable_key: Option<String>,
    /// Supabase's secret key (`sb_secret_…`, not a JWT): accepted wherever the
    /// `service_role` key is (the admin API).
    pub secret_key: Option<String>,
    /// Access-token lifetime.
    pub jwt_exp: Duration,
    /// The `aud` claim and users' audience.
    pub jwt_aud: String,
    /// The `iss` claim; omitted from tokens when `None`, as GoTrue does by default.
    pub jwt_issuer: Option<String>,
    /// The `role` given to new users.
    pub jwt_default_group: String,
    /// Roles whose bearer may call `/admin/*`.
    pub jwt_admin_roles: Vec<String>,
    /// Revoke a session's refresh tokens when an old one is replayed outside the interval.
    pub refresh_token_rotation: bool,
    /// Grace window in which a revoked refresh token may still be used.
    pub refresh_token_reuse_interval: Duration,
    /// Confirm email addresses at sign-up (no confirmation mail).
    pub autoconfirm: bool,
    /// An email change is confirmed from both addresses (a mail to each; GoTrue's
    /// `GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED`); when off, from the new one only.
    pub secure_email_change: bool,
    /// A password change needs the nonce `/reauthenticate` mails, when the session is more
    /// than 24 hours old (GoTrue's `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`,
    /// off by default: then a nonce is ignored).
    pub update_password_require_reauthentication: bool,
    /// Refuse all new sign-ups.
    pub disable_signup: bool,
    /// Allow `POST /signup` without email or phone.
    pub anonymous_users: bool,
    /// Base of links in mails and of OAuth redirects; the emulator's own address when `None`.
    pub external_url: Option<String>,
    /// Where redirects go when `redirect_to` is missing or not allowed.
    pub site_url: String,
    /// Glob patterns of further allowed redirect targets.
    pub uri_allow_list: Vec<String>,
    /// bcrypt cost for stored passwords.
    pub bcrypt_cost: u32,
    /// Minimum password length.
    pub password_min_length: usize,
    /// Sessions older than this can no longer be refreshed.
    pub sessions_timebox: Option<Duration>,
    /// Sessions not refreshed for this long can no longer be refreshed.
    pub sessions_inactivity_timeout: Option<Duration>,
    /// How long a PKCE flow state stays valid.
    pub flow_state_expiry: Duration,
    /// How long an emailed code or link stays valid.
    pub otp_exp: Duration,
    /// The mail templates (GoTrue's stock ones by default: links, no codes).
    pub mail_templates: MailTemplates,
    /// Minimum time between two mails of one kind to one user.
    pub smtp_max_frequency: Duration,
    /// How long an MFA challenge stays valid.
    pub mfa_challenge_expiry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Test,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            db: None,
            jwt_secret: DEFAULT_JWT_SECRET.to_owned(),
            jwt_signing: JwtSigning::Hs256,
            publishable_key: Some(DEMO_PUBLISHABLE_KEY.to_owned()),
            secret_key: Some(DEMO_SECRET_KEY.to_owned()),
            jwt_exp: Duration::from_secs(3600),
            jwt_aud: "authenticated".to_owned(),
            jwt_issuer: None,
            jwt_default_group: "authenticated".to_owned(),
            jwt_admin_roles: vec!["service_role".to_owned(), "supabase_admin".to_owned()],
            refresh_token_rotation: true,
            refresh_token_reuse_interval: Duration::from_secs(10),
            autoconfirm: true,
            secure_email_change: true,
            update_password_require_reauthentication: false,
            disable_signup: false,
            anonymous_users: true,
            external_url: None,
            site_url: "http://localhost:3000".to_owned(),
            uri_allow_list: vec![
                "tessera://**".to_owned(),
                "http://localhost:*/**".to_owned(),
                "http://127.0.0.1:*/**".to_owned(),
            ],
            bcrypt_cost: bcrypt::DEFAULT_COST,
            password_min_length: 6,
            sessions_timebox: None,
            sessions_inactivity_timeout: None,
            flow_state_expiry: Duration::from_secs(300),
            otp_exp: Duration::from_secs(86_400),
            mail_templates: MailTemplates::gotrue_defaults(),
            smtp_max_frequency: Duration::from_secs(1),
            mfa_challenge_expiry: Duration::from_secs(300),
        }
    }
}

impl Config {
    /// Defaults suited to tests: a random port, an in-memory database, the cheapest bcrypt
    /// cost and no mail throttling.
    pub fn for_tests() -> Self {
        Self {
            port: 0,
            bcrypt_cost: 4,
            smtp_max_frequency: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The user's own server inside an app: on loopback `port` (0 = any free port), its
    /// database at `db`, and `jwt_secret` — a per-install random secret the app keeps in
    /// the OS keyring ([`new_jwt_secret`]) — signing every token and the anon key. Its
    /// publishable key is derived from the secret ([`publishable_key_for`]); it has no
    /// secret key, and no role may use the admin API.
    pub fn embedded(jwt_secret: String, db: PathBuf, port: u16) -> Self {
        Self {
            mode: Mode::Embedded,
            port,
            db: Some(db),
            jwt_admin_roles: Vec::new(),
            publishable_key: Some(publishable_key_for(&jwt_secret)),
            secret_key: None,
            jwt_secret,
            ..Self::default()
        }
    }

    /// [`Config::for_tests`] signing with a new ES256 key (as a current Supabase project).
    pub fn for_tests_es256() -> Self {
        Self {
            jwt_signing: JwtSigning::Es256(None),
            ..Self::for_tests()
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.mode == Mode::Embedded
    }

    pub(crate) fn is_admin_role(&self, role: &str) -> bool {
        self.jwt_admin_roles.iter().any(|r| r == role)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("jwt_secret", &"<redacted>")
            .field("jwt_signing", &self.jwt_signing)
            .field("publishable_key", &self.publishable_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_exp", &self.jwt_exp)
            .field("jwt_aud", &self.jwt_aud)
            .field("site_url", &self.site_url)
            .finish_non_exhaustive()
    }
}

/// A fresh secret for [`Config::embedded`]: 32 random bytes (rand's thread generator, a
/// CSPRNG seeded by the OS), hex-encoded; the 64 characters are the HS256 key, as GoTrue
/// takes its secret.
pub fn new_jwt_secret() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    hex::encode(bytes)
}

/// The embedded server's publishable key, derived from the install's secret (so the app
/// keeps nothing more): `sb_publishable_` and 32 base64url characters of SHA-256 over a
/// purpose label and the secret. It is public (the app sends it on every request) and
/// tells nothing of the secret.
pub fn publishable_key_for(jwt_secret: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"tessera gotrue-emulator: publishable key v1\0")
        .chain_update(jwt_secret.as_bytes())
        .finalize();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    format!("sb_publishable_{}", &encoded[..32])
}
