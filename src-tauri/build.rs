//! Builds the Tauri context from the workspace-root `tauri.conf.json`. The app has no
//! commands of its own: the UI's commands are the `tessera` plugin's, granted in
//! `capabilities/main.json` by `tessera:default`.

fn main() {
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=../ui");
    let attributes = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri build failed: {e:#}");
    }
}
