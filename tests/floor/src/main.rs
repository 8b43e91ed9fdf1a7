//! The cheapest Tauri window on this machine: one window, one static page, no plugins, no
//! commands. `scripts/bench` measures it beside the app (BENCHMARKS.md, "The app against
//! an empty Tauri window"), so the app's own cost is what is left after this floor.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        // A bench helper: there is no UI to report to.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("tessera-floor: {e}");
        }
        std::process::exit(1);
    }
}
