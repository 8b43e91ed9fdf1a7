//! JSON views of stored rows, shaped exactly as GoTrue renders them.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::rfc3339;
use crate::db::{FactorRow, IdentityRow, UserRow};

fn put_time(map: &mut Map<String, Value>, key: &str, value: Option<i64>) {
    if let Some(micros) = value {
        map.insert(key.into(), json!(rfc3339(micros)));
    }
}

/// The full User JSON: identities always present, factors only when there are any,
/// optional timestamps omitted when unset.
pub fn user_json(conn: &Connection, user: &UserRow) -> rusqlite::Result<Value> {
    let identities: Vec<Value> = IdentityRow::for_user(conn, &user.id)?
        .iter()
        .map(identity_json)
        .collect();
    let factors: Vec<Value> = FactorRow::for_user(conn, &user.id)?
        .iter()
        .map(factor_json)
        .collect();
    Ok(user_json_with(user, identities, factors))
}

/// User JSON from parts (used for the obfuscated duplicate-sign-up answer too).
pub fn user_json_with(user: &UserRow, identities: Vec<Value>, factors: Vec<Value>) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(user.id));
    map.insert("aud".into(), json!(user.aud));
    map.insert("role".into(), json!(user.role));
    map.insert(
        "email".into(),
        json!(user.email.clone().unwrap_or_default()),
    );
    put_time(&mut map, "email_confirmed_at", user.email_confirmed_at);
    put_time(&mut map, "invited_at", user.invited_at);
    map.insert(
        "phone".into(),
        json!(user.phone.clone().unwrap_or_default()),
    );
    put_time(&mut map, "phone_confirmed_at", user.phone_confirmed_at);
    put_time(&mut map, "confirmation_sent_at", user.confirmation_sent_at);
    let confirmed_at = match (user.email_confirmed_at, user.phone_confirmed_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    put_time(&mut map, "confirmed_at", confirmed_at);
    put_time(&mut map, "recovery_sent_at", user.recovery_sent_at);
    if let Some(new_email) = &user.email_change {
        map.insert("new_email".into(), json!(new_email));
    }
    put_time(&mut map, "email_change_sent_at", user.email_change_sent_at);
    put_time(
        &mut map,
        "reauthentication_sent_at",
        user.reauthentication_sent_at,
    );
    put_time(&mut map, "last_sign_in_at", user.last_sign_in_at);
    map.insert("app_metadata".into(), user.app_metadata.clone());
    map.insert("user_metadata".into(), user.user_metadata.clone());
    if !factors.is_empty() {
        map.insert("factors".into(), Value::Array(factors));
    }
    map.insert("identities".into(), Value::Array(identities));
    map.insert("created_at".into(), json!(rfc3339(user.created_at)));
    map.insert("updated_at".into(), json!(rfc3339(user.updated_at)));
    put_time(&mut map, "banned_until", user.banned_until);
    put_time(&mut map, "deleted_at", user.deleted_at);
    map.insert("is_anonymous".into(), json!(user.is_anonymous));
    Value::Object(map)
}

pub fn identity_json(identity: &IdentityRow) -> Value {
    let mut map = Map::new();
    map.insert("identity_id".into(), json!(identity.id));
    map.insert("id".into(), json!(identity.provider_id));
    map.insert("user_id".into(), json!(identity.user_id));
    map.insert("identity_data".into(), identity.identity_data.clone());
    map.insert("provider".into(), json!(identity.provider));
    put_time(&mut map, "last_sign_in_at", identity.last_sign_in_at);
    map.insert("created_at".into(), json!(rfc3339(identity.created_at)));
    map.insert("updated_at".into(), json!(rfc3339(identity.updated_at)));
    if let Some(email) = &identity.email {
        map.insert("email".into(), json!(email));
    }
    Value::Object(map)
}

pub fn factor_json(factor: &FactorRow) -> Value {
    json!({
        "id": factor.id,
        "friendly_name": factor.friendly_name.clone().unwrap_or_default(),
        "factor_type": factor.factor_type,
        "status": factor.status,
        "created_at": rfc3339(factor.created_at),
        "updated_at": rfc3339(factor.updated_at),
    })
}

/// Merges `patch` into `target` the way GoTrue updates metadata: keys with `null` are
/// removed, other keys replaced.
pub fn merge_metadata(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(map) = target.as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_removes_nulls() {
        let mut target = json!({"a": 1, "b": 2});
        merge_metadata(&mut target, &json!({"a": null, "c": 3}));
        assert_eq!(target, json!({"b": 2, "c": 3}));
    }

    #[test]
    fn user_json_always_has_email_phone_identities() {
        let user = UserRow::new("authenticated", "authenticated", 0);
        let v = user_json_with(&user, vec![], vec![]);
        assert_eq!(v["email"], "");
        assert_eq!(v["phone"], "");
        assert_eq!(v["identities"], json!([]));
        assert_eq!(v["is_anonymous"], false);
        assert!(v.get("factors").is_none());
        assert!(v.get("email_confirmed_at").is_none());
    }
}

/// One authentication method reference (`amr` claim entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Amr {
    pub method: String,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
}
