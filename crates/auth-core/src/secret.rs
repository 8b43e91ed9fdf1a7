//! Secrets as types.
//!
//! Tokens, passwords and PKCE verifiers are wrapped so that `Debug` and `Display` print a
//! redaction, and none of them implements `Serialize`: a secret cannot reach a UI payload,
//! a log line or a panic message by accident. Reading the value is an explicit
//! `expose_secret()` call, easy to find in review.

use std::fmt;

use serde::{Deserialize, Deserializer};

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Default, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Call only where it must leave the process (an HTTP
            /// request, the secret store).
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self)
            }
        }

        impl Exposed for $name {
            fn exposed(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

/// Writes a secret as its plain string. For the stored forms only (what goes to the
/// secret store): name it field by field with `#[serde(serialize_with = "...")]`, so that
/// no secret type can be serialized anywhere else by accident.
pub(crate) fn serialize_for_store<S: serde::Serializer, T: Exposed>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.exposed())
}

/// What [`serialize_for_store`] reads (the secret types).
pub(crate) trait Exposed {
    fn exposed(&self) -> &str;
}

secret_type!(
    /// A JWT access token.
    AccessToken
);
secret_type!(
    /// An opaque refresh token.
    RefreshToken
);
secret_type!(
    /// A user's password.
    Password
);
secret_type!(
    /// A PKCE code verifier.
    CodeVerifier
);
secret_type!(
    /// A one-time code or token hash from an email.
    OneTimeCode
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let token = RefreshToken::new("abcdefghijkl");
        assert_eq!(format!("{token:?}"), "RefreshToken(<redacted>)");
        assert_eq!(format!("{token}"), "<redacted>");
        assert_eq!(
            format!("{:?}", Some(Password::new("hunter2"))),
            "Some(Password(<redacted>))"
        );
        assert_eq!(token.expose_secret(), "abcdefghijkl");
    }
}
