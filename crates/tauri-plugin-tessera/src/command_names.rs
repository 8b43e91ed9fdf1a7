// The one list of the plugin's commands. `build.rs` generates their permissions and the
// `default` set from it; `lib.rs` exports it, and the app's command tests check that every
// entry is handled and allowed. (Included by both, so it stays a plain constant.)

/// Every command the UI can call, as `plugin:tessera|<name>`.
pub const COMMANDS: &[&str] = &[
    "auth_state",
    "auth_backend",
    "auth_sign_up",
    "auth_sign_in_with_password",
    "auth_sign_in_anonymously",
    "auth_sign_in_with_otp",
    "auth_verify_otp",
    "auth_sign_in_with_oauth",
    "auth_sign_out",
    "auth_refresh",
    "auth_user",
    "auth_update_user",
    "auth_mfa_factors",
    "auth_mfa_enroll",
    "auth_mfa_verify",
    "auth_mfa_unenroll",
    "auth_preferences",
    "auth_set_preferences",
    "auth_open_window",
    "auth_list_sessions",
    "auth_revoke_session",
    "auth_pending_account_switch",
    "auth_resolve_account_switch",
    "auth_check_server",
    "auth_set_server",
    "auth_reset_server",
    "auth_reset_password_for_email",
    "auth_pending_sign_outs",
    "auth_retry_sign_outs",
    "auth_demo_mailbox",
    "auth_open_demo_mail",
    "auth_resend_confirmation",
];
