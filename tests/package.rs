//! The Debian package (scripts/package) installed with `dpkg -i` on this
//! machine, as root: the binary and its version, the man pages, the shell
//! completions, the debug file, and every systemd unit checked with
//! `systemd-analyze verify` and `systemd-analyze security`, whose scores
//! must be the README's. Purged afterwards.

mod common;

use common::*;
use std::process::Command;

const UNITS: [&str; 8] = [
    "sprayvault-etcd-snapshot.service",
    "sprayvault-etcd-snapshot.timer",
    "sprayvault-backup.service",
    "sprayvault-backup.timer",
    "sprayvault-verify.service",
    "sprayvault-verify.timer",
    "sprayvault-prune.service",
    "sprayvault-prune.timer",
];

/// Purges the package even when an assertion fails half-way.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        uninstall_package();
    }
}

#[test]
fn dpkg_installs_binary_man_pages_completions_and_units_that_systemd_accepts() {
    for t in ["dpkg", "man", "systemd-analyze", "bash"] {
        need(t);
    }
    let (deb, dbgsym) = package();
    let name = deb.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        name,
        format!("sprayvault_{}_amd64.deb", env!("CARGO_PKG_VERSION"))
    );
    let _installed = Installed;
    ok(Command::new("dpkg").arg("-i").arg(&deb).arg(&dbgsym));

    // The binary.
    let version = ok(Command::new("/usr/bin/sprayvault").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("sprayvault {}", env!("CARGO_PKG_VERSION"))
    );
    let sections = ok(Command::new("readelf").args(["-S", "-W", "/usr/bin/sprayvault"]));
    assert!(
        !sections.contains(".debug_info"),
        "the installed binary is not stripped"
    );
    assert!(sections.contains(".gnu_debuglink"), "{sections}");
    let notes = ok(Command::new("readelf").args(["-n", "/usr/bin/sprayvault"]));
    let id = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .expect("a build id");
    let debug = format!("/usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    let debug_sections = ok(Command::new("readelf").args(["-S", "-W", &debug]));
    assert!(
        debug_sections.contains(".debug_info") || debug_sections.contains(".debug_line"),
        "{debug_sections}"
    );

    // The account postinst made, and the conffile.
    ok(Command::new("getent").args(["passwd", "sprayvault"]));
    let env = std::fs::read_to_string("/etc/sprayvault/sprayvault.env").unwrap();
    assert!(
        env.contains("SPRAYVAULT_VAULT=/var/lib/sprayvault/vault"),
        "{env}"
    );
    let conffiles = ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "sprayvault"]));
    assert!(
        conffiles.contains("/etc/sprayvault/sprayvault.env"),
        "{conffiles}"
    );

    // Man pages, generated from the command line's definition.
    for page in [
        "sprayvault",
        "sprayvault-backup",
        "sprayvault-etcd-restore",
        "sprayvault-prune",
    ] {
        let path = ok(Command::new("man").args(["-w", page]));
        assert_eq!(path.trim(), format!("/usr/share/man/man1/{page}.1.gz"));
    }
    let text = ok(Command::new("man")
        .args(["-P", "cat", "sprayvault-backup"])
        .env("MANWIDTH", "100"));
    assert!(
        text.contains("--inventory") && text.contains("SPRAYVAULT_INVENTORY"),
        "{text}"
    );

    // Completions: the files are what `sprayvault completions SHELL` prints,
    // and bash loads its file.
    for (shell, file) in [
        ("bash", "/usr/share/bash-completion/completions/sprayvault"),
        ("zsh", "/usr/share/zsh/vendor-completions/_sprayvault"),
        (
            "fish",
            "/usr/share/fish/vendor_completions.d/sprayvault.fish",
        ),
    ] {
        let installed = std::fs::read_to_string(file).unwrap();
        let printed = ok(Command::new("/usr/bin/sprayvault").args(["completions", shell]));
        assert_eq!(installed, printed, "{file}");
        assert!(installed.contains("inventory"), "{file}");
    }
    let bash = ok(Command::new("bash")
        .arg("-c")
        .arg("source /usr/share/bash-completion/completions/sprayvault && complete -p sprayvault"));
    assert!(bash.contains("sprayvault"), "{bash}");

    // Every unit: systemd-analyze verify (it also checks that ExecStart's
    // binary and Documentation='s man pages exist) and security.
    let readme = manual_text();
    for unit in UNITS {
        let path = format!("/lib/systemd/system/{unit}");
        let out = run(Command::new("systemd-analyze").args(["verify", &path]));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {unit}:\n{said}"
        );
        if !unit.ends_with(".service") {
            continue;
        }
        let out = run(Command::new("systemd-analyze").args([
            "security",
            "--offline=yes",
            "--no-pager",
            &path,
        ]));
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        let score: f64 = said
            .lines()
            .find_map(|l| l.split_once(&format!("Overall exposure level for {unit}: ")))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no score for {unit}:\n{said}"))
            .parse()
            .unwrap();
        assert!(score <= 2.0, "{unit} scores {score}:\n{said}");
        let row = format!("| `{unit}` | {score:.1} ");
        assert!(
            readme.contains(&row),
            "the manual lacks the row {row:?} (the measured score)"
        );
    }
}
