//! Where a token must never be, looked into: the keyring (what the app stored), the
//! webview's own files, the log folder, any folder on disk.

use std::path::Path;
use std::process::Command;

use fantoccini::Client;
use serde_json::Value;

/// Everything the app wrote to its log folder (`<data_home>/<identifier>/logs`, a file a
/// day), as one text.
pub fn log_folder_text(data_home: &Path) -> String {
    let folder = data_home.join("dev.tessera.desktop/logs");
    std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("no log folder {}: {e}", folder.display()))
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect()
}

/// Every secret the keyring holds for Tessera, from the Secret Service itself.
pub fn tokens_in_keyring() -> Vec<String> {
    secret_tool_tokens(&["search", "--all", "--unlock", "service", "tessera"])
}

/// The secrets the keyring holds for one profile: its session, revocation outbox and
/// pending sign-in flows (the engine's entries `<profile>@<server>.session|outbox|flows`).
pub fn tokens_in_keyring_for(profile: &str) -> Vec<String> {
    // `secret-tool search` prints the items' attributes on stderr (their secrets on
    // stdout): find the profile's entries there, then look each up.
    let out = Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", "tessera"])
        .output()
        .unwrap();
    let prefix = format!("{profile}@");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .filter(|user| user.starts_with(&prefix))
        .flat_map(|user| secret_tool_tokens(&["lookup", "service", "tessera", "username", user]))
        .collect()
}

fn secret_tool_tokens(args: &[&str]) -> Vec<String> {
    let out = Command::new("secret-tool").args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut tokens = Vec::new();
    for line in text.lines() {
        // `search` prints `secret = …` lines, `lookup` the bare secret.
        let secret = line.strip_prefix("secret = ").unwrap_or(line);
        let json = secret.trim_start_matches('V');
        if let Ok(v) = serde_json::from_str::<Value>(json) {
            collect_tokens(&v, &mut tokens);
        }
    }
    tokens
}

fn collect_tokens(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if matches!(k.as_str(), "access_token" | "refresh_token" | "verifier")
                    && let Some(s) = v.as_str().filter(|s| s.len() >= 12)
                {
                    out.push(s.to_owned());
                }
                collect_tokens(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_tokens(i, out)),
        _ => {}
    }
}

/// The webview's DOM and web storage, as text (for the secrets scan).
pub async fn webview_contents(client: &Client) -> String {
    client
        .execute(
            "return document.documentElement.outerHTML + JSON.stringify(localStorage) \
             + JSON.stringify(sessionStorage) + document.cookie",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// How many files are under `root` (what a scan covered).
pub fn count_files(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

/// Files under `root` (skipping the keyring's own encrypted store) that contain any of
/// `secrets`.
pub fn files_containing(root: &Path, secrets: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.ends_with("keyrings") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                if secrets.iter().any(|s| text.contains(s.as_str())) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}
