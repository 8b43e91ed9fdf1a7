//! The installed app as a user gets it: the `.deb` that `scripts/bundle` makes, unpacked
//! into a throw-away root (`dpkg-deb -x`, nothing installed into the machine), its binary
//! started under Xvfb with a private D-Bus session and gnome-keyring, its desktop entry
//! registered in a throw-away `XDG_DATA_HOME`, and a magic link opened through the
//! desktop (`xdg-open`). Run by `scripts/test-installed`, which unpacks the package and
//! sets `TESSERA_INSTALLED_ROOT` and `TESSERA_APP_BIN`. Its tests are named
//! `installed::…` (the keyring stage of `scripts/test` skips them).

mod installed {
    #![allow(clippy::unwrap_used, clippy::print_stderr)]

    use std::path::{Path, PathBuf};
    use std::process::Command;

    use tessera_e2e::*;

    const SCHEME_MIME: &str = "x-scheme-handler/tessera";

    /// The unpacked package's root, set by `scripts/test-installed`.
    fn installed_root() -> PathBuf {
        let root = std::env::var_os("TESSERA_INSTALLED_ROOT").map(PathBuf::from).expect(
            "TESSERA_INSTALLED_ROOT is not set: run scripts/test-installed (it unpacks the .deb)",
        );
        assert!(
            app_bin().starts_with(&root),
            "TESSERA_APP_BIN ({}) must be the unpacked package's binary",
            app_bin().display()
        );
        root
    }

    /// The package's one desktop entry.
    fn packaged_entry(root: &Path) -> PathBuf {
        let dir = root.join("usr/share/applications");
        let entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "desktop"))
            .collect();
        assert_eq!(entries.len(), 1, "one desktop entry: {entries:?}");
        entries.into_iter().next().unwrap()
    }

    fn run(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// xdg-utils as it behaves with no desktop environment (the test's own XDG folders;
    /// nothing of a developer's desktop session leaks in).
    fn xdg(program: &str, data_home: &Path, config_home: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("XDG_DATA_HOME", data_home)
            .env("XDG_CONFIG_HOME", config_home);
        for var in [
            "XDG_CURRENT_DESKTOP",
            "DESKTOP_SESSION",
            "KDE_FULL_SESSION",
            "GNOME_DESKTOP_SESSION_ID",
            "BROWSER",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// The desktop's default handler of `tessera://` links in this test's XDG folders.
    fn default_handler(data_home: &Path, config_home: &Path) -> String {
        run(xdg("xdg-mime", data_home, config_home).args(["query", "default", SCHEME_MIME]))
    }

    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "needs the unpacked .deb, Xvfb, a Secret Service and tauri-driver: run scripts/test-installed"]
    async fn the_package_signs_in_restores_and_opens_links_through_the_desktop() {
        let root = installed_root();
        let entry = packaged_entry(&root);
        let text = std::fs::read_to_string(&entry).unwrap();

        // The package's entry is valid, handles the scheme, and passes the URL on.
        run(Command::new("desktop-file-validate").arg(&entry));
        let mime = text
            .lines()
            .find_map(|l| l.strip_prefix("MimeType="))
            .unwrap_or("");
        assert!(mime.split(';').any(|m| m == SCHEME_MIME), "{text}");
        assert!(text.contains("Exec=tessera %u"), "{text}");
        for icon in ["32x32", "64x64", "128x128", "256x256", "512x512"] {
            let png = root.join(format!("usr/share/icons/hicolor/{icon}/apps/tessera.png"));
            assert!(png.is_file(), "{} is missing", png.display());
        }

        // Registered as a package would be, in throw-away XDG folders: the entry (its Exec
        // pointing at the unpacked binary instead of /usr/bin) and the MIME cache.
        let xdg_root = tempfile::tempdir().unwrap();
        let (data_home, config_home) =
            (xdg_root.path().join("data"), xdg_root.path().join("config"));
        let applications = data_home.join("applications");
        std::fs::create_dir_all(&applications).unwrap();
        std::fs::create_dir_all(&config_home).unwrap();
        // Unquoted: xdg-open's own Exec reader (used when no desktop environment runs)
        // does not undo quotes, and a temp path needs none.
        let bin = app_bin().display().to_string();
        assert!(!bin.contains([' ', '"', '\\', '%']), "{bin}");
        let exec = format!("Exec={bin} %u");
        std::fs::write(
            applications.join(entry.file_name().unwrap()),
            text.replace("Exec=tessera %u", &exec),
        )
        .unwrap();
        run(Command::new("update-desktop-database").arg(&applications));
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(default_handler(&data_home, &config_home), name);

        // A checkout build run on this machine before left its runtime registration as
        // the user's default (that beats a package's entry): the installed app must take
        // the default back, or links would go to that other binary.
        // (xdg-mime ignores a default whose program is missing: the old build is a stub.)
        let checkout = xdg_root.path().join("checkout");
        std::fs::create_dir_all(&checkout).unwrap();
        let old_build = checkout.join("tessera");
        std::fs::write(&old_build, "#!/bin/sh\nexit 0\n").unwrap();
        let mut mode = std::fs::metadata(&old_build).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&old_build, mode).unwrap();
        std::fs::write(
            applications.join("tessera-handler.desktop"),
            format!(
                "[Desktop Entry]\nType=Application\nName=Tessera\nExec={} %u\n\
                 MimeType=x-scheme-handler/tessera;\n",
                old_build.display()
            ),
        )
        .unwrap();
        run(xdg("xdg-mime", &data_home, &config_home).args([
            "default",
            "tessera-handler.desktop",
            SCHEME_MIME,
        ]));
        assert_eq!(
            default_handler(&data_home, &config_home),
            "tessera-handler.desktop"
        );

        // The unpacked app, against this test's emulator.
        let h = Harness::with_env(
            gotrue_emulator::Config::for_tests(),
            &[
                ("XDG_DATA_HOME", &data_home.to_string_lossy()),
                ("XDG_CONFIG_HOME", &config_home.to_string_lossy()),
            ],
        )
        .await;
        h.create_user("installed@example.com").await;
        let app = h.open_app().await;
        sign_in(&app, "installed@example.com").await;
        app.close().await.unwrap();

        // The package's entry is the handler again, and the app did not register itself
        // (the stale runtime entry is the one the test wrote, untouched).
        assert_eq!(default_handler(&data_home, &config_home), name);
        let stale = std::fs::read_to_string(applications.join("tessera-handler.desktop")).unwrap();
        assert!(
            stale.contains(&old_build.display().to_string()),
            "the installed app registered itself over its package's entry: {stale}"
        );

        // Started again: the session comes back from the keyring.
        let app = h.open_app().await;
        wait_status(&app, |s| s == "Signed in as installed@example.com").await;
        click(&app, "sign-out-local").await;
        wait_status(&app, |s| s == "Signed out").await;

        // A magic link opened through the desktop reaches the running app: xdg-open
        // starts the entry's Exec with the URL, and that second instance hands it over.
        fill(&app, "email", "installed@example.com").await;
        click(&app, "send-code").await;
        wait_text(&app, "message", |t| t.contains("emailed")).await;
        let link = h.deep_link_from_mail("installed@example.com").await;
        // (xdg-open waits for the program it starts: bounded, in case the hand-over
        // failed and that instance stayed.)
        run(xdg("timeout", &data_home, &config_home)
            .args(["60", "xdg-open", &link])
            .env("TESSERA_PROFILE", &h.profile)
            .env("TESSERA_AUTH_URL", h.emu.url())
            .env("TESSERA_ANON_KEY", h.emu.anon_key()));
        wait_status(&app, |s| s == "Signed in as installed@example.com").await;
        screenshot(&app, "installed").await;
        app.close().await.unwrap();

        // The log is in the platform's log folder, and no token is in it.
        let log = log_folder_text(&data_home);
        assert!(
            log.contains("Tessera started") && log.contains("restored the stored session"),
            "log folder: {log}"
        );
        let issued: Vec<String> =
            serde_json::from_value(h.get("/_emulator/issued-tokens").await).unwrap();
        assert!(!issued.is_empty());
        let hits = files_containing(xdg_root.path(), &issued);
        assert!(hits.is_empty(), "tokens found in {hits:?}");
        eprintln!(
            "installed: {} issued tokens, 0 hits in {} files of the app's data, config and logs",
            issued.len(),
            count_files(xdg_root.path())
        );
    }
}
