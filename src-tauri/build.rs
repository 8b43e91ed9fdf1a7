//! Builds the Tauri context from the root `tauri.conf.json`. The app has no commands of
//! its own: the UI's commands are the `tessera` plugin's, granted in
//! `src-tauri/capabilities/main.json` by `tessera:default`.
//!
//! The package manifest is the root `Cargo.toml` (the Tauri CLI wants it beside the
//! config), so this script runs at the root, where tauri-build also reads `Cargo.toml`
//! and writes the capability schemas (`gen/schemas`, not committed).

fn main() {
    println!("cargo:rerun-if-changed=tauri.conf.json");
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let attributes = tauri_build::Attributes::new()
        .config_path("tauri.conf.json")
        .capabilities_path_pattern("src-tauri/capabilities/**/*");
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri build failed: {e:#}");
    }
}
