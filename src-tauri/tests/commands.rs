//! The commands through real IPC on Tauri's mock runtime (no display, no keyring), with the
//! app's own context (its capability and the plugin's permissions, so the ACL is real): the
//! exact success and error JSON of each command, the events the UI receives, in order, and
//! that every command in the plugin's one list is handled and granted.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use auth_core::{AuthClient, AuthConfig, MemoryStore};
use gotrue_emulator::{Config, Emulator, EmulatorHandle};
use serde_json::{Value, json};
use tauri::Listener;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri_plugin_tessera::{BackendInfo, COMMANDS, SERVER_EVENT, STATE_EVENT};

struct App {
    _app: tauri::App<MockRuntime>,
    window: tauri::WebviewWindow<MockRuntime>,
    events: Arc<Mutex<Vec<Value>>>,
    emu: EmulatorHandle,
}

async fn app() -> App {
    let emu = Emulator::start(Config::for_tests()).await.unwrap();
    let client = AuthClient::new(
        AuthConfig::new(emu.url(), emu.anon_key()),
        Arc::new(MemoryStore::new()),
    )
    .unwrap();
    let backend = BackendInfo {
        url: emu.url().to_owned(),
        embedded: false,
        ..BackendInfo::default()
    };
    // The listener is added by a plugin registered before Tessera's, so it is in place
    // before the engine starts. (Added after the build, it raced the engine's first event:
    // Tauri queues an emit that meets a listener being added and delivers it after the next
    // one, so `INITIAL_SESSION` could arrive after `SIGNED_IN` in this test only.)
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let probe = tauri::plugin::Builder::<MockRuntime>::new("events-probe")
        .setup(move |app, _| {
            app.listen_any(STATE_EVENT, move |event| {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str::<Value>(event.payload()).unwrap());
            });
            // The plugin's other event, sent from another task, gets a listener too: an
            // emit with a listener delivers what Tauri queued meanwhile, so a state event
            // that met this one is not held back until the next.
            app.listen_any(SERVER_EVENT, |_| {});
            Ok(())
        })
        .build();
    let app = mock_builder()
        .plugin(probe)
        .plugin(
            tauri_plugin_tessera::Builder::new()
                .engine(client, backend)
                .build(),
        )
        .build(tauri::generate_context!("tauri.conf.json", test = true))
        .unwrap();
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    App {
        _app: app,
        window,
        events,
        emu,
    }
}

/// A command of the plugin, as the UI sends it (`plugin:tessera|<name>`).
fn request(cmd: &str, args: Value) -> InvokeRequest {
    InvokeRequest {
        cmd: format!("plugin:tessera|{cmd}"),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    }
}

impl App {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(&self.window, request(cmd, args))
            .map(|r| r.deserialize::<Value>().unwrap())
    }

    /// Invokes off the async workers (the command itself runs on Tauri's runtime).
    async fn call(&self, cmd: &'static str, args: Value) -> Result<Value, Value> {
        let window = self.window.clone();
        tokio::task::spawn_blocking(move || {
            get_ipc_response(&window, request(cmd, args)).map(|r| r.deserialize::<Value>().unwrap())
        })
        .await
        .unwrap()
    }

    /// The event names, once `done` holds for them (5 s at most): events arrive through the
    /// event loop, after the command that caused them has answered.
    async fn events_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let names = self.event_names();
            if done(&names) {
                return names;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "events so far: {names:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The names of the events after the engine's `INITIAL_SESSION`, which must be the
    /// first event and come once (it is sent while the app starts, before any command is
    /// answered; until then the list is empty).
    fn event_names(&self) -> Vec<String> {
        let names: Vec<String> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect();
        match names.split_first() {
            None => Vec::new(),
            Some((first, rest)) => {
                assert_eq!(first, "INITIAL_SESSION", "the first event: {names:?}");
                assert!(
                    rest.iter().all(|n| n != "INITIAL_SESSION"),
                    "INITIAL_SESSION only once: {names:?}"
                );
                rest.to_vec()
            }
        }
    }

    async fn create_user(&self, email: &str) {
        self.emu
            .create_user(gotrue_emulator::NewUser::confirmed(
                email,
                "correct-horse-9",
            ))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_state_and_sign_out_through_ipc() {
    let app = app().await;
    app.create_user("ipc@example.com").await;
    assert_eq!(app.call("auth_state", json!({})).await, Ok(Value::Null));

    let view = app
        .call(
            "auth_sign_in_with_password",
            json!({"email": "ipc@example.com", "password": "correct-horse-9"}),
        )
        .await
        .unwrap();
    assert_eq!(view["user"]["email"], "ipc@example.com");
    assert_eq!(view["user"]["isAnonymous"], false);
    assert_eq!(view["aal"], "aal1");
    for key in ["sessionId", "expiresAt", "clockSkewSecs"] {
        assert!(view.get(key).is_some(), "{key} in {view}");
    }
    assert!(view.get("accessToken").is_none() && view.get("refreshToken").is_none());
    assert!(
        !view.to_string().contains("eyJ"),
        "no JWT in the view: {view}"
    );
    assert_eq!(app.call("auth_state", json!({})).await.unwrap(), view);

    let outcome = app
        .call("auth_sign_out", json!({"scope": "local"}))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        json!({"scope": "local", "localDone": true, "serverConfirmed": true, "queued": false})
    );
    assert_eq!(
        app.events_until(|e| e.len() >= 2).await,
        ["SIGNED_IN", "SIGNED_OUT"]
    );
    let last = app.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["reason"], "user");
    assert_eq!(last["session"], Value::Null);
    assert!(last["at"].as_i64().unwrap() > 1_700_000_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_have_a_stable_code_and_a_message() {
    let app = app().await;
    let err = app
        .call(
            "auth_sign_in_with_password",
            json!({"email": "nobody@example.com", "password": "whatever-1"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
    );
    let err = app
        .call("auth_sign_out", json!({"scope": "everywhere"}))
        .await
        .unwrap_err();
    assert_eq!(err["code"], "invalid_input");
    let err = app.call("auth_refresh", json!({})).await.unwrap_err();
    assert_eq!(
        err,
        json!({"code": "not_signed_in", "message": "not signed in"})
    );
    let err = app.call("auth_update_user", json!({})).await.unwrap_err();
    assert_eq!(err["code"], "invalid_input");
    // Missing arguments are refused by the IPC layer before any engine call.
    assert!(
        app.invoke(
            "auth_sign_in_with_password",
            json!({"email": "x@example.com"})
        )
        .is_err()
    );
    app.events_until(|e| e.iter().any(|n| n == "AUTH_ERROR"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_anonymous_user_and_backend() {
    let app = app().await;
    let out = app
        .call(
            "auth_sign_up",
            json!({"email": "new-ipc@example.com", "password": "correct-horse-9"}),
        )
        .await
        .unwrap();
    assert_eq!(out["status"], "signedIn");
    assert_eq!(out["session"]["user"]["email"], "new-ipc@example.com");
    let user = app.call("auth_user", json!({})).await.unwrap();
    assert_eq!(user["email"], "new-ipc@example.com");
    let updated = app
        .call("auth_update_user", json!({"data": {"theme": "dark"}}))
        .await
        .unwrap();
    assert_eq!(updated["userMetadata"]["theme"], "dark");
    let backend = app.call("auth_backend", json!({})).await.unwrap();
    assert_eq!(backend["embedded"], false);
    let anon = app
        .call("auth_sign_in_anonymously", json!({}))
        .await
        .unwrap();
    assert_eq!(anon["user"]["isAnonymous"], true);
    assert_eq!(
        app.events_until(|e| e.len() >= 3).await,
        ["SIGNED_IN", "USER_UPDATED", "SIGNED_IN"]
    );
}

/// The plugin's one command list, its handler and the app's capability agree: every
/// listed command reaches its handler (an answer that is not "not allowed" or "not
/// found"), through the ACL the app really ships.
#[tokio::test(flavor = "multi_thread")]
async fn every_listed_command_is_handled_and_granted() {
    let app = app().await;
    for &command in COMMANDS {
        let answer = app.call(command, json!({})).await;
        if let Err(e) = &answer {
            let text = e.to_string();
            assert!(
                !text.contains("not allowed") && !text.contains("not found"),
                "{command}: {text}"
            );
        }
    }
    let unlisted = app.call("auth_no_such_command", json!({})).await;
    assert!(
        unlisted.unwrap_err().to_string().contains("not allowed"),
        "a command outside the list is refused"
    );
}
