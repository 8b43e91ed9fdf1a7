//! WebKitGTK set for what the UI is: a few small local pages of forms and text, no
//! animation worth a GPU, no media, no WebGL.
//!
//! Measured one setting at a time (BENCHMARKS.md, "What each lever saved"): turning off
//! hardware acceleration is what pays — the web process no longer starts a GL stack (Mesa,
//! and with it LLVM under software rendering), ~70 MiB RSS, which takes the whole app below
//! an untuned empty Tauri window. The page draws on the CPU, which for this UI is not
//! visible. WebGL, Web Audio and media are turned off for the attack surface (the UI uses
//! none of them; they saved no memory idle). The cache model, the page cache and WebKit's
//! memory-pressure limits saved nothing measurable and are left as they are.
//!
//! Known gap: this runs when Tauri reports the webview ready, which races the first page
//! load; a web process that has already set up GL keeps it (seen in debug builds under
//! WebDriver). Applying the settings before the first navigation is the follow-up.

use tauri::Runtime;
use tauri::plugin::TauriPlugin;

/// A plugin with no commands: it sets up every webview as it is created.
pub fn plugin<R: Runtime>() -> TauriPlugin<R> {
    tauri::plugin::Builder::new("webview-tuning")
        .on_webview_ready(|webview| {
            #[cfg(target_os = "linux")]
            if let Err(e) = webview.with_webview(linux::tune) {
                tracing::warn!(error = %e, "cannot set up the webview");
            }
            #[cfg(not(target_os = "linux"))]
            let _ = webview;
        })
        .build()
}

#[cfg(target_os = "linux")]
mod linux {
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};

    pub(super) fn tune(webview: tauri::webview::PlatformWebview) {
        let Some(settings) = WebViewExt::settings(&webview.inner()) else {
            return;
        };
        settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        settings.set_enable_webgl(false);
        settings.set_enable_webaudio(false);
        settings.set_enable_media(false);
        settings.set_enable_mediasource(false);
        settings.set_enable_media_stream(false);
        settings.set_enable_encrypted_media(false);
    }
}
