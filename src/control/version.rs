//! The kubespray checkout's version, as git reports it: `git describe
//! --tags`, the commit, and the local modifications of tracked files (the
//! recorded inventory left out: it is recorded file by file).
//!
//! The checkout may belong to another user, and its `.git/config` is not
//! trusted: git runs with the repository's configured helpers turned off
//! (no fsmonitor, no external diff or textconv, no pager) and writes
//! nothing (no optional locks).

use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub describe: Option<String>,
    pub commit: Option<String>,
    pub modified: Option<bool>,
    pub origin: Option<String>,
    /// `git diff --binary HEAD` of the modifications, when there are any.
    pub changes: Option<Vec<u8>>,
    /// Why the version could not be read, when it could not.
    pub note: Option<String>,
}

/// Why a git command in the checkout gave nothing.
#[derive(Debug, thiserror::Error)]
enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// git's own message.
    #[error("{0}")]
    Failed(String),
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git")
        .arg("--no-pager")
        .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"])
        .args(["-c", "core.untrackedCache=false", "-c", "diff.external="])
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

fn text(b: Vec<u8>) -> Option<String> {
    let s = String::from_utf8(b).ok()?.trim().to_string();
    (!s.is_empty() && !s.contains(char::is_whitespace)).then_some(s)
}

/// A remote URL without `user[:password]@`, which must not be recorded.
pub fn strip_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Reads the version of the checkout `dir`; `inside` is the recorded
/// inventory directory relative to it.
pub fn read(dir: &Path, inside: Option<&str>) -> Version {
    if !dir.join(".git").exists() {
        return Version {
            note: Some(format!("{} is not a git checkout", dir.display())),
            ..Default::default()
        };
    }
    let commit = match git(dir, &["rev-parse", "--verify", "HEAD"]) {
        Ok(c) => text(c),
        Err(why) => {
            return Version {
                note: Some(format!("git rev-parse HEAD in {}: {why}", dir.display())),
                ..Default::default()
            }
        }
    };
    let describe = git(dir, &["describe", "--tags"]).ok().and_then(text);
    let exclude = inside.map(|i| format!(":(exclude){i}"));
    let mut args = vec![
        "diff",
        "--binary",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        "HEAD",
        "--",
        ".",
    ];
    if let Some(e) = &exclude {
        args.push(e);
    }
    let (modified, changes, note) = match git(dir, &args) {
        Ok(d) if d.is_empty() => (Some(false), None, None),
        Ok(d) => (Some(true), Some(d), None),
        Err(why) => (
            None,
            None,
            Some(format!("git diff in {}: {why}", dir.display())),
        ),
    };
    let origin = git(dir, &["remote", "get-url", "origin"])
        .ok()
        .and_then(text)
        .map(|u| strip_userinfo(&u));
    Version {
        describe,
        commit,
        modified,
        origin,
        changes,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_never_recorded() {
        assert_eq!(
            strip_userinfo("https://bob:tok3n@github.com/kubernetes-sigs/kubespray.git"),
            "https://github.com/kubernetes-sigs/kubespray.git"
        );
        assert_eq!(
            strip_userinfo("https://github.com/x/y"),
            "https://github.com/x/y"
        );
        assert_eq!(
            strip_userinfo("git@github.com:x/y.git"),
            "git@github.com:x/y.git"
        );
    }

    // Runs the system git (an outside program: `--features lab`).
    #[cfg(feature = "lab")]
    #[test]
    fn reads_a_real_checkout() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(d)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .output()
                .expect("git is installed (scripts/install-deps)");
            assert!(ok.status.success(), "{args:?}: {ok:?}");
        };
        run(&["init", "-q"]);
        std::fs::create_dir_all(d.join("inventory/mycluster")).unwrap();
        std::fs::write(d.join("ansible.cfg"), "[defaults]\n").unwrap();
        std::fs::write(d.join("inventory/mycluster/hosts.yaml"), "all: {}\n").unwrap();
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "one"]);
        run(&["tag", "v2.24.0"]);
        let v = read(d, Some("inventory/mycluster"));
        assert_eq!(v.describe.as_deref(), Some("v2.24.0"));
        assert_eq!(v.modified, Some(false));
        assert_eq!(v.commit.as_ref().map(String::len), Some(40));
        // The inventory's own changes are not the checkout's.
        std::fs::write(d.join("inventory/mycluster/hosts.yaml"), "all: {x: 1}\n").unwrap();
        assert_eq!(read(d, Some("inventory/mycluster")).modified, Some(false));
        std::fs::write(d.join("ansible.cfg"), "[defaults]\nforks = 50\n").unwrap();
        let v = read(d, Some("inventory/mycluster"));
        assert_eq!(v.modified, Some(true));
        let diff = String::from_utf8(v.changes.unwrap()).unwrap();
        assert!(
            diff.contains("+forks = 50") && !diff.contains("hosts.yaml"),
            "{diff}"
        );
        assert!(read(&d.join("inventory"), None).note.is_some());
    }
}
