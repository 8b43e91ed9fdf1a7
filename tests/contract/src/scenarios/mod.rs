//! Every scenario, by area. A scenario is an `async fn(Env)` that asserts what GoTrue does
//! (v2.196 is the reference: `docs/fidelity.md`); the registry below names its profile.

use crate::{Profile, Scenario};

pub mod admin;
pub mod auth_routes;
pub mod errors;
pub mod links;
pub mod logout;
pub mod mail;
pub mod meta;
pub mod mfa;
pub mod oauth;
pub mod sessions;
pub mod signup;
pub mod tokens;
pub mod user;

/// Registers scenarios: `module::function => Profile`.
macro_rules! registry {
    ($($module:ident :: $name:ident => $profile:ident),* $(,)?) => {
        /// Every scenario.
        pub fn all() -> Vec<Scenario> {
            vec![$(
                Scenario {
                    name: concat!(stringify!($module), "::", stringify!($name)),
                    profile: Profile::$profile,
                    run: |env| Box::pin($module::$name(env)),
                },
            )*]
        }
    };
}

registry! {
    links::stock_templates_mail_a_link_and_no_code => Confirm,
    links::the_old_app_link_template_renders_a_dead_link => AppLinkTemplate,
    links::a_template_that_shows_the_code_mails_a_working_code => Codes,
    links::a_resent_confirmation_is_a_pkce_link_of_its_own => Confirm,
    links::a_signup_link_after_five_minutes_confirms_but_cannot_sign_in => Confirm,
    links::a_recovery_link_after_five_minutes_is_used_up => Confirm,
    links::a_magic_link_counts_its_five_minutes_from_the_click => Autoconfirm,
    links::a_redirect_off_the_allow_list_falls_back_to_referer_then_site => Confirm,
    links::email_change_with_pkce_ends_in_a_code_not_a_session => Confirm,
    links::email_change_without_pkce_puts_a_session_in_the_browser => Confirm,
    oauth::an_unknown_or_broken_state_lands_on_the_site_url => Autoconfirm,
    oauth::an_oauth_state_expires_five_minutes_after_authorize => Autoconfirm,
    oauth::a_provider_refusal_reaches_the_app_without_an_error_code => Autoconfirm,
    sessions::global_sign_out_without_this_session_revokes_nothing => Autoconfirm,
    sessions::a_malformed_refresh_token_is_a_validation_failure => Autoconfirm,
    sessions::mfa_factor_names_must_be_unique => Autoconfirm,
    oauth::authorize_checks_its_input => Autoconfirm,
    oauth::a_pkce_grant_checks_its_code => Autoconfirm,
    oauth::oauth_pkce_sign_in_and_code_rules => Autoconfirm,
    oauth::oauth_implicit_flow_cancel_and_replayed_callback => Autoconfirm,
    oauth::redirect_targets_outside_the_allow_list_fall_back_to_site_url => Autoconfirm,
    oauth::a_refusal_for_a_redirect_off_the_allow_list_lands_on_the_site_url => Autoconfirm,
    meta::health_settings_and_jwks => Autoconfirm,
    signup::signup_returns_a_session_shaped_like_gotrues => Autoconfirm,
    signup::anonymous_signup => Autoconfirm,
    signup::signup_rejections => Autoconfirm,
    signup::signup_with_confirmations_on => Codes,
    tokens::password_grant_errors_and_new_session_per_sign_in => Autoconfirm,
    tokens::refresh_rotates_and_reuse_rules => Autoconfirm,
    tokens::refresh_after_logout_and_malformed_tokens => Autoconfirm,
    tokens::concurrent_refreshes_rotate_once_and_never_fail => Autoconfirm,
    auth_routes::authenticated_routes_check_signature_user_and_session => Autoconfirm,
    auth_routes::an_expired_access_token_is_refused => Autoconfirm,
    auth_routes::revoked_session_deleted_user_and_banned_user => Autoconfirm,
    logout::logout_scopes => Autoconfirm,
    logout::logout_is_not_idempotent_and_checks_its_input => Autoconfirm,
    errors::error_body_follows_the_api_version_header => Autoconfirm,
    errors::bad_input_gets_json_errors_never_500 => Autoconfirm,
    mail::magic_link_implicit_code_and_link => Codes,
    mail::otp_creates_users_unless_told_not_to => Autoconfirm,
    mail::otp_for_a_new_address_mails_the_signup_confirmation => Codes,
    mail::magic_link_with_pkce => Autoconfirm,
    mail::recover_and_resend => Codes,
    user::update_user_metadata_and_password => Autoconfirm,
    user::anonymous_user_becomes_permanent => Autoconfirm,
    user::reauthenticate_nonce => Autoconfirm,
    admin::admin_routes_need_a_service_role_bearer => Autoconfirm,
    admin::admin_user_crud => Autoconfirm,
    admin::admin_generate_link => Autoconfirm,
    mfa::totp_enroll_challenge_verify_unenroll => Autoconfirm,
}
