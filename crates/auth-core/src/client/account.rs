//! The signed-in user: profile, MFA factors, and "Your devices".

use super::*;

/// The name a TOTP factor gets when the user gives none.
const DEFAULT_FACTOR_NAME: &str = "Authenticator app";

/// `base`, or `base 2`, `base 3`, … — the first no factor of the user has.
fn unique_factor_name(base: &str, factors: &[crate::backend::Factor]) -> String {
    let taken = |name: &str| factors.iter().any(|f| f.friendly_name == name);
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base} {n}"))
        .find(|name| !taken(name))
        .unwrap_or_else(|| base.to_owned())
}

impl AuthClient {
    // --------------------------------------------------------------------------- user, MFA

    /// The user, fresh from the server.
    pub async fn user(&self) -> Result<User, AuthError> {
        order::scope(async move {
            let token = self.access_token().await?;
            let raw = match self.inner.api.get_user(&token).await {
                Ok(raw) => raw,
                Err(e) if e.ends_session() => {
                    self.end_session(SignOutReason::Revoked, Expect::Any).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            self.update_user_locally(raw.clone(), false).await?;
            crate::decode::from_value("user", raw)
        })
        .await
    }

    /// Changes the user. A new email address starts a flow of this device: the project's
    /// confirmation links come back to the app (PKCE) and finish the change there, and
    /// neither link signs a browser in.
    pub async fn update_user(&self, update: UserUpdate) -> Result<User, AuthError> {
        order::scope(async move {
            let token = self.access_token().await?;
            let current = self.current().map(|s| s.user.email).unwrap_or_default();
            let new_email = update
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case(&current));
            let flow = match new_email {
                Some(email) => Some(self.start_flow(FlowKind::EmailChange, Some(email)).await?),
                None => None,
            };
            let raw = self
                .inner
                .api
                .update_user(
                    &token,
                    &update,
                    flow.as_ref().map(|f| f.challenge.as_str()),
                    flow.as_ref().map(|f| f.redirect.as_str()),
                )
                .await;
            if raw.is_err()
                && let Some(started) = &flow
            {
                self.forget_flow(&started.flow.id).await;
            }
            let raw = self.report(raw)?;
            self.update_user_locally(raw.clone(), true).await?;
            crate::decode::from_value("user", raw)
        })
        .await
    }

    /// Confirms a change of email address with the code mailed to `email` (the current or
    /// the new address). GoTrue answers a completed change with a new session: this device
    /// keeps its own, and that extra session is ended at the server through the outbox.
    pub async fn confirm_email_change(
        &self,
        email: &str,
        code: &OneTimeCode,
    ) -> Result<crate::model::EmailChangeOutcome, AuthError> {
        order::scope(async move {
            use crate::model::EmailChangeOutcome;
            let email = Self::check_email(email)?;
            if code.is_empty() {
                return Err(AuthError::InvalidInput(
                    "enter the code from the email".into(),
                ));
            }
            let token = self.access_token().await?;
            let answer = self.inner.api.verify_email_change(&email, code).await;
            let Some(resp) = self.report(answer)? else {
                return Ok(EmailChangeOutcome::OtherAddressPending);
            };
            self.end_extra_session(resp).await;
            let raw = self.report(self.inner.api.get_user(&token).await)?;
            self.update_user_locally(raw.clone(), true).await?;
            Ok(EmailChangeOutcome::Changed {
                user: Box::new(crate::decode::from_value("user", raw)?),
            })
        })
        .await
    }

    /// The session GoTrue issues when an email change completes: this device keeps its
    /// own, so that one is ended at the server through the outbox.
    pub(super) async fn end_extra_session(&self, resp: TokenResponse) {
        let now = self.inner.clock.now();
        match Session::from_response(resp, now, self.inner.cfg.refresh_margin) {
            Ok(extra) => {
                let mut entry = self.outbox_entry(&extra, SignOutScope::Local);
                entry.next_attempt_at = unix_ms(now);
                if let Err(e) = self.push_outbox(entry).await {
                    tracing::warn!(code = e.code(), "could not queue the extra session's end");
                }
            }
            Err(e) => tracing::warn!(code = e.code(), "the email change's session is unreadable"),
        }
    }

    /// Starts a TOTP enrolment. GoTrue refuses a friendly name any factor of the user
    /// already has — an abandoned, unverified one of the last five minutes included, and
    /// the empty name too (`mfa_factor_name_conflict`) — so the name is made unique:
    /// `Authenticator app`, then `Authenticator app 2`, ….
    pub async fn mfa_enroll(
        &self,
        friendly_name: Option<&str>,
    ) -> Result<MfaEnrollment, AuthError> {
        order::scope(async move {
            let user = self.report(self.user().await)?;
            let base = friendly_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(DEFAULT_FACTOR_NAME);
            let name = unique_factor_name(base, &user.factors);
            let token = self.access_token().await?;
            let r = self.inner.api.mfa_enroll(&token, Some(&name)).await;
            self.report(r)
        })
        .await
    }

    /// Challenges and verifies a TOTP factor; the session becomes `aal2`.
    pub async fn mfa_verify(
        &self,
        factor_id: &str,
        code: &OneTimeCode,
    ) -> Result<SessionView, AuthError> {
        order::scope(async move {
            let token = self.access_token().await?;
            let challenge = self.inner.api.mfa_challenge(&token, factor_id).await;
            let challenge = self.report(challenge)?;
            let resp = self
                .inner
                .api
                .mfa_verify(&token, factor_id, &challenge, code)
                .await;
            let resp = self.report(resp)?;
            self.sign_in_with(resp, AuthEvent::MfaChallengeVerified)
                .await
        })
        .await
    }

    pub async fn mfa_unenroll(&self, factor_id: &str) -> Result<(), AuthError> {
        order::scope(async move {
            let token = self.access_token().await?;
            let r = self.inner.api.mfa_unenroll(&token, factor_id).await;
            self.report(r)?;
            self.user().await.map(|_| ())
        })
        .await
    }

    // --------------------------------------------------------------------------- devices

    /// The user's sessions ("Your devices"), most recently active first, through the SQL
    /// functions of `supabase/migrations/*_tessera_your_devices.sql`.
    pub async fn list_sessions(&self) -> Result<Vec<crate::model::DeviceSession>, AuthError> {
        order::scope(async move {
            let token = self.access_token().await?;
            let rows = self.inner.api.list_sessions(&token).await?;
            let current = self.current().map(|s| s.session_id).unwrap_or_default();
            Ok(rows
                .into_iter()
                .map(|r| {
                    // `refreshed_at` has no zone (GoTrue writes UTC); say so for the UI.
                    let refreshed = r.refreshed_at.map(|t| {
                        if t.ends_with('Z') || t.contains('+') {
                            t
                        } else {
                            format!("{t}Z")
                        }
                    });
                    let created_at = r.created_at.unwrap_or_default();
                    let last_active_at = refreshed
                        .or(r.updated_at)
                        .unwrap_or_else(|| created_at.clone());
                    crate::model::DeviceSession {
                        is_current: r.is_current || (!current.is_empty() && r.id == current),
                        id: r.id,
                        created_at,
                        last_active_at,
                        user_agent: r.user_agent,
                        ip: r.ip,
                        aal: r.aal,
                    }
                })
                .collect())
        })
        .await
    }

    /// Signs one session out from "Your devices". This device's own session is a local
    /// sign-out (immediate, even offline); another device's is deleted on the server, and
    /// that device learns it at its next refresh or validation (`SIGNED_OUT`, `revoked`).
    pub async fn revoke_session(
        &self,
        session_id: &str,
    ) -> Result<crate::model::RevokeOutcome, AuthError> {
        order::scope(async move {
            let id = uuid::Uuid::parse_str(session_id)
                .map_err(|_| {
                    AuthError::InvalidInput(format!("{session_id:?} is not a session id"))
                })?
                .to_string();
            if self.current().is_some_and(|s| s.session_id == id) {
                let sign_out = self.sign_out(SignOutScope::Local).await?;
                return Ok(crate::model::RevokeOutcome::ThisDevice { sign_out });
            }
            let token = self.access_token().await?;
            if self.inner.api.revoke_session(&token, &id).await? {
                Ok(crate::model::RevokeOutcome::OtherDevice)
            } else {
                Err(AuthError::Api {
                    status: 404,
                    code: "device_not_found".into(),
                    message: "no such session among yours (it may have ended already)".into(),
                })
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(name: &str) -> crate::backend::Factor {
        crate::backend::Factor {
            id: name.into(),
            friendly_name: name.into(),
            factor_type: "totp".into(),
            status: "unverified".into(),
        }
    }

    #[test]
    fn factor_names_are_made_unique() {
        assert_eq!(unique_factor_name("Phone", &[]), "Phone");
        let taken = [factor("Phone"), factor("Phone 2")];
        assert_eq!(unique_factor_name("Phone", &taken), "Phone 3");
        assert_eq!(unique_factor_name("Laptop", &taken), "Laptop");
    }
}
