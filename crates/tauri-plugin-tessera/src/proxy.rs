//! The `supabase` URI scheme: the page's data calls (supabase-js pointed at
//! `supabase://localhost`, or `http://supabase.localhost` where Tauri maps custom schemes
//! to http: Windows, Android) answered by `auth_core::proxy::DataProxy`, which adds the
//! user's token on the Rust side. This module only converts requests and answers and adds
//! CORS for the app's own pages (the page and the scheme are different origins).

use auth_core::proxy::{ProxyRequest, ProxyResponse};
use tauri::http::{self, HeaderValue, Method, header};
use tauri::{AppHandle, Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::AuthState;

/// The scheme's name.
pub const SCHEME: &str = "supabase";

/// The origins of the app's own pages (custom protocol on Linux and macOS, the http form on
/// Windows and Android, and the dev server's).
fn allowed_origin(origin: &str) -> bool {
    matches!(
        origin,
        "tauri://localhost" | "http://tauri.localhost" | "https://tauri.localhost"
    )
}

pub(crate) fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: http::Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = ctx.app_handle().clone();
    tauri::async_runtime::spawn(async move {
        responder.respond(answer(&app, request).await);
    });
}

async fn answer<R: Runtime>(
    app: &AppHandle<R>,
    request: http::Request<Vec<u8>>,
) -> http::Response<Vec<u8>> {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    if let Some(origin) = origin.as_deref()
        && !allowed_origin(origin)
    {
        return response(
            ProxyResponse::error(
                403,
                "origin_not_allowed",
                "Only the app's own pages may call.",
            ),
            None,
        );
    }
    if request.method() == Method::OPTIONS {
        return preflight(&request, origin.as_deref());
    }
    let Some(state) = app.try_state::<AuthState>() else {
        return response(
            ProxyResponse::error(503, "not_ready", "The app is starting."),
            origin.as_deref(),
        );
    };
    state.ready().await;
    let Some(proxy) = state.proxy() else {
        return response(
            ProxyResponse::error(
                503,
                "no_server",
                "No Supabase project is connected: open Settings and connect one.",
            ),
            origin.as_deref(),
        );
    };
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let answer = proxy
        .handle(ProxyRequest {
            method: parts.method.as_str().to_owned(),
            path_and_query,
            headers,
            body,
        })
        .await;
    response(answer, origin.as_deref())
}

/// A preflight from one of the app's pages: every method and the headers it asks for.
fn preflight(request: &http::Request<Vec<u8>>, origin: Option<&str>) -> http::Response<Vec<u8>> {
    let mut answer = http::Response::builder().status(204);
    if let Some(origin) = origin {
        answer = answer
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
            .header(header::VARY, "Origin")
            .header(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "GET, POST, PUT, PATCH, DELETE, HEAD",
            )
            .header(header::ACCESS_CONTROL_MAX_AGE, "600");
        if let Some(asked) = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        {
            answer = answer.header(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
    }
    answer.body(Vec::new()).unwrap_or_default()
}

fn response(answer: ProxyResponse, origin: Option<&str>) -> http::Response<Vec<u8>> {
    let mut builder = http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            builder = builder.header(name.as_str(), value);
        }
    }
    if let Some(origin) = origin {
        builder = builder
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
            .header(header::ACCESS_CONTROL_EXPOSE_HEADERS, "*")
            .header(header::VARY, "Origin");
    }
    builder.body(answer.body).unwrap_or_else(|_| {
        http::Response::builder()
            .status(502)
            .body(
                b"{\"code\":\"bad_answer\",\"message\":\"The answer could not be passed on.\"}"
                    .to_vec(),
            )
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, origin: Option<&str>) -> http::Request<Vec<u8>> {
        let mut r = http::Request::builder()
            .method(method)
            .uri("supabase://localhost/rest/v1/notes");
        if let Some(origin) = origin {
            r = r.header(header::ORIGIN, origin);
        }
        r.header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "apikey, authorization, content-type",
        )
        .body(Vec::new())
        .unwrap()
    }

    #[test]
    fn only_the_apps_own_pages_are_answered() {
        assert!(allowed_origin("tauri://localhost"));
        assert!(allowed_origin("http://tauri.localhost"));
        assert!(!allowed_origin("https://attacker.example"));
        assert!(!allowed_origin("null"));
        assert!(!allowed_origin("tauri://localhost.attacker.example"));
    }

    #[test]
    fn a_preflight_grants_the_asked_headers_to_the_app_only() {
        let answer = preflight(
            &request("OPTIONS", Some("tauri://localhost")),
            Some("tauri://localhost"),
        );
        assert_eq!(answer.status(), 204);
        let h = answer.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "tauri://localhost");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "apikey, authorization, content-type"
        );
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        // No origin, no grant.
        let answer = preflight(&request("OPTIONS", None), None);
        assert!(
            answer
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[test]
    fn answers_keep_the_projects_headers_and_name_the_page_origin() {
        let answer = response(
            ProxyResponse {
                status: 206,
                headers: vec![
                    ("content-range".into(), b"bytes 0-1/2".to_vec()),
                    ("content-type".into(), b"application/octet-stream".to_vec()),
                ],
                body: vec![1, 2],
            },
            Some("tauri://localhost"),
        );
        assert_eq!(answer.status(), 206);
        assert_eq!(answer.headers()["content-range"], "bytes 0-1/2");
        assert_eq!(
            answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "tauri://localhost"
        );
        assert_eq!(answer.body(), &vec![1, 2]);
    }
}
