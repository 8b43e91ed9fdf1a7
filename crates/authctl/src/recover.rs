//! `authctl recover`: a forgotten password. The server mails a link (GoTrue's stock
//! template) and, if the project's template shows it, a code; either, given here, signs
//! this device in (`PASSWORD_RECOVERY`) and the new password is set. GoTrue ends the
//! user's other sessions when the password changes.

use auth_core::{AuthClient, AuthError, UserUpdate};
use clap::Args;

use crate::input;

#[derive(Debug, Args)]
pub struct Recover {
    /// The account's address.
    #[arg(long)]
    email: String,
    /// Read the code (first line) and the new password (second line) from stdin, even on
    /// a terminal.
    #[arg(long, conflicts_with = "send_only")]
    code_stdin: bool,
    /// Only send the mail (then `recover --have-code` takes the code).
    #[arg(long)]
    send_only: bool,
    /// The mail was already sent (`--send-only`): only take the code and the new password.
    #[arg(long, conflicts_with = "send_only")]
    have_code: bool,
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub async fn run(client: &AuthClient, args: Recover) -> Result<(), AuthError> {
    let email = args.email.trim();
    if !args.have_code {
        client.reset_password_for_email(email).await?;
        println!(
            "sent a password-recovery mail to {email} (if it has an account): give its link (or \
             its code, if it shows one)"
        );
        if args.send_only {
            println!(
                "then: authctl recover --email {email} --have-code (the code and the new \
                 password are read from stdin or prompted)"
            );
            return Ok(());
        }
    }
    // Read both before using the code: a code is good once.
    let proof = input::read_code_or_link(args.code_stdin)?;
    let password = input::read_new_password(args.code_stdin)?;
    let view = match proof {
        input::CodeOrLink::Code(code) => {
            client
                .verify_otp(email, &code, auth_core::OtpType::Recovery)
                .await?
        }
        input::CodeOrLink::Link(link) => match client.follow_email_link(&link).await? {
            auth_core::LinkOutcome::SignedIn { session } => session,
            _ => {
                return Err(AuthError::InvalidInput(
                    "that link is not this account's password reset".into(),
                ));
            }
        },
    };
    let update = UserUpdate {
        password: Some(password),
        ..UserUpdate::default()
    };
    if let Err(e) = client.update_user(update).await {
        eprintln!(
            "authctl: the code was right and this device is signed in as {}, but the new \
             password was not set; `authctl recover` again chooses another",
            view.user.email
        );
        return Err(e);
    }
    println!("password changed for {}", view.user.email);
    println!(
        "signed in on this device (session {}); the server signed out every other session of \
         this account",
        view.session_id
    );
    Ok(())
}
