//! Reading the server's JSON into our types. A response that does not fit is an
//! `InvalidResponse` naming the field and what is wrong with it, never the value: the
//! message reaches the UI and the logs, and a value in a token response may be a token.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AuthError;

fn describe(what: &str, path: &serde_path_to_error::Path, e: &serde_json::Error) -> AuthError {
    let problem = match e.classify() {
        serde_json::error::Category::Data => "is missing or has the wrong type",
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            return AuthError::InvalidResponse(format!("{what}: the answer is not JSON"));
        }
        serde_json::error::Category::Io => "could not be read",
    };
    let field = path.to_string();
    if field == "." {
        AuthError::InvalidResponse(format!("{what}: the answer {problem}"))
    } else {
        AuthError::InvalidResponse(format!("{what}: the field `{field}` {problem}"))
    }
}

/// Decodes a response body (`what` names the request, e.g. `/token`).
pub(crate) fn from_slice<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, AuthError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| describe(what, e.path(), e.inner()))
}

/// Decodes a JSON value (`what` names where it came from, e.g. `user`).
pub(crate) fn from_value<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, AuthError> {
    serde_path_to_error::deserialize(value).map_err(|e| describe(what, e.path(), e.inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{TokenResponse, User};

    const SECRET: &str = "eyJsecret-value-that-must-not-show";

    #[test]
    fn a_bad_field_is_named_and_its_value_is_not_shown() {
        // serde_json's own message would quote the value ("invalid type: string \"eyJ…\"").
        let body = format!(
            r#"{{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_in":"{SECRET}","user":{{"id":"u"}}}}"#
        );
        let plain = serde_json::from_str::<TokenResponse>(&body).unwrap_err();
        assert!(plain.to_string().contains(SECRET), "the hazard is real");
        let e = from_slice::<TokenResponse>("/token", body.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("expires_in"), "{text}");

        let user = serde_json::json!({"id": SECRET.len(), "email": SECRET});
        let e = from_value::<User>("user", user).unwrap_err().to_string();
        assert!(!e.contains(SECRET) && e.contains("`id`"), "{e}");
        let e = from_slice::<User>("/user", SECRET.as_bytes()).unwrap_err();
        assert!(!e.to_string().contains(SECRET));
    }
}
