//! What a person types: secrets from standard input (one per line) or, on a terminal, a
//! prompt that does not echo them. Never from arguments, never printed.

use std::io::{BufRead, IsTerminal};

use auth_core::{AuthError, Password};

/// One line of standard input without its line ending; `what` names it in errors.
fn read_line(what: &str) -> Result<String, AuthError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| AuthError::InvalidInput(format!("cannot read the {what} from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Whether to ask on the terminal (`plain`: read lines even from a terminal).
fn interactive(plain: bool) -> bool {
    !plain && std::io::stdin().is_terminal()
}

/// A password: prompted without echo on a terminal, else the next line of stdin.
pub fn read_password_as(prompt: &str, plain: bool) -> Result<Password, AuthError> {
    let line = if interactive(plain) {
        rpassword::prompt_password(prompt)
            .map_err(|e| AuthError::InvalidInput(format!("cannot read the password: {e}")))?
    } else {
        read_line("password")?
    };
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(AuthError::InvalidInput("no password on stdin".into()));
    }
    Ok(Password::new(password))
}

/// The password of `sign-in` and `sign-up`.
pub fn read_password() -> Result<Password, AuthError> {
    read_password_as("Password: ", false)
}
