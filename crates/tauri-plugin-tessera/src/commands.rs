//! The commands the UI calls (names and payloads are the contract in DESIGN.md). Each is
//! a thin adapter: arguments in, one engine call, a serializable result or `CommandError`.

use auth_core::{
    AccountSwitch, DeviceSession, MfaEnrollment, OneTimeCode, Password, RevokeOutcome, SessionView,
    SignOutOutcome, SignOutScope, SignUpOutcome, User, UserUpdate,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{AppHandle, Manager, Runtime, State};

use crate::error::CommandError;
use crate::{AuthState, BackendInfo, Preferences};

type Result<T> = std::result::Result<T, CommandError>;

#[tauri::command]
pub async fn auth_state(state: State<'_, AuthState>) -> Result<Option<SessionView>> {
    state.ready().await;
    // No server connected yet: nobody is signed in.
    Ok(state.client().ok().and_then(|client| client.session()))
}

/// Which server the app talks to (and the demo account when it is the embedded emulator).
#[tauri::command]
pub async fn auth_backend(state: State<'_, AuthState>) -> Result<BackendInfo> {
    Ok(state.backend())
}

#[tauri::command]
pub async fn auth_sign_up<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    email: String,
    password: String,
) -> Result<SignUpOutcome> {
    state.ready().await;
    let outcome = state
        .client()?
        .sign_up(&email, &Password::new(password))
        .await?;
    crate::remember_email(&app, &email);
    Ok(outcome)
}

#[tauri::command]
pub async fn auth_sign_in_with_password<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    email: String,
    password: String,
) -> Result<SessionView> {
    state.ready().await;
    let view = state
        .client()?
        .sign_in_with_password(&email, &Password::new(password))
        .await?;
    crate::remember_email(&app, &email);
    Ok(view)
}

#[tauri::command]
pub async fn auth_sign_in_anonymously(state: State<'_, AuthState>) -> Result<SessionView> {
    state.ready().await;
    Ok(state.client()?.sign_in_anonymously().await?)
}

/// Sends a magic link (PKCE; it comes back as a deep link) and a 6-digit code.
#[tauri::command]
pub async fn auth_sign_in_with_otp<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    email: String,
) -> Result<()> {
    state.ready().await;
    state.client()?.sign_in_with_otp(&email).await?;
    crate::remember_email(&app, &email);
    Ok(())
}

#[tauri::command]
pub async fn auth_verify_otp(
    state: State<'_, AuthState>,
    email: String,
    token: String,
    r#type: Option<String>,
) -> Result<SessionView> {
    state.ready().await;
    let kind = match r#type {
        Some(kind) => kind.parse::<auth_core::OtpType>()?,
        None => auth_core::OtpType::Email,
    };
    Ok(state
        .client()?
        .verify_otp(&email, &OneTimeCode::new(token), kind)
        .await?)
}

/// Opens the provider's sign-in page in the system browser; the result comes back as a
/// `tessera://auth/callback` deep link.
#[tauri::command]
pub async fn auth_sign_in_with_oauth<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    provider: String,
) -> Result<()> {
    state.ready().await;
    let url = state.client()?.sign_in_with_oauth(&provider, None).await?;
    crate::open_in_browser(&app, &url)
}

#[tauri::command]
pub async fn auth_sign_out(
    state: State<'_, AuthState>,
    scope: Option<String>,
) -> Result<SignOutOutcome> {
    state.ready().await;
    let scope: SignOutScope = scope.as_deref().unwrap_or("global").parse()?;
    Ok(state.client()?.sign_out(scope).await?)
}

/// Your devices: the user's sessions, this one marked.
#[tauri::command]
pub async fn auth_list_sessions(state: State<'_, AuthState>) -> Result<Vec<DeviceSession>> {
    state.ready().await;
    Ok(state.client()?.list_sessions().await?)
}

/// Signs one of the listed sessions out (this device's own: a local sign-out).
#[tauri::command]
pub async fn auth_revoke_session(
    state: State<'_, AuthState>,
    session_id: String,
) -> Result<RevokeOutcome> {
    state.ready().await;
    Ok(state.client()?.revoke_session(&session_id).await?)
}

#[tauri::command]
pub async fn auth_refresh(state: State<'_, AuthState>) -> Result<SessionView> {
    state.ready().await;
    Ok(state.client()?.refresh().await?)
}

#[tauri::command]
pub async fn auth_user(state: State<'_, AuthState>) -> Result<User> {
    state.ready().await;
    Ok(state.client()?.user().await?)
}

#[tauri::command]
pub async fn auth_update_user(
    state: State<'_, AuthState>,
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
) -> Result<User> {
    state.ready().await;
    let update = UserUpdate {
        email: email.filter(|e| !e.is_empty()),
        password: password.filter(|p| !p.is_empty()).map(Password::new),
        data,
    };
    if update.email.is_none() && update.password.is_none() && update.data.is_none() {
        return Err(CommandError::new("invalid_input", "Nothing to update."));
    }
    Ok(state.client()?.update_user(update).await?)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Factors {
    pub all: Vec<auth_core::backend::Factor>,
    /// Verified TOTP factors: when there is one, sign-in asks for a code.
    pub totp: Vec<auth_core::backend::Factor>,
}

#[tauri::command]
pub async fn auth_mfa_factors(state: State<'_, AuthState>) -> Result<Factors> {
    state.ready().await;
    let user = state.client()?.user().await?;
    let totp = user
        .factors
        .iter()
        .filter(|f| f.factor_type == "totp" && f.status == "verified")
        .cloned()
        .collect();
    Ok(Factors {
        all: user.factors,
        totp,
    })
}

#[tauri::command]
pub async fn auth_mfa_enroll(
    state: State<'_, AuthState>,
    friendly_name: Option<String>,
) -> Result<MfaEnrollment> {
    state.ready().await;
    Ok(state
        .client()?
        .mfa_enroll(friendly_name.as_deref().filter(|n| !n.is_empty()))
        .await?)
}

#[tauri::command]
pub async fn auth_mfa_verify(
    state: State<'_, AuthState>,
    factor_id: String,
    code: String,
) -> Result<SessionView> {
    state.ready().await;
    Ok(state
        .client()?
        .mfa_verify(&factor_id, &OneTimeCode::new(code.trim()))
        .await?)
}

#[tauri::command]
pub async fn auth_mfa_unenroll(state: State<'_, AuthState>, factor_id: String) -> Result<()> {
    state.ready().await;
    Ok(state.client()?.mfa_unenroll(&factor_id).await?)
}

#[tauri::command]
pub async fn auth_preferences<R: Runtime>(app: AppHandle<R>) -> Result<Preferences> {
    Ok(crate::load_preferences(&app))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesUpdate {
    pub idle_sign_out_minutes: Option<u32>,
}

#[tauri::command]
pub async fn auth_set_preferences<R: Runtime>(
    app: AppHandle<R>,
    preferences: PreferencesUpdate,
) -> Result<Preferences> {
    let minutes = preferences.idle_sign_out_minutes.filter(|m| *m > 0);
    if minutes.is_some_and(|m| m > 24 * 60) {
        return Err(CommandError::new(
            "invalid_input",
            "Idle sign-out must be at most 24 hours.",
        ));
    }
    crate::save_preference(&app, "idleSignOutMinutes", serde_json::json!(minutes));
    if let Some(state) = app.try_state::<AuthState>()
        && let Ok(client) = state.client()
    {
        crate::apply_idle_timeout(&app, &client);
    }
    Ok(crate::load_preferences(&app))
}

/// Confirms a change of email address with the code mailed to `email`.
#[tauri::command]
pub async fn auth_confirm_email_change(
    state: State<'_, AuthState>,
    email: String,
    code: String,
) -> Result<auth_core::EmailChangeOutcome> {
    state.ready().await;
    Ok(state
        .client()?
        .confirm_email_change(&email, &OneTimeCode::new(code.trim()))
        .await?)
}

/// The person did something in a window: the app-wide idle timer starts again.
#[tauri::command]
pub async fn auth_activity(state: State<'_, AuthState>) -> Result<()> {
    if let Ok(client) = state.client() {
        client.activity();
    }
    Ok(())
}

/// Opens another window on the same session (every window gets every event). A phone app
/// has one window: there it is refused with `unsupported`.
#[tauri::command]
pub async fn auth_open_window<R: Runtime>(app: AppHandle<R>) -> Result<String> {
    #[cfg(desktop)]
    {
        let n = app.webview_windows().len() + 1;
        let label = format!("window-{n}-{}", std::process::id());
        tauri::WebviewWindowBuilder::new(&app, &label, tauri::WebviewUrl::App("index.html".into()))
            .title("Tessera")
            .inner_size(720.0, 640.0)
            .build()
            .map_err(|e| CommandError::new("window_error", e.to_string()))?;
        Ok(label)
    }
    #[cfg(mobile)]
    {
        let _ = app;
        Err(CommandError::new(
            "unsupported",
            "a phone app has one window; another cannot be opened",
        ))
    }
}

/// The account switch a link asked for and the user has not answered yet (the UI shows
/// it at start too, in case the link came before the window listened).
#[tauri::command]
pub async fn auth_pending_account_switch(
    state: State<'_, AuthState>,
) -> Result<Option<AccountSwitch>> {
    state.ready().await;
    Ok(state.client()?.pending_account_switch().await)
}

/// The user's answer: `accept` signs in the link's account; otherwise its session is
/// revoked and nothing else changes.
#[tauri::command]
pub async fn auth_resolve_account_switch(
    state: State<'_, AuthState>,
    id: String,
    accept: bool,
) -> Result<Option<SessionView>> {
    state.ready().await;
    Ok(state.client()?.resolve_account_switch(&id, accept).await?)
}

/// Checks a server as the person typed it: reachable, a GoTrue, the key accepted (never a
/// secret key), and what it offers. Saves nothing.
#[tauri::command]
pub async fn auth_check_server(
    state: State<'_, AuthState>,
    url: String,
    anon_key: String,
) -> Result<auth_core::server::ServerInfo> {
    // A build locked to its server has nothing to check (and no reason to let the page
    // make requests to other hosts).
    crate::server::refuse_if_locked(&state)?;
    crate::server::check(&url, &anon_key).await
}

/// Checks, saves and switches to a server (its own stored session is restored).
#[tauri::command]
pub async fn auth_set_server<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    url: String,
    anon_key: String,
) -> Result<BackendInfo> {
    crate::server::set(&app, &state, &url, &anon_key).await
}

/// Forgets the saved server: back to the app's embedded server (or to none).
#[tauri::command]
pub async fn auth_reset_server<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
) -> Result<BackendInfo> {
    crate::server::forget(&app, &state).await
}

/// Sends a password-recovery mail; its link comes back as a `PASSWORD_RECOVERY` sign-in.
#[tauri::command]
pub async fn auth_reset_password_for_email<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    email: String,
) -> Result<()> {
    state.ready().await;
    state.client()?.reset_password_for_email(&email).await?;
    crate::remember_email(&app, &email);
    Ok(())
}

/// Sign-outs still owed to the server (queued while it could not be reached).
#[tauri::command]
pub async fn auth_pending_sign_outs(
    state: State<'_, AuthState>,
) -> Result<Vec<auth_core::PendingRevocation>> {
    state.ready().await;
    Ok(state.client()?.pending_revocations().await?)
}

/// Tries every queued sign-out now; returns how many are still waiting.
#[tauri::command]
pub async fn auth_retry_sign_outs(state: State<'_, AuthState>) -> Result<usize> {
    state.ready().await;
    Ok(state.client()?.flush_outbox().await?)
}

/// The mails the embedded demo server sent (codes shown; links stay on the Rust side).
#[tauri::command]
pub async fn auth_demo_mailbox<R: Runtime>(app: AppHandle<R>) -> Result<Vec<crate::DemoMailView>> {
    crate::demo_mailbox(&app)
}

/// Opens the link of a demo mail as the person's browser would: the demo server's
/// `/verify` answers with a redirect to the app, which is then handled exactly as if the
/// OS had handed it over.
#[tauri::command]
pub async fn auth_open_demo_mail<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AuthState>,
    id: i64,
) -> Result<()> {
    let link = crate::demo_mail_link(&app, id)?;
    state.ready().await;
    let result = state.client()?.follow_email_link(&link).await;
    crate::announce_link(&app, result);
    Ok(())
}

/// Sends the sign-up confirmation mail again.
#[tauri::command]
pub async fn auth_resend_confirmation(state: State<'_, AuthState>, email: String) -> Result<()> {
    state.ready().await;
    Ok(state.client()?.resend_confirmation(&email).await?)
}
