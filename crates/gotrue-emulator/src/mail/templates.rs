//! The mail templates, per type, as GoTrue configures them (`GOTRUE_MAILER_TEMPLATES_*`,
//! `GOTRUE_MAILER_SUBJECTS_*`), with GoTrue's own defaults
//! (`internal/mailer/templatemailer/templatemailer.go` at v2.196).
//!
//! GoTrue's stock templates carry a link only (`{{ .ConfirmationURL }}`): no one-time
//! code reaches the user unless the project's template shows `{{ .Token }}`. The
//! reauthentication mail is the exception — it is a code only.

use serde_json::Value;

use super::template::{Template, TemplateError};

/// A template's subject and body, as source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTemplate {
    pub subject: String,
    pub body: String,
}

impl MailTemplate {
    pub fn new(subject: &str, body: &str) -> Self {
        Self {
            subject: subject.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// The template of each mail type GoTrue sends a link or code with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTemplates {
    pub confirmation: MailTemplate,
    pub invite: MailTemplate,
    pub magic_link: MailTemplate,
    pub recovery: MailTemplate,
    /// Both mails of an email change (to the new address, and with secure email change to
    /// the current one too) use this template.
    pub email_change: MailTemplate,
    pub reauthentication: MailTemplate,
}

/// GoTrue's stock bodies, word for word.
const CONFIRMATION: &str = "<h2>Confirm your email address</h2>\n\n<p>Follow the link below to confirm this email address and finish signing up.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Confirm email address</a></p>\n";
const INVITE: &str = "<h2>You've been invited</h2>\n\n<p>You've been invited to create an account. Follow the link below to accept.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Accept invitation</a></p>";
const MAGIC_LINK: &str = "<h2>Your sign-in link</h2>\n\n<p>Follow the link below to sign in. This link expires shortly and can only be used once.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Sign in</a></p>";
const RECOVERY: &str = "<h2>Reset your password</h2>\n\n<p>We received a request to reset your password. Follow the link below to choose a new one.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Reset password</a></p>\n<p>If you didn't request this, you can safely ignore this email.</p>";
const EMAIL_CHANGE: &str = "<h2>Confirm your new email address</h2>\n\n<p>Follow the link below to confirm {{ .NewEmail }} as your new email address.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Confirm new email address</a></p>\n<p>If you didn't request this change, you can safely ignore this email.</p>";
const REAUTHENTICATION: &str = "<h2>Your verification code</h2>\n\n<p>Use the code below to verify your identity. It expires shortly.</p>\n<p>{{ .Token }}</p>";

/// The line a project adds to a stock template to mail the one-time code too.
const CODE_LINE: &str = "\n<p>Or enter this code: {{ .Token }}</p>";

impl MailTemplates {
    /// GoTrue's stock templates: links only (and a code for reauthentication).
    pub fn gotrue_defaults() -> Self {
        Self {
            confirmation: MailTemplate::new("Confirm your email address", CONFIRMATION),
            invite: MailTemplate::new("You've been invited", INVITE),
            magic_link: MailTemplate::new("Your sign-in link", MAGIC_LINK),
            recovery: MailTemplate::new("Reset your password", RECOVERY),
            email_change: MailTemplate::new("Confirm your new email address", EMAIL_CHANGE),
            reauthentication: MailTemplate::new(
                "{{ .Token }} is your verification code",
                REAUTHENTICATION,
            ),
        }
    }

    /// The stock templates with the one-time code added to each link mail, as a project
    /// that edits its templates to offer codes has them.
    pub fn with_codes() -> Self {
        let mut t = Self::gotrue_defaults();
        for m in [
            &mut t.confirmation,
            &mut t.invite,
            &mut t.magic_link,
            &mut t.recovery,
            &mut t.email_change,
        ] {
            m.body.push_str(CODE_LINE);
        }
        t
    }

    /// Sets one type's template by GoTrue's name for it (`confirmation`, `invite`,
    /// `magic_link`, `recovery`, `email_change`, `reauthentication`).
    pub fn set(&mut self, name: &str, template: MailTemplate) -> Result<(), TemplateError> {
        *self.slot(name)? = template;
        Ok(())
    }

    /// One type's subject template, by GoTrue's name for the type.
    pub fn subject(&mut self, name: &str) -> Result<String, TemplateError> {
        Ok(self.slot(name)?.subject.clone())
    }

    fn slot(&mut self, name: &str) -> Result<&mut MailTemplate, TemplateError> {
        Ok(match name {
            "confirmation" => &mut self.confirmation,
            "invite" => &mut self.invite,
            "magic_link" => &mut self.magic_link,
            "recovery" => &mut self.recovery,
            "email_change" => &mut self.email_change,
            "reauthentication" => &mut self.reauthentication,
            other => {
                return Err(TemplateError(format!(
                    "no mail template is called {other:?} (confirmation, invite, magic_link, \
                     recovery, email_change, reauthentication)"
                )));
            }
        })
    }
}

impl Default for MailTemplates {
    fn default() -> Self {
        Self::gotrue_defaults()
    }
}

/// One mail template, parsed.
#[derive(Debug, Clone)]
pub struct ParsedTemplate {
    subject: Template,
    body: Template,
}

impl ParsedTemplate {
    fn parse(name: &str, source: &MailTemplate) -> Result<Self, TemplateError> {
        let wrap = |part: &str, e: TemplateError| {
            TemplateError(format!("the {name} mail template's {part}: {e}"))
        };
        Ok(Self {
            subject: Template::parse(&source.subject).map_err(|e| wrap("subject", e))?,
            body: Template::parse(&source.body).map_err(|e| wrap("body", e))?,
        })
    }

    /// Whether the mail shows the one-time code.
    pub fn shows_code(&self) -> bool {
        self.subject.uses("Token") || self.body.uses("Token")
    }

    /// The subject and the HTML body for `data`.
    pub fn render(&self, data: &Value) -> (String, String) {
        (self.subject.render(data), self.body.render(data))
    }
}

/// Every template, parsed once when the server starts.
#[derive(Debug, Clone)]
pub struct ParsedTemplates {
    pub confirmation: ParsedTemplate,
    pub invite: ParsedTemplate,
    pub magic_link: ParsedTemplate,
    pub recovery: ParsedTemplate,
    pub email_change: ParsedTemplate,
    pub reauthentication: ParsedTemplate,
}

impl ParsedTemplates {
    pub fn parse(t: &MailTemplates) -> Result<Self, TemplateError> {
        Ok(Self {
            confirmation: ParsedTemplate::parse("confirmation", &t.confirmation)?,
            invite: ParsedTemplate::parse("invite", &t.invite)?,
            magic_link: ParsedTemplate::parse("magic_link", &t.magic_link)?,
            recovery: ParsedTemplate::parse("recovery", &t.recovery)?,
            email_change: ParsedTemplate::parse("email_change", &t.email_change)?,
            reauthentication: ParsedTemplate::parse("reauthentication", &t.reauthentication)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_templates_parse_and_only_reauthentication_shows_a_code() {
        let parsed = ParsedTemplates::parse(&MailTemplates::gotrue_defaults()).unwrap();
        for t in [
            &parsed.confirmation,
            &parsed.invite,
            &parsed.magic_link,
            &parsed.recovery,
            &parsed.email_change,
        ] {
            assert!(!t.shows_code());
        }
        assert!(parsed.reauthentication.shows_code());
        let with = ParsedTemplates::parse(&MailTemplates::with_codes()).unwrap();
        assert!(with.magic_link.shows_code() && with.email_change.shows_code());
    }

    #[test]
    fn an_unknown_type_or_a_bad_template_is_named() {
        let mut t = MailTemplates::default();
        assert!(t.set("signup", MailTemplate::new("s", "b")).is_err());
        t.set(
            "recovery",
            MailTemplate::new("s", "{{ if .Token }}{{ end }}"),
        )
        .unwrap();
        let e = ParsedTemplates::parse(&t).unwrap_err();
        assert!(e.0.contains("recovery"), "{e}");
    }
}
