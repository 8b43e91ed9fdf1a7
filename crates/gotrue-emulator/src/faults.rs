//! Fault injection: make a path fail the next N times, or a share of its requests at
//! random (emulator-only, for client tests).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiVersion};

/// One injected fault, as posted to `POST /_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The route, e.g. `/token`; matches with or without the `/auth/v1` prefix. `*`
    /// matches every route but the emulator's own.
    pub path: String,
    /// Only requests with this method (any method when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Answer with this status instead of running the handler.
    #[serde(default)]
    pub status: Option<u16>,
    /// The `error_code` of that answer (default: by status).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Wait this long first (then answer the fault, or run the handler if nothing else is set).
    #[serde(default)]
    pub delay_ms: u64,
    /// Close the connection without answering.
    #[serde(default)]
    pub drop: bool,
    /// Answer a body that is not valid JSON.
    #[serde(default)]
    pub malformed: bool,
    /// Answer exactly this JSON body (with `status`, default 200): shapes of other
    /// GoTrue versions, such as the OAuth-style `{"error":"invalid_grant",
    /// "error_description":"Invalid Refresh Token: Refresh Token Not Found"}` of GoTrue
    /// before v2.164, or token responses with out-of-range values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Run the real handler, then take these top-level fields out of its JSON answer: the
    /// server has acted (a refresh token rotated) but the client gets an answer it can
    /// only partly read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strip: Vec<String>,
    /// How many requests this applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Apply to each matching request with this probability (0 < rate <= 1) instead of to
    /// every one; a request the roll spares is offered to the next matching fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

fn one() -> u32 {
    1
}

/// What the server does with a request that hit a fault.
#[derive(Debug)]
pub enum Action {
    Drop,
    Respond(Response),
    /// Run the real handler (a delay-only fault).
    Continue,
    /// Run the real handler, then take these fields out of its JSON answer.
    Strip(Vec<String>),
}

/// The active faults, first match wins.
#[derive(Debug, Default)]
pub struct Faults {
    list: Mutex<Vec<Fault>>,
    injected: AtomicU64,
}

/// Strips the Supabase gateway prefix.
pub fn route_path(path: &str) -> &str {
    match path.strip_prefix("/auth/v1") {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

impl Faults {
    pub fn add(&self, fault: Fault) {
        self.lock().push(fault);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// Requests that hit a fault since start (or the last reset of the stats).
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    pub fn reset_injected(&self) {
        self.injected.store(0, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Consumes one use of the first fault that matches the request.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let path = route_path(path);
        if path.starts_with("/_emulator") {
            return None;
        }
        let mut list = self.lock();
        let mut rng = rand::rng();
        let index = list.iter().position(|f| {
            (f.path == "*" || route_path(&f.path) == path)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.rate.is_none_or(|rate| rng.random_bool(rate))
        })?;
        self.injected.fetch_add(1, Ordering::SeqCst);
        let fault = list[index].clone();
        list[index].times = list[index].times.saturating_sub(1);
        if list[index].times == 0 {
            list.remove(index);
        }
        Some(fault)
    }
}

impl Fault {
    pub fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') && self.path != "*" {
            return Err("path must start with '/' (or be '*')".into());
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate <= 1.0)
        {
            return Err(format!("rate must be in (0, 1], not {rate}"));
        }
        if let Some(status) = self.status
            && (StatusCode::from_u16(status).is_err() || status < 100)
        {
            return Err(format!("invalid status {status}"));
        }
        if self.times == 0 {
            return Err("times must be at least 1".into());
        }
        Ok(())
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms)
    }

    /// What to do after the delay.
    pub fn action(&self, version: ApiVersion) -> Action {
        if self.drop {
            return Action::Drop;
        }
        if self.malformed {
            let status = self
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let mut response =
                Response::new(axum::body::Body::from("{\"access_token\": \"eyJhbGci"));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Action::Respond(response);
        }
        if !self.strip.is_empty() {
            return Action::Strip(self.strip.clone());
        }
        if let Some(body) = &self.body {
            let status = self
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            return Action::Respond((status, axum::Json(body.clone())).into_response());
        }
        match self.status.and_then(|s| StatusCode::from_u16(s).ok()) {
            Some(status) => {
                let code = match &self.error_code {
                    Some(code) => code.clone().into(),
                    None => std::borrow::Cow::Borrowed(ApiError::code_for_status(status)),
                };
                Action::Respond(
                    ApiError::new(status, code, "Injected fault (gotrue-emulator)").render(version),
                )
            }
            None => Action::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(path: &str, times: u32) -> Fault {
        Fault {
            path: path.into(),
            method: None,
            status: Some(503),
            error_code: None,
            delay_ms: 0,
            drop: false,
            malformed: false,
            strip: Vec::new(),
            body: None,
            times,
            rate: None,
        }
    }

    #[test]
    fn applies_n_times_with_or_without_prefix() {
        let faults = Faults::default();
        faults.add(fault("/token", 2));
        assert!(faults.take("POST", "/auth/v1/token").is_some());
        assert!(faults.take("POST", "/user").is_none());
        assert!(faults.take("POST", "/token").is_some());
        assert!(faults.take("POST", "/token").is_none());
    }

    #[test]
    fn a_rate_applies_to_about_that_share_and_spares_go_to_the_next_fault() {
        let faults = Faults::default();
        let mut half = fault("*", u32::MAX);
        half.rate = Some(0.5);
        faults.add(half);
        faults.add(Fault {
            status: Some(500),
            ..fault("/token", u32::MAX)
        });
        let mut by_status = [0u32; 2];
        for _ in 0..2000 {
            let hit = faults
                .take("POST", "/token")
                .expect("one of the two applies");
            by_status[usize::from(hit.status == Some(500))] += 1;
        }
        assert!((800..1200).contains(&by_status[0]), "{by_status:?}");
        assert_eq!(faults.injected(), 2000);
        assert!(fault("*", 1).validate().is_ok());
        let mut bad = fault("/token", 1);
        bad.rate = Some(1.5);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn never_applies_to_emulator_routes() {
        let faults = Faults::default();
        faults.add(fault("/_emulator/mail", 1));
        assert!(faults.take("GET", "/_emulator/mail").is_none());
    }
}
