//! Carrying out a restore plan on the target.

use super::plan::{owner_ids, sha256, Action, Plan};
use super::RestoreError;
use crate::paths::parent;
use crate::progress::Progress;
use crate::source::remote::Attrs;
use crate::source::Remote;
use crate::vault::manifest::Kind;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub node: String,
    pub created: usize,
    pub replaced: usize,
    pub updated: usize,
    pub left: usize,
    /// Files read back after writing whose hash matched.
    pub verified: usize,
    /// `(path, reason)` of entries that failed.
    pub errors: Vec<(String, String)>,
}

fn temp_name(path: &str) -> String {
    let dir = parent(path);
    let name = &path[path.rfind('/').map(|i| i + 1).unwrap_or(0)..];
    let nonce: u64 = rand::random();
    let dir = if dir == "/" { "" } else { dir };
    format!("{dir}/.{name}.sprayvault-{nonce:016x}")
}

/// Makes sure `dir` and its parents exist, creating missing ones as root:root 0755.
async fn ensure_dir(
    remote: &Remote,
    dir: &str,
    made: &mut BTreeSet<String>,
) -> Result<(), RestoreError> {
    if dir == "/" || made.contains(dir) {
        return Ok(());
    }
    match remote.lstat(dir).await? {
        Some(m) if m.kind == Some(Kind::Dir) => {}
        Some(_) => {
            return Err(RestoreError::Refused {
                node: remote.target.node.clone(),
                path: dir.to_string(),
                why: "exists on the target but is not a directory; move it away and run the restore again".into(),
            })
        }
        None => {
            Box::pin(ensure_dir(remote, parent(dir), made)).await?;
            remote.mkdir(dir).await?;
            remote.set_meta(dir, 0o755, 0, 0, None).await?;
        }
    }
    made.insert(dir.to_string());
    Ok(())
}

/// Refuses to write below a path the backup records as a directory when the
/// target has something else there (for example a symlink pointing elsewhere).
async fn check_ancestors(remote: &Remote, plan: &Plan, path: &str) -> Result<(), RestoreError> {
    let mut p = parent(path);
    while p != "/" {
        if plan
            .entries
            .iter()
            .any(|e| e.path == p && e.kind == Kind::Dir)
        {
            let m = remote.lstat(p).await?;
            if m.as_ref().and_then(|m| m.kind) != Some(Kind::Dir) {
                return Err(RestoreError::Refused {
                    node: remote.target.node.clone(),
                    path: path.to_string(),
                    why: format!("{p} is not a directory on the target (a symlink?); refusing to write through it"),
                });
            }
        }
        p = parent(p);
    }
    Ok(())
}

async fn restore_entry(
    remote: &Remote,
    plan: &Plan,
    idx: usize,
    made: &mut BTreeSet<String>,
) -> Result<bool, RestoreError> {
    let e = &plan.entries[idx];
    let item = &plan.items[idx];
    let (uid, gid) = owner_ids(e, &remote.accounts);
    ensure_dir(remote, parent(&e.path), made).await?;
    check_ancestors(remote, plan, &e.path).await?;
    match e.kind {
        Kind::Dir => {
            if item.action == Action::Create {
                remote.mkdir(&e.path).await?;
            }
            made.insert(e.path.clone());
            // Mode, owner and time of directories are set after their content.
            Ok(false)
        }
        Kind::File => {
            let data = &plan.contents[&e.path];
            // An update (same content, other metadata) is written anew too:
            // metadata goes on the new file's handle, never through a path
            // that a swapped-in symlink could redirect.
            let attrs = Attrs {
                mode: e.mode,
                uid,
                gid,
                mtime: Some(e.mtime),
            };
            remote.write_private(&e.path, data, attrs).await?;
            if item.action == Action::Update {
                return Ok(false);
            }
            let back = remote.read(&e.path).await?;
            if sha256(&back) != sha256(data) {
                return Err(RestoreError::Refused {
                    node: remote.target.node.clone(),
                    path: e.path.clone(),
                    why:
                        "the file read back differs from what was written; check the target's disk"
                            .into(),
                });
            }
            Ok(true)
        }
        Kind::Symlink => {
            let target = e.target.as_deref().expect("manifest links have targets");
            if item.action == Action::Create {
                remote.symlink(target, &e.path).await?;
            } else {
                let tmp = temp_name(&e.path);
                remote.symlink(target, &tmp).await?;
                if let Err(err) = remote.rename(&tmp, &e.path).await {
                    let _ = remote.remove_file(&tmp).await;
                    return Err(err.into());
                }
            }
            Ok(false)
        }
    }
}

/// Applies `plan` on `remote`. Entries are written in path order, so a
/// directory exists before its content; directory metadata is applied last.
pub async fn apply(
    plan: &Plan,
    remote: &Remote,
    progress: &dyn Progress,
) -> Result<RestoreReport, RestoreError> {
    let mut report = RestoreReport {
        node: plan.node.clone(),
        created: 0,
        replaced: 0,
        updated: 0,
        left: 0,
        verified: 0,
        errors: vec![],
    };
    let mut made = BTreeSet::new();
    for (idx, item) in plan.items.iter().enumerate() {
        if item.action == Action::Leave {
            report.left += 1;
            continue;
        }
        match restore_entry(remote, plan, idx, &mut made).await {
            Ok(verified) => {
                report.verified += usize::from(verified);
                match item.action {
                    Action::Create => report.created += 1,
                    Action::Replace => report.replaced += 1,
                    Action::Update => report.updated += 1,
                    Action::Leave => {}
                }
                progress.info(&format!("{} {}", item.action.word(), item.path));
            }
            Err(err) => {
                progress.warn(&err.to_string());
                report.errors.push((item.path.clone(), err.to_string()));
            }
        }
    }
    for (idx, e) in plan.entries.iter().enumerate().rev() {
        if e.kind == Kind::Dir
            && plan.items[idx].action != Action::Leave
            && !report.errors.iter().any(|(p, _)| p == &e.path)
        {
            let (uid, gid) = owner_ids(e, &remote.accounts);
            if let Err(err) = remote
                .set_meta(&e.path, e.mode, uid, gid, Some(e.mtime))
                .await
            {
                report.errors.push((e.path.clone(), err.to_string()));
            }
        }
    }
    Ok(report)
}
