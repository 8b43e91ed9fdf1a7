//! An in-memory stand-in for Supabase Storage's object routes (test server only), enough
//! for a client to upload, download (with `Range`) and remove its own files:
//!
//! - `POST /storage/v1/object/{bucket}/{*path}` creates (`x-upsert: true` replaces),
//!   `PUT` replaces or creates; the raw body is the object, its `content-type` is kept (a
//!   `multipart/form-data` body: its first file part and that part's content type).
//! - `GET /storage/v1/object/{bucket}/{*path}` and `…/object/authenticated/{bucket}/{*path}`
//!   (what storage-js's `download()` calls) serve it, honouring one `Range: bytes=…`.
//! - `DELETE /storage/v1/object/{bucket}` with `{"prefixes": [path, …]}` removes.
//!
//! The bearer (the gateway's: a publishable key in `apikey` stands in for a missing one) is
//! checked as the other stand-ins check it (signature, expiry on the
//! emulator's clock, a `role`). The policy is "owner only": writing wants role
//! `authenticated` (anything else gets Storage's row-level security refusal), and another
//! user's object reads as not found, as RLS hides it. Errors have Storage's shape
//! `{"statusCode": "<code>", "error": …, "message": …}` and, like Storage, "not found" and
//! "duplicate" are answered with HTTP 400.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::functions::{Refusal, no_api_key, verify};
use super::multipart;
use super::{AppState, Stats};

/// The largest request body the upload routes read.
pub const MAX_UPLOAD: usize = 60 * 1024 * 1024;
/// The most bytes all stored objects may hold together.
pub const MAX_TOTAL: usize = 64 * 1024 * 1024;

/// The stored objects, by (bucket, path).
#[derive(Debug, Default)]
pub struct Storage {
    objects: HashMap<(String, String), Object>,
    total: usize,
}

#[derive(Debug)]
struct Object {
    id: String,
    owner: String,
    content_type: String,
    bytes: Bytes,
    created_at: i64,
    updated_at: i64,
}

impl Object {
    fn info(&self, bucket: &str, name: &str) -> Value {
        json!({
            "name": name,
            "bucket_id": bucket,
            "owner": self.owner,
            "id": self.id,
            "created_at": crate::clock::rfc3339(self.created_at),
            "updated_at": crate::clock::rfc3339(self.updated_at),
            "metadata": {"size": self.bytes.len(), "mimetype": self.content_type},
        })
    }
}

fn storage_error(status: StatusCode, code: &str, error: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"statusCode": code, "error": error, "message": message})),
    )
        .into_response()
}

fn not_found() -> Response {
    storage_error(
        StatusCode::BAD_REQUEST,
        "404",
        "not_found",
        "Object not found",
    )
}

fn rls_denied() -> Response {
    storage_error(
        StatusCode::FORBIDDEN,
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
    )
}

/// The caller's user id (`sub`) and role, or the answer refusing the request.
fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Option<String>, String), Box<Response>> {
    if headers.get("apikey").is_none() {
        return Err(Box::new(no_api_key()));
    }
    let message = match verify(state, super::functions::gateway_bearer(headers)) {
        Ok((claims, _)) => {
            Stats::bump(&state.stats.storage);
            let role = claims.role.unwrap_or_default();
            return Ok((claims.sub.filter(|s| !s.is_empty()), role));
        }
        Err(Refusal::Missing) => "headers must have required property 'authorization'",
        Err(Refusal::Invalid) => "invalid JWT",
        Err(Refusal::Expired) => "jwt expired",
    };
    Err(Box::new(storage_error(
        StatusCode::UNAUTHORIZED,
        "401",
        "InvalidJWT",
        message,
    )))
}

fn lock(state: &AppState) -> std::sync::MutexGuard<'_, Storage> {
    state.storage.lock().unwrap_or_else(|e| e.into_inner())
}

/// `POST` (create; `x-upsert: true` replaces) and `PUT` (replace or create).
pub async fn upload(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, role) = match caller(&state, &headers) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let (Some(user), "authenticated") = (user, role.as_str()) else {
        return rls_denied();
    };
    let upsert = method == Method::PUT
        || headers
            .get("x-upsert")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    // A `FormData` upload (storage-js with a `Blob`): its first file part is the object.
    let (body, content_type) = match multipart::boundary(&content_type) {
        None => (body, content_type),
        Some(boundary) => match multipart::first_file(&boundary, &body) {
            Some(file) => file,
            None => {
                return storage_error(
                    StatusCode::BAD_REQUEST,
                    "400",
                    "InvalidRequest",
                    "No file part in the multipart body",
                );
            }
        },
    };
    let now = state.now();
    let mut store = lock(&state);
    let key = (bucket, path);
    let (replaced, created_at, id) = match store.objects.get(&key) {
        None => (0, now, uuid::Uuid::new_v4().to_string()),
        Some(_) if !upsert => {
            return storage_error(
                StatusCode::BAD_REQUEST,
                "409",
                "Duplicate",
                "The resource already exists",
            );
        }
        Some(old) if old.owner != user => return rls_denied(),
        Some(old) => (old.bytes.len(), old.created_at, old.id.clone()),
    };
    if store.total - replaced + body.len() > MAX_TOTAL {
        return storage_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "413",
            "Payload too large",
            "The object exceeded the maximum allowed size",
        );
    }
    store.total = store.total - replaced + body.len();
    let answer = json!({"Key": format!("{}/{}", key.0, key.1), "Id": id});
    store.objects.insert(
        key,
        Object {
            id,
            owner: user,
            content_type,
            bytes: body,
            created_at,
            updated_at: now,
        },
    );
    Json(answer).into_response()
}

/// `GET`, whole or one byte range.
pub async fn download(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (user, _) = match caller(&state, &headers) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let found = {
        let store = lock(&state);
        store
            .objects
            .get(&(bucket, path))
            .filter(|o| user.as_deref() == Some(o.owner.as_str()))
            .map(|o| (o.bytes.clone(), o.content_type.clone()))
    };
    let Some((bytes, content_type)) = found else {
        return not_found();
    };
    let total = bytes.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, total));
    let mut response = match range {
        None => Response::new(Body::from(bytes)),
        Some(None) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            set(&mut r, header::CONTENT_RANGE, format!("bytes */{total}"));
            return r;
        }
        Some(Some((first, last))) => {
            let mut r = Response::new(Body::from(bytes.slice(first..=last)));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {first}-{last}/{total}");
            set(&mut r, header::CONTENT_RANGE, content_range);
            r
        }
    };
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::ACCEPT_RANGES, "bytes".to_owned());
    response
}

fn set(response: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
}

/// One `bytes=` range against `total` bytes: `None` when the header is to be ignored
/// (not a single byte range), `Some(None)` when unsatisfiable, else the inclusive bounds.
fn parse_range(value: &str, total: usize) -> Option<Option<(usize, usize)>> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let bounds = if first.is_empty() {
        let suffix: usize = last.parse().ok()?;
        (suffix > 0 && total > 0).then(|| (total.saturating_sub(suffix), total - 1))
    } else {
        let first: usize = first.parse().ok()?;
        let last = if last.is_empty() {
            usize::MAX
        } else {
            last.parse().ok()?
        };
        if last < first {
            return None;
        }
        (first < total).then(|| (first, last.min(total - 1)))
    };
    Some(bounds)
}

/// `DELETE /storage/v1/object/{bucket}` with `{"prefixes": [...]}`: removes the caller's
/// objects among them and answers their descriptions.
pub async fn remove(
    State(state): State<AppState>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, _) = match caller(&state, &headers) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let prefixes: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match serde_json::from_value(v["prefixes"].clone()) {
            Ok(p) => p,
            Err(_) => {
                return storage_error(
                    StatusCode::BAD_REQUEST,
                    "400",
                    "Error",
                    "body must have required property 'prefixes'",
                );
            }
        },
        Err(_) => {
            return storage_error(
                StatusCode::BAD_REQUEST,
                "400",
                "Error",
                "Body cannot be empty when content-type is set to 'application/json'",
            );
        }
    };
    let mut store = lock(&state);
    let mut removed = Vec::new();
    for path in prefixes {
        let key = (bucket.clone(), path);
        let owned = store
            .objects
            .get(&key)
            .is_some_and(|o| user.as_deref() == Some(o.owner.as_str()));
        if owned && let Some(object) = store.objects.remove(&key) {
            store.total -= object.bytes.len();
            removed.push(object.info(&key.0, &key.1));
        }
    }
    Json(removed).into_response()
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=90-200", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=-200", 100), Some(Some((0, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(None));
        assert_eq!(parse_range("bytes=-0", 100), Some(None));
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
