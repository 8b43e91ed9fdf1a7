//! Linux: who opens `tessera://` links. An installed package (`.deb`, `.rpm`) ships a
//! desktop entry that registers the scheme and starts the app with the URL; the app then
//! does not register itself over it. A build run from a checkout (`cargo run`, the test
//! suites) has no such entry, and registers itself at run time through the deep-link
//! plugin (`$XDG_DATA_HOME/applications/tessera-handler.desktop`, made the default with
//! `xdg-mime default`).
//!
//! Finding the package's entry is plain file reading: the XDG data folders
//! (`$XDG_DATA_HOME`, then `$XDG_DATA_DIRS`) are searched for an `applications/*.desktop`
//! entry whose `MimeType` names every scheme and whose `Exec` starts this very executable
//! with the URL; the first folder that has a file of a given name wins (a user's copy with
//! `Hidden=true` hides the package's). One thing is then asked of `xdg-mime`: if a runtime
//! registration (a checkout build run earlier) is still the default handler, the default
//! goes back to the package's entry; another program chosen as the default is left alone.

#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tauri::{AppHandle, Runtime};

/// Registers the app's link schemes with the desktop (the deep-link plugin's
/// `register_all`), unless an installed package's entry already opens them with this
/// executable (Linux).
#[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
pub(crate) fn register_scheme<R: Runtime>(app: &AppHandle<R>) {
    use tauri_plugin_deep_link::DeepLinkExt;
    #[cfg(target_os = "linux")]
    if let Some((entry, schemes)) = installed_for(app) {
        tracing::info!(entry = %entry.display(), "links come through the installed desktop entry");
        reclaim_default(&entry, &schemes);
        return;
    }
    if let Err(e) = app.deep_link().register_all() {
        tracing::warn!(error = %e, "cannot register the deep-link scheme with the desktop");
    }
}

/// The installed desktop entry that opens this app's link schemes (`plugins.deep-link`
/// in tauri.conf.json) with this executable, if there is one, and those schemes.
fn installed_for<R: Runtime>(app: &AppHandle<R>) -> Option<(PathBuf, Vec<String>)> {
    let desktop = app.config().plugins.0.get("deep-link")?.get("desktop")?;
    let schemes = link_schemes(desktop);
    if schemes.is_empty() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let var = std::env::var_os;
    let dirs = data_dirs(
        var("XDG_DATA_HOME").as_deref(),
        var("HOME").as_deref(),
        var("XDG_DATA_DIRS").as_deref(),
    );
    let entry = installed_entry(&exe, &schemes, &dirs, var("PATH").as_deref())?;
    Some((entry, schemes))
}

/// A runtime registration left as the default handler (by a checkout build, or an
/// AppImage, run earlier) would keep links away from the installed app, since a user's
/// default beats a package's entry: the default goes back to the package's entry.
fn reclaim_default(entry: &Path, schemes: &[String]) {
    let Some(id) = entry.file_name().and_then(OsStr::to_str) else {
        return;
    };
    for scheme in schemes {
        let mime = format!("x-scheme-handler/{scheme}");
        let current = std::process::Command::new("xdg-mime")
            .args(["query", "default", &mime])
            .output();
        let Ok(current) = current else {
            return; // no xdg-utils: nothing to ask, nothing to fix
        };
        let current = String::from_utf8_lossy(&current.stdout);
        let current = current.lines().next().unwrap_or("").trim();
        if !is_runtime_entry(Path::new(current)) {
            continue;
        }
        let set = std::process::Command::new("xdg-mime")
            .args(["default", id, &mime])
            .status();
        match set {
            Ok(s) if s.success() => {
                tracing::info!(from = current, to = id, %mime, "default link handler given back to the installed app");
            }
            other => tracing::warn!(?other, %mime, "cannot give the default link handler back"),
        }
    }
}

/// The schemes of `plugins.deep-link.desktop`: one protocol or a list of them.
fn link_schemes(desktop: &Value) -> Vec<String> {
    let protocols = match desktop {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    protocols
        .iter()
        .filter_map(|p| p.get("schemes")?.as_array().cloned())
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The file name the deep-link plugin writes when it registers at run time: not a
/// package's entry, however well it matches.
fn is_runtime_entry(file: &Path) -> bool {
    file.file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.ends_with("-handler.desktop"))
}

/// The XDG data folders in the order the desktop reads them.
pub(crate) fn data_dirs(
    data_home: Option<&OsStr>,
    home: Option<&OsStr>,
    data_dirs: Option<&OsStr>,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match (data_home.filter(|v| !v.is_empty()), home) {
        (Some(d), _) => dirs.push(PathBuf::from(d)),
        (None, Some(h)) => dirs.push(Path::new(h).join(".local/share")),
        (None, None) => {}
    }
    let system = data_dirs
        .filter(|v| !v.is_empty())
        .unwrap_or(OsStr::new("/usr/local/share:/usr/share"));
    dirs.extend(std::env::split_paths(system));
    dirs
}

/// The installed desktop entry that opens `schemes` with `exe`, if there is one.
pub(crate) fn installed_entry(
    exe: &Path,
    schemes: &[String],
    dirs: &[PathBuf],
    path_var: Option<&OsStr>,
) -> Option<PathBuf> {
    let exe = exe.canonicalize().ok()?;
    // Desktop file ids already seen: the first folder that has an id wins, later copies
    // are shadowed (even when the first one is hidden or broken).
    let mut seen: HashSet<OsString> = HashSet::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join("applications")) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            if file.extension() != Some(OsStr::new("desktop")) {
                continue;
            }
            let Some(id) = file.file_name() else {
                continue;
            };
            if !seen.insert(id.to_owned()) || is_runtime_entry(&file) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let Some(entry) = Entry::parse(&text) else {
                continue;
            };
            if entry.hidden {
                continue;
            }
            let handles_all = schemes
                .iter()
                .all(|s| entry.mime_types.contains(&format!("x-scheme-handler/{s}")));
            if handles_all
                && entry.takes_url
                && resolve(&entry.program, path_var).is_some_and(|p| p == exe)
            {
                return Some(file);
            }
        }
    }
    None
}

/// What matters of a `[Desktop Entry]` group.
#[derive(Debug, PartialEq)]
struct Entry {
    /// `Hidden=true`: the entry counts as deleted (how a user hides a package's entry).
    hidden: bool,
    program: String,
    /// `Exec` passes the URL (`%u` or `%U`): without it a link would start the app empty.
    takes_url: bool,
    mime_types: Vec<String>,
}

impl Entry {
    fn parse(text: &str) -> Option<Entry> {
        let mut in_entry = false;
        let (mut exec, mut mime, mut hidden) = (None, None, false);
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_entry = line == "[Desktop Entry]";
                continue;
            }
            if !in_entry {
                continue;
            }
            if let Some(v) = line.strip_prefix("Exec=") {
                exec = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("MimeType=") {
                mime = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("Hidden=") {
                hidden = v == "true";
            }
        }
        let exec = exec?;
        let args = split_exec(&exec);
        let program = args.first()?.clone();
        Some(Entry {
            hidden,
            program,
            takes_url: args.iter().skip(1).any(|a| a == "%u" || a == "%U"),
            mime_types: mime
                .unwrap_or_default()
                .split(';')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Splits an `Exec` value into arguments: whitespace outside double quotes, `\"`, `\\`,
/// `` \` `` and `\$` escaped inside them (the Desktop Entry specification's rules).
fn split_exec(exec: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut started) = (false, false);
    let mut chars = exec.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    args.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        args.push(current);
    }
    args
}

/// The executable an `Exec` program names: an absolute path, or a name looked up in
/// `PATH` as the desktop does.
fn resolve(program: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let program = Path::new(program);
    if program.is_absolute() {
        return program.canonicalize().ok();
    }
    if program.components().count() != 1 {
        return None; // a relative path: the desktop would not run it
    }
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemes() -> Vec<String> {
        vec!["tessera".to_owned()]
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join("applications")).unwrap();
        std::fs::write(dir.join("applications").join(name), text).unwrap();
    }

    #[test]
    fn schemes_come_from_the_deep_link_config() {
        let one = serde_json::json!({ "schemes": ["tessera"] });
        assert_eq!(link_schemes(&one), ["tessera"]);
        let list = serde_json::json!([{ "schemes": ["a", "b"] }, { "schemes": ["c"] }]);
        assert_eq!(link_schemes(&list), ["a", "b", "c"]);
        assert!(link_schemes(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn exec_is_split_as_the_specification_says() {
        assert_eq!(split_exec("tessera %u"), ["tessera", "%u"]);
        assert_eq!(
            split_exec(r#""/opt/My Apps/tessera" --flag   %U"#),
            ["/opt/My Apps/tessera", "--flag", "%U"]
        );
        assert_eq!(split_exec(r#""a \"b\" \\c""#), [r#"a "b" \c"#]);
        assert!(split_exec("   ").is_empty());
    }

    #[test]
    fn data_dirs_follow_xdg_defaults() {
        let dirs = data_dirs(None, Some(OsStr::new("/home/ada")), None);
        assert_eq!(
            dirs,
            [
                PathBuf::from("/home/ada/.local/share"),
                PathBuf::from("/usr/local/share"),
                PathBuf::from("/usr/share"),
            ]
        );
        let dirs = data_dirs(
            Some(OsStr::new("/x")),
            Some(OsStr::new("/home/ada")),
            Some(OsStr::new("/a:/b")),
        );
        assert_eq!(dirs, [Path::new("/x"), Path::new("/a"), Path::new("/b")]);
    }

    #[test]
    fn a_package_entry_for_this_executable_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("tessera");
        std::fs::write(&exe, "").unwrap();
        let share = tmp.path().join("usr/share");
        let dirs = vec![tmp.path().join("home"), share.clone()];
        let path = std::env::join_paths([&bin]).unwrap();

        // Nothing installed: the app registers itself.
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, Some(&path)), None);

        // The runtime registration's own file never counts.
        let entry = "[Desktop Entry]\nType=Application\nExec=tessera %u\n\
                     MimeType=x-scheme-handler/tessera;\n";
        write(&share, "tessera-handler.desktop", entry);
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, Some(&path)), None);

        // A package's entry without %u would start the app without the link.
        write(
            &share,
            "Tessera.desktop",
            "[Desktop Entry]\nExec=tessera\nMimeType=x-scheme-handler/tessera;\n",
        );
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, Some(&path)), None);

        // The package's entry, found through PATH.
        write(&share, "Tessera.desktop", entry);
        assert_eq!(
            installed_entry(&exe, &schemes(), &dirs, Some(&path)),
            Some(share.join("applications/Tessera.desktop"))
        );
        // Not when it starts another program, or handles another scheme only.
        let other = vec!["other".to_owned()];
        assert_eq!(installed_entry(&exe, &other, &dirs, Some(&path)), None);
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, None), None);
    }

    #[test]
    fn a_hidden_or_shadowing_copy_in_an_earlier_folder_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("tessera");
        std::fs::write(&exe, "").unwrap();
        let (home, system) = (tmp.path().join("home"), tmp.path().join("system"));
        let dirs = vec![home.clone(), system.clone()];
        let entry = format!(
            "[Desktop Entry]\nExec={} %u\nMimeType=x-scheme-handler/tessera;\n",
            exe.display()
        );
        write(&system, "Tessera.desktop", &entry);
        assert!(installed_entry(&exe, &schemes(), &dirs, None).is_some());
        // The user hid the package's entry (as menu editors do): no handler is installed.
        write(&home, "Tessera.desktop", &format!("{entry}Hidden=true\n"));
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, None), None);
        // A user's copy that starts something else shadows it too.
        write(
            &home,
            "Tessera.desktop",
            "[Desktop Entry]\nExec=other %u\nMimeType=x-scheme-handler/tessera;\n",
        );
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, None), None);
    }

    #[test]
    fn an_absolute_exec_must_be_this_executable() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("tessera");
        let elsewhere = tmp.path().join("old-tessera");
        std::fs::write(&exe, "").unwrap();
        std::fs::write(&elsewhere, "").unwrap();
        let dirs = vec![tmp.path().to_owned()];
        let entry = |exec: &Path| {
            format!(
                "[Desktop Action x]\nExec=nothing\n[Desktop Entry]\nExec=\"{}\" %u\n\
                 MimeType=text/plain;x-scheme-handler/tessera;\n",
                exec.display()
            )
        };
        write(tmp.path(), "a.desktop", &entry(&elsewhere));
        assert_eq!(installed_entry(&exe, &schemes(), &dirs, None), None);
        write(tmp.path(), "b.desktop", &entry(&exe));
        assert_eq!(
            installed_entry(&exe, &schemes(), &dirs, None),
            Some(tmp.path().join("applications/b.desktop"))
        );
    }
}
