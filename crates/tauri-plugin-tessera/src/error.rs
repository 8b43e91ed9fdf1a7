//! The error every command returns: a stable `code` and a human `message`.

use auth_core::AuthError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<AuthError> for CommandError {
    fn from(e: AuthError) -> Self {
        let message = match &e {
            AuthError::Network(_) | AuthError::Timeout(_) => {
                "The auth server cannot be reached. Check your connection and try again.".to_owned()
            }
            AuthError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Self {
            code: e.code().to_owned(),
            message,
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}
