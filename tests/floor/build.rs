//! Builds the floor's Tauri context from its own `tauri.conf.json` (no capabilities: the
//! page calls nothing).

fn main() {
    tauri_build::build();
}
