//! Builds the Tauri context from the workspace-root `tauri.conf.json`, and declares the
//! app's commands so that capabilities can grant exactly them.

/// Every command the UI can call (see `src/auth/commands.rs`).
const COMMANDS: &[&str] = &[
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
];

fn main() {
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=../ui");
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri build failed: {e:#}");
    }
}
