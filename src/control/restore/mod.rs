//! Restoring the control host's files into a directory: what is there is
//! observed first, a pure plan decides (create, replace, update, leave), and
//! an executor writes. A file that exists with other content, or an entry of
//! another type, is a conflict the caller refuses without `--force`.
//!
//! Writing never follows a symlink: every ancestor of an entry must be a
//! real directory (or is created), files are written to a temporary file in
//! their directory and renamed into place, and a symlink in the way of a
//! file is replaced, never written through.

mod apply;

pub use apply::{apply, Applied};

use crate::restore::plan::sha256;
use crate::restore::Action;
use crate::vault::manifest::{Entry, Kind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What is at an entry's path in the target directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Absent,
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: i64,
        sha: [u8; 32],
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Link {
        target: String,
    },
    /// Something else, or an ancestor that is not a real directory.
    Blocked(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct Item {
    pub path: String,
    pub kind: &'static str,
    pub action: Action,
    pub detail: Option<String>,
}

/// Decides, for each entry, what to do. `owners` says whether owners
/// count (only root can set them); `ids` maps an entry to the uid and gid it
/// gets here.
pub fn plan(
    entries: &[Entry],
    observed: &BTreeMap<String, Observed>,
    contents: &BTreeMap<String, Vec<u8>>,
    owners: bool,
    ids: &dyn Fn(&Entry) -> (u32, u32),
) -> Vec<Item> {
    let mut out = Vec::new();
    for e in entries {
        let (uid, gid) = ids(e);
        let meta_differs =
            |mode: u32, u: u32, g: u32| mode != e.mode || (owners && (u, g) != (uid, gid));
        let (action, detail) = match (e.kind, observed.get(&e.path).unwrap_or(&Observed::Absent)) {
            (_, Observed::Absent) => (Action::Create, None),
            (_, Observed::Blocked(why)) => (Action::Replace, Some(why.clone())),
            (
                Kind::File,
                Observed::File {
                    mode,
                    uid: u,
                    gid: g,
                    mtime,
                    sha,
                },
            ) => {
                let same = contents.get(&e.path).is_some_and(|c| sha256(c) == *sha);
                if !same {
                    (Action::Replace, Some("content differs".into()))
                } else if meta_differs(*mode, *u, *g) || *mtime != e.mtime {
                    (
                        Action::Update,
                        Some(format!("mode {mode:04o}, owner {u}:{g}")),
                    )
                } else {
                    (Action::Leave, None)
                }
            }
            (
                Kind::Dir,
                Observed::Dir {
                    mode,
                    uid: u,
                    gid: g,
                },
            ) => {
                if meta_differs(*mode, *u, *g) {
                    (
                        Action::Update,
                        Some(format!("mode {mode:04o}, owner {u}:{g}")),
                    )
                } else {
                    (Action::Leave, None)
                }
            }
            (Kind::Symlink, Observed::Link { target }) if Some(target) == e.target.as_ref() => {
                (Action::Leave, None)
            }
            (Kind::Symlink, Observed::Link { target }) => {
                (Action::Replace, Some(format!("a symlink to {target}")))
            }
            (_, o) => (
                Action::Replace,
                Some(format!(
                    "a {} is there",
                    match o {
                        Observed::File { .. } => "file",
                        Observed::Dir { .. } => "directory",
                        _ => "symlink",
                    }
                )),
            ),
        };
        out.push(Item {
            path: e.path.clone(),
            kind: e.kind.word(),
            action,
            detail,
        });
    }
    out
}

/// `to` joined with a control-relative path.
pub fn target(to: &Path, path: &str) -> PathBuf {
    to.join(path.trim_start_matches('/'))
}

/// The first ancestor of `path` below `to` that is not a real directory.
pub(super) fn blocked_ancestor(to: &Path, path: &str) -> Option<String> {
    let mut cur = to.to_path_buf();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        cur.push(p);
        match cur.symlink_metadata() {
            Err(_) => return None,
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Some(format!("{} is a symlink", cur.display()))
            }
            Ok(_) => return Some(format!("{} is not a directory", cur.display())),
        }
    }
    None
}

/// Looks at what the target directory holds at each entry's path.
pub fn observe(to: &Path, entries: &[Entry]) -> BTreeMap<String, Observed> {
    let mut out = BTreeMap::new();
    for e in entries {
        let p = target(to, &e.path);
        let o = if let Some(why) = blocked_ancestor(to, &e.path) {
            Observed::Blocked(why)
        } else {
            match p.symlink_metadata() {
                Err(_) => Observed::Absent,
                Ok(m) if m.file_type().is_symlink() => Observed::Link {
                    target: std::fs::read_link(&p)
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                },
                Ok(m) if m.is_dir() => Observed::Dir {
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                },
                Ok(m) if m.is_file() => match std::fs::read(&p) {
                    Ok(data) => Observed::File {
                        mode: m.mode() & 0o7777,
                        uid: m.uid(),
                        gid: m.gid(),
                        mtime: m.mtime(),
                        sha: sha256(&data),
                    },
                    Err(e) => Observed::Blocked(format!("cannot read it: {e}")),
                },
                Ok(_) => Observed::Blocked("a special file is there".into()),
            }
        };
        out.insert(e.path.clone(), o);
    }
    out
}

/// The `git checkout` that puts a checkout at the recorded version.
pub fn checkout_command(
    dir: &Path,
    describe: Option<&str>,
    commit: Option<&str>,
) -> Option<String> {
    // `v2.24.0-3-gabcdef0` names no ref; the commit does.
    let exact = describe.filter(|d| {
        let parts: Vec<&str> = d.rsplitn(3, '-').collect();
        !(parts.len() == 3
            && parts[0].starts_with('g')
            && parts[1].bytes().all(|b| b.is_ascii_digit()))
    });
    let what = exact.or(commit)?;
    Some(format!("git -C {} checkout {what}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of `kind` at `path` (shared with the executor's tests).
    pub(super) fn e(kind: Kind, path: &str, mode: u32) -> Entry {
        Entry {
            kind,
            mode,
            uid: 0,
            gid: 0,
            owner: None,
            group: None,
            size: 3,
            mtime: 100,
            mac: (kind == Kind::File).then(|| "a".repeat(64)),
            path: path.into(),
            target: (kind == Kind::Symlink).then(|| "/x".to_string()),
        }
    }

    #[test]
    fn plan_decides_by_content_type_and_metadata() {
        let entries = vec![
            e(Kind::Dir, "/inventory/c", 0o755),
            e(Kind::File, "/inventory/c/a", 0o600),
            e(Kind::File, "/inventory/c/b", 0o600),
            e(Kind::File, "/inventory/c/c", 0o600),
            e(Kind::File, "/inventory/c/d", 0o600),
            e(Kind::Symlink, "/inventory/c/l", 0o777),
        ];
        let contents: BTreeMap<String, Vec<u8>> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| (format!("/inventory/c/{n}"), b"abc".to_vec()))
            .collect();
        let file = |mode, data: &[u8], mtime| Observed::File {
            mode,
            uid: 0,
            gid: 0,
            mtime,
            sha: sha256(data),
        };
        let observed: BTreeMap<String, Observed> = [
            (
                "/inventory/c",
                Observed::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            ),
            ("/inventory/c/a", file(0o600, b"abc", 100)),
            ("/inventory/c/b", file(0o644, b"abc", 100)),
            ("/inventory/c/c", file(0o600, b"xyz", 100)),
            (
                "/inventory/c/l",
                Observed::Link {
                    target: "/y".into(),
                },
            ),
        ]
        .into_iter()
        .map(|(p, o)| (p.to_string(), o))
        .collect();
        let items = plan(&entries, &observed, &contents, true, &|_| (0, 0));
        let actions: Vec<Action> = items.iter().map(|i| i.action).collect();
        assert_eq!(
            actions,
            vec![
                Action::Leave,
                Action::Leave,
                Action::Update,
                Action::Replace,
                Action::Create,
                Action::Replace
            ]
        );
        // Owners only count when they can be set.
        let items = plan(&entries[1..2], &observed, &contents, true, &|_| (5, 5));
        assert_eq!(items[0].action, Action::Update);
        let items = plan(&entries[1..2], &observed, &contents, false, &|_| (5, 5));
        assert_eq!(items[0].action, Action::Leave);
    }

    #[test]
    fn checkout_of_a_tag_or_of_the_commit() {
        let d = Path::new("/k");
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            checkout_command(d, Some("v2.24.0"), Some(c)).unwrap(),
            "git -C /k checkout v2.24.0"
        );
        assert_eq!(
            checkout_command(d, Some("v2.24.0-3-g0123456"), Some(c)).unwrap(),
            format!("git -C /k checkout {c}")
        );
        assert_eq!(checkout_command(d, None, None), None);
    }
}
