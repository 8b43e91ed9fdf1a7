//! What a scenario runs against: a server with one configuration (a [`Profile`]), reached
//! over HTTP, with a way to read the mail it sends.
//!
//! In the tests every scenario gets an emulator of its own, started in process with the
//! profile's configuration. By hand, `gotrue-contract` points the same scenarios at servers
//! given by URL — a real GoTrue per profile — with the mail it sends read from an SMTP
//! sink.

use std::sync::Arc;

use gotrue_emulator::{Config, EmulatorHandle, MailTemplates};

use crate::smtp::SmtpSink;

/// A server configuration a scenario needs. Against the emulator, each maps to a
/// [`Config`]; against a real GoTrue, to a server started with the environment that
/// `docs/fidelity.md` lists for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// Email sign-up confirmed at once (`GOTRUE_MAILER_AUTOCONFIRM=true`), stock templates.
    Autoconfirm,
    /// Addresses confirmed by mail, secure email change, GoTrue's stock templates (links,
    /// no codes).
    Confirm,
    /// As [`Profile::Confirm`], with templates that also show `{{ .Token }}` — a project
    /// that edited its templates to mail codes.
    Codes,
    /// As [`Profile::Confirm`], with the README's old app-link template
    /// (`{{ .RedirectTo }}&token_hash={{ .TokenHash }}&type=…`) for magic links.
    AppLinkTemplate,
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::Autoconfirm,
        Profile::Confirm,
        Profile::Codes,
        Profile::AppLinkTemplate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Autoconfirm => "autoconfirm",
            Self::Confirm => "confirm",
            Self::Codes => "codes",
            Self::AppLinkTemplate => "app-link-template",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The emulator's configuration for this profile (port 0, in memory).
    pub fn emulator_config(self) -> Config {
        let base = Config::for_tests();
        match self {
            Self::Autoconfirm => base,
            Self::Confirm => Config {
                autoconfirm: false,
                ..base
            },
            Self::Codes => Config {
                autoconfirm: false,
                mail_templates: MailTemplates::with_codes(),
                ..base
            },
            Self::AppLinkTemplate => {
                let mut templates = MailTemplates::gotrue_defaults();
                templates.magic_link.body = APP_LINK_MAGIC_LINK.to_owned();
                Config {
                    autoconfirm: false,
                    mail_templates: templates,
                    ..base
                }
            }
        }
    }
}

/// The magic-link template Tessera's README used to recommend.
pub const APP_LINK_MAGIC_LINK: &str = "<h2>Magic Link</h2>\n<p><a href=\"{{ .RedirectTo }}&token_hash={{ .TokenHash }}&type=magiclink\">Log In</a></p>";

/// Where a scenario reads the mail a server sent.
#[derive(Debug, Clone)]
pub enum Mailbox {
    /// The emulator's `GET /_emulator/mail`.
    Emulator,
    /// An SMTP sink the server delivers to.
    Smtp(Arc<SmtpSink>),
}

/// One server a scenario talks to.
#[derive(Debug, Clone)]
pub struct Target {
    pub profile: Profile,
    /// The API root (`http://127.0.0.1:9999`).
    pub url: String,
    pub anon_key: String,
    pub service_role_key: String,
    pub mailbox: Mailbox,
    /// The emulator's test routes (`/_emulator/*`: clock, faults, sessions) are served.
    pub emulator_routes: bool,
    /// A `psql` connection string to the real server's database, for scenarios that need
    /// time to pass (rows are back-dated instead).
    pub database: Option<String>,
    /// Keeps an in-process emulator running.
    pub(crate) _emulator: Option<Arc<EmulatorHandle>>,
}

impl Target {
    /// A server given by URL (a real GoTrue), its mail read from `mailbox`.
    pub fn remote(
        profile: Profile,
        url: &str,
        keys: (&str, &str),
        mailbox: Mailbox,
        database: Option<String>,
    ) -> Self {
        Self {
            profile,
            url: url.trim_end_matches('/').to_owned(),
            anon_key: keys.0.to_owned(),
            service_role_key: keys.1.to_owned(),
            mailbox,
            emulator_routes: false,
            database,
            _emulator: None,
        }
    }

    /// A fresh in-process emulator with the profile's configuration.
    pub async fn emulator(profile: Profile) -> Self {
        Self::emulator_with(profile, profile.emulator_config()).await
    }

    /// A fresh in-process emulator with a configuration of the caller's (for the
    /// emulator-only checks that need one setting changed).
    pub async fn emulator_with(profile: Profile, config: Config) -> Self {
        let emulator = gotrue_emulator::Emulator::start(config)
            .await
            .unwrap_or_else(|e| panic!("the emulator did not start: {e}"));
        Self {
            profile,
            url: emulator.url().to_owned(),
            anon_key: emulator.anon_key().to_owned(),
            service_role_key: emulator.service_role_key().to_owned(),
            mailbox: Mailbox::Emulator,
            emulator_routes: true,
            database: None,
            _emulator: Some(Arc::new(emulator)),
        }
    }
}
