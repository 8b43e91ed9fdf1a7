//! Fault injection: make a path fail the next N times (emulator-only, for client tests).

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiVersion};

/// One injected fault, as posted to `POST /_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The route, e.g. `/token`; matches with or without the `/auth/v1` prefix.
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
    /// How many requests this applies to.
    #[serde(default = "one")]
    pub times: u32,
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
}

/// The active faults, first match wins.
#[derive(Debug, Default)]
pub struct Faults {
    list: Mutex<Vec<Fault>>,
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
        let index = list.iter().position(|f| {
            route_path(&f.path) == path
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
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
        if !self.path.starts_with('/') {
            return Err("path must start with '/'".into());
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
            times,
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
    fn never_applies_to_emulator_routes() {
        let faults = Faults::default();
        faults.add(fault("/_emulator/mail", 1));
        assert!(faults.take("GET", "/_emulator/mail").is_none());
    }
}
