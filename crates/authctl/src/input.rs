//! What a person types: secrets from standard input (one per line) or, on a terminal, a
//! prompt that does not echo them. Never from arguments, never printed.

use std::io::{BufRead, IsTerminal, Write};

use auth_core::{AuthError, OneTimeCode, Password};

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

/// A new password: on a terminal typed twice, the two must match.
pub fn read_new_password(plain: bool) -> Result<Password, AuthError> {
    let password = read_password_as("New password: ", plain)?;
    if interactive(plain) {
        let again = read_password_as("New password again: ", plain)?;
        if again.expose_secret() != password.expose_secret() {
            return Err(AuthError::InvalidInput(
                "the two passwords differ; nothing was changed".into(),
            ));
        }
    }
    Ok(password)
}

/// The code from an email: prompted on a terminal (it is shown as typed: it is good for
/// one use and a few minutes), else the next line of stdin.
pub fn read_code(plain: bool) -> Result<OneTimeCode, AuthError> {
    if interactive(plain) {
        let mut err = std::io::stderr();
        let _ = write!(err, "Code (or link) from the email: ").and_then(|()| err.flush());
    }
    let code: String = read_line("code")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if code.is_empty() {
        return Err(AuthError::InvalidInput(
            "no code on stdin: give the code from the email on the first line".into(),
        ));
    }
    Ok(OneTimeCode::new(code))
}

/// A link from a mail: prompted on a terminal, else the first line of stdin.
pub fn read_link() -> Result<String, AuthError> {
    if interactive(false) {
        let mut err = std::io::stderr();
        let _ = write!(err, "Link from the email: ").and_then(|()| err.flush());
    }
    let link = read_line("link")?.trim().to_owned();
    if link.is_empty() {
        return Err(AuthError::InvalidInput(
            "no link on stdin: paste the link from the email".into(),
        ));
    }
    Ok(link)
}

/// The code from a mail, or the link in it (GoTrue's stock templates mail only the link):
/// what `recover` takes.
pub enum CodeOrLink {
    Code(OneTimeCode),
    Link(String),
}

/// [`read_code`] that also takes the mail's link.
pub fn read_code_or_link(plain: bool) -> Result<CodeOrLink, AuthError> {
    let code = read_code(plain)?;
    let text = code.expose_secret();
    Ok(if text.starts_with("http") || text.contains("://") {
        CodeOrLink::Link(text.to_owned())
    } else {
        CodeOrLink::Code(code)
    })
}
