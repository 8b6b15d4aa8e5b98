//! Golden files: the help of every command and the main error messages, as
//! the binary prints them, with volatile values (temporary paths, times,
//! ids) masked, so that a change of output shows up as a diff in review.
//! `SPRAYVAULT_UPDATE_GOLDEN=1 cargo test --test golden` rewrites them.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    root().join("tests/golden")
}

/// Replaces what differs between runs: the temporary directory, commit ids,
/// RFC 3339 times, fingerprints.
fn mask(text: &str, tmp: &Path) -> String {
    let mut out = text.replace(tmp.to_str().unwrap(), "<TMP>");
    let masks: [(&str, &str); 4] = [
        (r"\b[0-9a-f]{40}\b", "<OID>"),
        (r"\b[0-9a-f]{10}\b", "<SHORT>"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<TIME>"),
        (r"SHA256:[A-Za-z0-9+/]{43}", "SHA256:<FP>"),
    ];
    for (pattern, with) in masks {
        out = regex_replace(&out, pattern, with);
    }
    out
}

/// A small regex engine is not a dependency: the patterns above are matched
/// by `sed -E`, the real tool.
fn regex_replace(text: &str, pattern: &str, with: &str) -> String {
    use std::io::Write;
    let sed_pattern = pattern.replace(r"\d", "[0-9]");
    let mut child = std::process::Command::new("sed")
        .args(["-E", &format!("s#{sed_pattern}#{}#g", with)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Compares `actual` with the golden file `name` (or rewrites it).
fn check(name: &str, actual: &str, failures: &mut Vec<String>) {
    let path = golden_dir().join(name);
    if std::env::var_os("SPRAYVAULT_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(want) if want == actual => {}
        Ok(want) => failures.push(format!(
            "{name} differs:\n--- golden\n{want}\n--- now\n{actual}"
        )),
        Err(e) => failures.push(format!(
            "{}: {e}; run SPRAYVAULT_UPDATE_GOLDEN=1 cargo test --test golden",
            path.display()
        )),
    }
}

fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{}\n(if the change is intended: SPRAYVAULT_UPDATE_GOLDEN=1 cargo test --test golden, and review the diff)",
        failures.join("\n\n")
    );
}

#[test]
fn help_texts_match_their_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let top = sv_run(&["--help"]).expect(0).out;
    let mut failures = vec![];
    check(
        "help/sprayvault.txt",
        &mask(&top, tmp.path()),
        &mut failures,
    );
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for c in &commands {
        let help = sv_run(&[c, "--help"]).expect(0).out;
        check(
            &format!("help/{c}.txt"),
            &mask(&help, tmp.path()),
            &mut failures,
        );
        // Subcommands (etcd ls, facts restore, ...).
        let subs: Vec<String> = help
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|s| s != "help")
            .collect();
        for s in subs {
            let h = sv_run(&[c, &s, "--help"]).expect(0).out;
            check(
                &format!("help/{c}-{s}.txt"),
                &mask(&h, tmp.path()),
                &mut failures,
            );
        }
    }
    finish(failures);
}

#[test]
fn main_error_messages_match_their_golden_files() {
    need("age-keygen");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let key = age_key(t, "operator");
    let vault = t.join("vault");
    let v = vault.to_str().unwrap();
    let missing = t.join("missing");
    let m = missing.to_str().unwrap();
    sv_run(&["init", "--vault", v, "--recipient", &key.recipient]).expect(0);
    let inv = t.join("inventory.ini");
    std::fs::write(&inv, "[all]\nnode1 ansible_host=127.0.0.1\n").unwrap();
    let bad_inv = t.join("bad.ini");
    std::fs::write(&bad_inv, "[all]\nnode1 ansible_host='127.0.0.1\n").unwrap();
    let (i, bi, id) = (
        inv.to_str().unwrap(),
        bad_inv.to_str().unwrap(),
        key.identity.to_str().unwrap(),
    );
    let pins = t.join("pins");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("no-vault", vec!["log", "--vault", m]),
        (
            "init-twice",
            vec!["init", "--vault", v, "--recipient", &key.recipient],
        ),
        (
            "bad-recipient",
            vec!["init", "--vault", m, "--recipient", "age1nope"],
        ),
        ("bad-inventory", vec!["inventory", "-i", bi]),
        (
            "unknown-node",
            vec!["show", "--node", "node9", "--vault", v],
        ),
        ("unknown-revision", vec!["show", "nosuchrev", "--vault", v]),
        (
            "restore-empty-vault",
            vec!["restore", "node1", "--vault", v, "-i", i, "--identity", id],
        ),
        (
            "bad-duration",
            vec!["backup", "--vault", v, "-i", i, "--connect-timeout", "5y"],
        ),
    ];
    let mut failures = vec![];
    for (name, args) in cases {
        let out = run(sv().env("SPRAYVAULT_PINS", &pins).args(&args));
        let r = Sv {
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
            code: out.status.code().unwrap_or(-1),
        };
        let text = format!("exit {}\n{}", r.code, mask(&r.err, t));
        check(&format!("errors/{name}.txt"), &text, &mut failures);
    }
    finish(failures);
}
