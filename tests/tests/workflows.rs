//! The GitHub Actions workflows cannot run on this machine (no macOS, no Windows, no
//! network beyond the package registries): this test keeps them valid YAML of the shape
//! GitHub and tauri-action read, so a broken file is caught here and not on a release day.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn workflow(name: &str) -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.github/workflows")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn strings(list: &Yaml) -> Vec<&str> {
    list.as_vec()
        .unwrap_or_else(|| panic!("not a list: {list:?}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn the_release_workflow_bundles_every_desktop_on_a_tag() {
    let w = workflow("release.yml");
    // Note: YAML 1.1 readers take a bare `on` for `true`; yaml-rust2 and GitHub read the
    // key `on`.
    assert_eq!(strings(&w["on"]["push"]["tags"]), ["v*"]);
    // No token rights by default; only the publishing job may write.
    assert!(w["permissions"].as_hash().is_some_and(|h| h.is_empty()));
    let job = &w["jobs"]["bundle"];
    assert_eq!(job["permissions"]["contents"].as_str(), Some("write"));
    let include = job["strategy"]["matrix"]["include"].as_vec().unwrap();
    let os: Vec<&str> = include.iter().map(|m| m["os"].as_str().unwrap()).collect();
    assert!(os.iter().any(|o| o.starts_with("ubuntu-")), "{os:?}");
    assert!(os.iter().any(|o| o.starts_with("macos-")), "{os:?}");
    assert!(os.iter().any(|o| o.starts_with("windows-")), "{os:?}");
    let args: Vec<&str> = include
        .iter()
        .map(|m| m["args"].as_str().unwrap())
        .collect();
    for bundle in [
        "deb,rpm,appimage",
        "universal-apple-darwin",
        "app,dmg",
        "msi,nsis",
    ] {
        assert!(
            args.iter().any(|a| a.contains(bundle)),
            "{bundle} in {args:?}"
        );
    }
    assert_eq!(job["runs-on"].as_str(), Some("${{ matrix.os }}"));

    let steps = job["steps"].as_vec().unwrap();
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    for action in [
        "actions/checkout@v4",
        "actions/setup-node@v4",
        "dtolnay/rust-toolchain@stable",
        "tauri-apps/tauri-action@v0",
    ] {
        assert!(uses.contains(&action), "{action} in {uses:?}");
    }
    let tauri = steps
        .iter()
        .find(|s| s["uses"].as_str() == Some("tauri-apps/tauri-action@v0"))
        .unwrap();
    let with = &tauri["with"];
    // The app's release-build check wants its own custom-protocol feature; the lock
    // file is used as committed.
    let build_args = with["args"].as_str().unwrap();
    assert!(
        build_args.contains("--features custom-protocol"),
        "{with:?}"
    );
    assert!(build_args.ends_with("-- --locked"), "{with:?}");
    assert!(with["tagName"].as_str().is_some() && with["releaseDraft"].as_bool() == Some(true));
    // The CLI is the pinned one: package.json's, installed with `npm ci`.
    assert!(
        steps
            .iter()
            .filter_map(|s| s["run"].as_str())
            .any(|r| r.contains("npm ci")),
        "the pinned CLI is installed"
    );
    let linux = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("apt-get install"))
        .unwrap();
    assert!(linux.contains("libwebkit2gtk-4.1-dev"), "{linux}");
}

/// The `run:` commands of a job's steps.
fn runs(job: &Yaml) -> Vec<&str> {
    job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect()
}

#[test]
fn the_platforms_workflow_builds_and_tests_every_other_platform() {
    let w = workflow("platforms.yml");
    // Every push and pull request (a bare `push:` is a key with no value).
    for event in ["push", "pull_request"] {
        assert!(!w["on"][event].is_badvalue(), "on: {event}");
    }
    assert_eq!(w["concurrency"]["cancel-in-progress"].as_bool(), Some(true));
    assert!(w["permissions"].as_hash().is_some_and(|h| h.is_empty()));
    let jobs = w["jobs"].as_hash().unwrap();
    for (name, job) in jobs {
        // Each job only reads; every action is pinned to a version.
        assert_eq!(
            job["permissions"]["contents"].as_str(),
            Some("read"),
            "{name:?}"
        );
        for step in job["steps"].as_vec().unwrap() {
            if let Some(action) = step["uses"].as_str() {
                assert!(action.contains('@'), "{name:?}: {action} is not pinned");
            }
        }
    }

    // macOS and Windows: the engine, the plugin and the app tested, the OS keyring too;
    // never the Linux-only end-to-end crate.
    let desktop = &w["jobs"]["desktop"];
    let include = desktop["strategy"]["matrix"]["include"].as_vec().unwrap();
    let os: Vec<&str> = include.iter().map(|m| m["os"].as_str().unwrap()).collect();
    assert!(os.iter().any(|o| o.starts_with("macos-")), "{os:?}");
    assert!(os.iter().any(|o| o.starts_with("windows-")), "{os:?}");
    assert_eq!(desktop["runs-on"].as_str(), Some("${{ matrix.os }}"));
    for m in include {
        let packages: Vec<&str> = m["packages"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .filter(|p| *p != "-p")
            .collect();
        for crate_ in [
            "wall-timer",
            "auth-core",
            "authctl",
            "tauri-plugin-tessera",
            "tessera",
        ] {
            assert!(packages.contains(&crate_), "{crate_} in {packages:?}");
        }
        assert!(!packages.contains(&"tessera-e2e"), "{packages:?}");
    }
    let tests: Vec<&str> = runs(desktop)
        .into_iter()
        .filter(|r| r.starts_with("cargo test"))
        .collect();
    assert!(tests.iter().all(|r| r.contains("--locked")), "{tests:?}");
    assert!(tests.iter().any(|r| !r.contains("--ignored")), "{tests:?}");
    assert!(tests.iter().any(|r| r.contains("--ignored")), "{tests:?}");

    // Android and iOS: the project generated (gen/ is not committed), then built.
    for (job, runner, commands) in [
        (
            "android",
            "ubuntu-",
            ["tauri android init", "tauri android build"],
        ),
        ("ios", "macos-", ["tauri ios init", "tauri ios build"]),
    ] {
        let job = &w["jobs"][job];
        assert!(job["runs-on"].as_str().unwrap().starts_with(runner));
        let steps = runs(job);
        for command in commands {
            assert!(
                steps.iter().any(|r| r.contains(command)),
                "{command} in {steps:?}"
            );
        }
        let build = steps.iter().find(|r| r.contains(commands[1])).unwrap();
        assert!(
            build.contains("--features custom-protocol") && build.ends_with("-- --locked"),
            "{build}"
        );
    }
    assert!(
        runs(&w["jobs"]["android"])
            .iter()
            .any(|r| r.contains("NDK_HOME")),
        "the NDK is found through NDK_HOME"
    );
}
