//! Golden files under `tests/golden/`: output compared with a reviewed copy
//! after masking what differs between runs. `SPRAYVAULT_UPDATE_GOLDEN=1`
//! rewrites them (review the diff before committing).

use super::root;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    root().join("tests/golden")
}

/// Masks what differs between runs: the temporary directory, the lab's
/// network (`127.0.N.`), 128-bit random names, commit ids, times,
/// fingerprints.
pub fn mask(text: &str, tmp: Option<&Path>) -> String {
    let mut out = text.replace(root().to_str().unwrap(), "<ROOT>");
    if let Some(t) = tmp {
        out = out.replace(t.to_str().unwrap(), "<TMP>");
    }
    for (pattern, with) in [
        (r"/tmp/\.tmp[A-Za-z0-9]{6}", "<TMP>"),
        (r"127\.0\.[0-9]+\.", "127.0.<NET>."),
        (r"\b[0-9a-f]{32}\b", "<RANDOM>"),
        (r"\b[0-9a-f]{40}\b", "<OID>"),
        (r"\b(backup|commit|backups?) [0-9a-f]{10}\b", "\\1 <SHORT>"),
        (
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
            "<TIME>",
        ),
        (r"[0-9]{8}T[0-9]{6}Z", "<STAMP>"),
        (r"SHA256:[A-Za-z0-9+/]{43}", "SHA256:<FP>"),
        (r"\b[0-9]+ bytes", "<N> bytes"),
        (r"\(([0-9]+[dhms] )*[0-9]+[dhms] old\)", "(<AGE> old)"),
        // Debian's etcd 3.5 moves with the suite's point releases.
        (r"\b3\.5\.[0-9]+\b", "3.5.<N>"),
    ] {
        out = sed(&out, pattern, with);
    }
    out
}

/// The patterns are matched by `sed -E`, the real tool (no regex crate).
fn sed(text: &str, pattern: &str, with: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sed")
        .args(["-E", &format!("s#{pattern}#{with}#g")])
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

/// Compares `actual` with golden file `name` (or rewrites it); a difference
/// is added to `failures`.
pub fn compare(name: &str, actual: &str, failures: &mut Vec<String>) {
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
            "{}: {e}; run the test with SPRAYVAULT_UPDATE_GOLDEN=1",
            path.display()
        )),
    }
}

pub fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{}\n(if the change is intended: rerun with SPRAYVAULT_UPDATE_GOLDEN=1 and review the diff)",
        failures.join("\n\n")
    );
}

/// One golden comparison that fails the test at once.
pub fn check(name: &str, actual: &str) {
    let mut f = vec![];
    compare(name, actual, &mut f);
    finish(f);
}
