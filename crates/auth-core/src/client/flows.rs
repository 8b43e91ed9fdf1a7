//! Sign-in: password, sign-up, email code and magic link, OAuth with PKCE, anonymous;
//! the flows this device started (the deep links that finish them are in `links.rs`).

use super::*;

/// How long a started flow may take to come back. An OAuth sign-in: GoTrue keeps its flow
/// state five minutes from `/authorize` and then sends the browser to the site URL, so ten
/// minutes is the longest a real one can take. A mailed link: GoTrue's links live for the
/// project's OTP expiry (24 h by default), and a link clicked after the server's five
/// minutes still confirms the address or spends the reset — the app keeps the flow so that
/// it can say so instead of "no sign-in is waiting".
fn flow_ttl_secs(kind: FlowKind) -> i64 {
    match kind {
        FlowKind::OAuth => 10 * 60,
        FlowKind::MagicLink | FlowKind::SignUp | FlowKind::Recovery | FlowKind::EmailChange => {
            24 * 60 * 60
        }
    }
}
/// How far the clock may have stepped back since a flow started (an NTP correction)
/// before the flow's age is no longer trusted.
const FLOW_CLOCK_SLACK_SECS: i64 = 5 * 60;
/// Flows kept at most (oldest dropped), as supabase-js does.
const MAX_FLOWS: usize = 5;

/// A flow just started and stored: what the request that starts it at the server sends.
pub(super) struct StartedFlow {
    pub(super) flow: PendingFlow,
    /// The PKCE challenge (S256) of the flow's verifier.
    pub(super) challenge: String,
    /// The app's callback for this flow: `redirect_to`.
    pub(super) redirect: String,
}

impl AuthClient {
    // --------------------------------------------------------------------------- sign-in

    pub(super) async fn sign_in_with(
        &self,
        resp: TokenResponse,
        event: AuthEvent,
    ) -> Result<SessionView, AuthError> {
        let session =
            Session::from_response(resp, self.inner.clock.now(), self.inner.cfg.refresh_margin)?;
        self.commit_new_session(session, event).await
    }

    pub(super) fn report<T>(&self, result: Result<T, AuthError>) -> Result<T, AuthError> {
        if let Err(e) = &result {
            self.emit_error(e);
        }
        result
    }

    pub(super) fn check_email(email: &str) -> Result<String, AuthError> {
        let email = email.trim();
        if email.is_empty() || !email.contains('@') {
            return Err(AuthError::InvalidInput("enter an email address".into()));
        }
        Ok(email.to_owned())
    }

    pub async fn sign_in_with_password(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<SessionView, AuthError> {
        order::scope(async move {
            let email = Self::check_email(email)?;
            let resp = self.inner.api.sign_in_with_password(&email, password).await;
            let resp = self.report(resp)?;
            self.sign_in_with(resp, AuthEvent::SignedIn).await
        })
        .await
    }

    pub async fn sign_in_anonymously(&self) -> Result<SessionView, AuthError> {
        order::scope(async move {
            let resp = self.inner.api.sign_in_anonymously(None).await;
            let resp = self.report(resp)?;
            self.sign_in_with(resp, AuthEvent::SignedIn).await
        })
        .await
    }

    /// Signs up; when the server wants the address confirmed first, the mailed link comes
    /// back to the app as a PKCE callback.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<SignUpOutcome, AuthError> {
        order::scope(async move {
            let email = Self::check_email(email)?;
            let StartedFlow {
                flow,
                challenge,
                redirect,
            } = self.start_flow(FlowKind::SignUp, Some(&email)).await?;
            let resp = self
                .inner
                .api
                .sign_up(&email, password, None, Some(&challenge), Some(&redirect))
                .await;
            match self.report(resp) {
                Ok(SignUpResponse::Session(resp)) => {
                    self.forget_flow(&flow.id).await;
                    let session = self.sign_in_with(*resp, AuthEvent::SignedIn).await?;
                    Ok(SignUpOutcome::SignedIn { session })
                }
                Ok(SignUpResponse::ConfirmationSent(user)) => {
                    Ok(SignUpOutcome::ConfirmationSent { email: user.email })
                }
                Err(e) => {
                    self.forget_flow(&flow.id).await;
                    Err(e)
                }
            }
        })
        .await
    }

    /// Sends the sign-up confirmation mail again (its link comes back as a sign-up flow of
    /// this device). The server answers the same whether or not the address has an
    /// unconfirmed account, so this says nothing about who signed up.
    pub async fn resend_confirmation(&self, email: &str) -> Result<(), AuthError> {
        order::scope(async move {
            let email = Self::check_email(email)?;
            let StartedFlow {
                flow,
                challenge,
                redirect,
            } = self.start_flow(FlowKind::SignUp, Some(&email)).await?;
            let result = self
                .inner
                .api
                .resend("signup", &email, Some(&challenge), Some(&redirect))
                .await;
            if result.is_err() {
                self.forget_flow(&flow.id).await;
            }
            self.report(result)
        })
        .await
    }

    /// Sends a magic link, which comes back as a PKCE callback. The mail carries a code too
    /// only if the project's template shows one (GoTrue's stock templates do not).
    pub async fn sign_in_with_otp(&self, email: &str) -> Result<(), AuthError> {
        order::scope(async move {
            let email = Self::check_email(email)?;
            let StartedFlow {
                flow,
                challenge,
                redirect,
            } = self.start_flow(FlowKind::MagicLink, Some(&email)).await?;
            let result = self
                .inner
                .api
                .send_otp(&email, true, Some(&challenge), Some(&redirect))
                .await;
            if result.is_err() {
                self.forget_flow(&flow.id).await;
            }
            self.report(result)
        })
        .await
    }

    /// Verifies an emailed code of the kind `kind` (`email` for a sign-in code).
    pub async fn verify_otp(
        &self,
        email: &str,
        code: &OneTimeCode,
        kind: OtpType,
    ) -> Result<SessionView, AuthError> {
        order::scope(async move {
            let email = Self::check_email(email)?;
            if code.is_empty() {
                return Err(AuthError::InvalidInput(
                    "enter the code from the email".into(),
                ));
            }
            let resp = self.inner.api.verify_otp(&email, code, kind).await;
            let resp = self.report(resp)?;
            let event = if kind == OtpType::Recovery {
                AuthEvent::PasswordRecovery
            } else {
                AuthEvent::SignedIn
            };
            self.sign_in_with(resp, event).await
        })
        .await
    }

    /// Sends a password-recovery link (a PKCE callback; a code too if the project's
    /// template shows one).
    pub async fn reset_password_for_email(&self, email: &str) -> Result<(), AuthError> {
        order::scope(async move {
            let email = Self::check_email(email)?;
            let StartedFlow {
                flow,
                challenge,
                redirect,
            } = self.start_flow(FlowKind::Recovery, Some(&email)).await?;
            let result = self
                .inner
                .api
                .recover(&email, Some(&challenge), Some(&redirect))
                .await;
            if result.is_err() {
                self.forget_flow(&flow.id).await;
            }
            self.report(result)
        })
        .await
    }

    /// The URL to open in the system browser for an OAuth sign-in (PKCE). The result comes
    /// back through [`AuthClient::handle_callback`].
    pub async fn sign_in_with_oauth(
        &self,
        provider: &str,
        scopes: Option<&str>,
    ) -> Result<String, AuthError> {
        order::scope(async move {
            if provider.is_empty()
                || !provider
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(AuthError::InvalidInput(format!(
                    "unknown provider {provider:?}"
                )));
            }
            let started = self.start_flow(FlowKind::OAuth, None).await?;
            self.inner
                .api
                .authorize_url(provider, &started.redirect, &started.challenge, scopes)
        })
        .await
    }

    fn callback_url(&self, flow_id: &str) -> String {
        format!(
            "{}/callback?flow={flow_id}",
            self.inner.cfg.callback_base.trim_end_matches('/')
        )
    }

    pub(super) async fn load_flows(&self) -> Vec<PendingFlow> {
        let key = self.inner.cfg.key(StoreKey::Flows);
        match persist::load::<Vec<PendingFlow>>(&self.inner.store, &key).await {
            Ok(flows) => flows.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(code = e.code(), "pending flows unreadable; starting afresh");
                let _ = self.inner.store.delete(&key).await;
                Vec::new()
            }
        }
    }

    /// Starts a flow; `email` is the address a mailed link was sent to (the link must
    /// sign in that address).
    pub(super) async fn start_flow(
        &self,
        kind: FlowKind,
        email: Option<&str>,
    ) -> Result<StartedFlow, AuthError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut id = [0u8; 12];
        rand::rng().fill(&mut id);
        let flow = PendingFlow {
            id: URL_SAFE_NO_PAD.encode(id),
            kind,
            verifier: CodeVerifier::new(verifier),
            created_at: unix_secs(self.inner.clock.now()),
            email: email.map(str::to_owned),
        };
        let now = unix_secs(self.inner.clock.now());
        let _order = order::enter(order::Level::Flows);
        let _edit = self.inner.flows_gate.lock().await;
        let mut flows = self.load_flows().await;
        flows.retain(|f| now - f.created_at < flow_ttl_secs(f.kind));
        flows.push(flow.clone());
        while flows.len() > MAX_FLOWS {
            flows.remove(0);
        }
        persist::save(
            &self.inner.store,
            &self.inner.cfg.key(StoreKey::Flows),
            &flows,
        )
        .await?;
        let redirect = self.callback_url(&flow.id);
        Ok(StartedFlow {
            flow,
            challenge,
            redirect,
        })
    }

    /// Takes the flow out of the store (single use). A flow younger than the clock allows
    /// (the clock was stepped back by more than a few minutes) is not taken as fresh.
    pub(super) async fn take_flow(&self, id: &str) -> Option<PendingFlow> {
        let _order = order::enter(order::Level::Flows);
        let _edit = self.inner.flows_gate.lock().await;
        let mut flows = self.load_flows().await;
        let index = flows.iter().position(|f| f.id == id)?;
        let flow = flows.remove(index);
        if let Err(e) = persist::save(
            &self.inner.store,
            &self.inner.cfg.key(StoreKey::Flows),
            &flows,
        )
        .await
        {
            tracing::warn!(code = e.code(), "could not remove a used flow");
        }
        self.is_fresh(&flow).then_some(flow)
    }

    /// The flow, left in the store (a link that is half of a flow: the first address of a
    /// secure email change).
    pub(super) async fn peek_flow(&self, id: &str) -> Option<PendingFlow> {
        let _order = order::enter(order::Level::Flows);
        let _edit = self.inner.flows_gate.lock().await;
        self.load_flows()
            .await
            .into_iter()
            .find(|f| f.id == id)
            .filter(|f| self.is_fresh(f))
    }

    fn is_fresh(&self, flow: &PendingFlow) -> bool {
        let now = unix_secs(self.inner.clock.now());
        let age = now.saturating_sub(flow.created_at);
        age < flow_ttl_secs(flow.kind) && age > -FLOW_CLOCK_SLACK_SECS
    }

    pub(super) async fn forget_flow(&self, id: &str) {
        let _ = self.take_flow(id).await;
    }
}
