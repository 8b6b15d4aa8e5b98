//! Carrying out a restore plan on the target.

use super::hold::{decide, Hold};
use super::plan::{owner_ids, sha256, Action, Plan};
use super::RestoreError;
use crate::paths::parent;
use crate::progress::Progress;
use crate::source::accounts::Accounts;
use crate::source::remote::{components, root_only, Attrs};
use crate::source::NodeFs;
use crate::vault::manifest::{Entry, Kind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use zeroize::Zeroizing;

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
    /// Set when certificates under [`CA_DIR`] were restored: what running
    /// `update-ca-certificates` did, so the node trusts the cluster CAs again.
    pub trust_store: Option<TrustStore>,
    /// Set when a step did not finish within its deadline: the restore
    /// stopped there (the node is frozen or unreachable), this says where.
    pub cut_off: Option<String>,
}

/// Where Debian and Ubuntu keep local CA certificates (kubespray puts the
/// cluster CAs there).
pub const CA_DIR: &str = "/usr/local/share/ca-certificates";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustStore {
    Updated,
    /// `update-ca-certificates` failed or is missing; the reason.
    NotUpdated(String),
}

/// Does the restore change anything under [`CA_DIR`]?
pub fn touches_ca_dir(items: &[super::PlanItem]) -> bool {
    items.iter().any(|i| {
        i.action != Action::Leave
            && i.path
                .strip_prefix(CA_DIR)
                .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

/// Runs `update-ca-certificates` on the node.
pub async fn update_trust_store<N: NodeFs>(remote: &N) -> TrustStore {
    match remote
        .run_privileged(
            "command -v update-ca-certificates >/dev/null 2>&1 || { echo 'update-ca-certificates is not installed (package ca-certificates)' >&2; exit 1; }; update-ca-certificates >/dev/null",
            "updating the trust store",
        )
        .await
    {
        Ok(_) => TrustStore::Updated,
        Err(e) => TrustStore::NotUpdated(format!(
            "{e}; the node does not trust the restored CAs in {CA_DIR} until `update-ca-certificates` runs there"
        )),
    }
}

fn temp_name(path: &str) -> String {
    let dir = parent(path);
    let name = &path[path.rfind('/').map(|i| i + 1).unwrap_or(0)..];
    let nonce: u64 = rand::random();
    let dir = if dir == "/" { "" } else { dir };
    format!("{dir}/.{name}.sprayvault-{nonce:016x}")
}

/// The mode, uid and gid a directory the restore creates gets: what the
/// backup recorded for it, else root:root 0755.
pub fn new_dir_meta(entries: &[Entry], dir: &str, accounts: &Accounts) -> (u32, u32, u32) {
    match recorded_dir(entries, dir) {
        Some(e) => {
            let (uid, gid) = owner_ids(e, accounts);
            (e.mode, uid, gid)
        }
        None => (0o755, 0, 0),
    }
}

/// The entry the backup recorded for directory `dir`, if any.
fn recorded_dir<'a>(entries: &'a [Entry], dir: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .find(|e| e.path == dir && e.kind == Kind::Dir)
}

/// Directories held under root for this restore (see [`super::hold`]),
/// each with the entry whose owner and mode it gets back at the end.
#[derive(Default)]
struct Held(BTreeMap<String, Entry>);

/// Does a directory recorded as `e` need holding while the restore writes
/// below it (its owner is not root, or group or other may write)?
fn needs_holding(e: &Entry, accounts: &Accounts) -> bool {
    owner_ids(e, accounts).0 != 0 || e.mode & 0o022 != 0
}

/// Takes, top-down, each existing directory above `path` that the backup
/// recorded and that its recorded account owns (see [`super::hold`]), so that
/// only root can change anything between `/` and `path`'s directory. Stops at
/// the first directory that does not exist yet ([`ensure_dir`] makes it held).
async fn hold_above<N: NodeFs>(
    remote: &N,
    entries: &[Entry],
    path: &str,
    held: &mut Held,
) -> Result<(), RestoreError> {
    for dir in components(parent(path)) {
        if held.0.contains_key(&dir) {
            continue;
        }
        let Some(rec) = recorded_dir(entries, &dir) else {
            continue;
        };
        let Some(now) = remote.lstat(&dir).await? else {
            return Ok(());
        };
        let Hold::Take { mode, gid } = decide(&now, Some(owner_ids(rec, remote.accounts()).0))
        else {
            continue;
        };
        // Recorded before it is taken: whatever happens next, the end of the
        // restore gives it back.
        held.0.insert(dir.clone(), rec.clone());
        remote.set_meta(&dir, mode, 0, gid, None).await?;
        if !remote.lstat(&dir).await?.as_ref().is_some_and(root_only) {
            return Err(RestoreError::Refused {
                node: remote.node().to_string(),
                path: dir,
                why: "is not root-only after taking it for the restore; refusing to write below it"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Makes sure `dir` and its parents exist, creating missing ones with the
/// mode and owner the backup recorded for them (root:root 0755 for
/// directories it did not record), so that nothing is ever written into a
/// directory more open than the node had it, even by a restore cut short.
async fn ensure_dir<N: NodeFs>(
    remote: &N,
    entries: &[Entry],
    dir: &str,
    made: &mut BTreeSet<String>,
    held: &mut Held,
) -> Result<(), RestoreError> {
    if dir == "/" || made.contains(dir) {
        return Ok(());
    }
    match remote.lstat(dir).await? {
        Some(m) if m.kind == Some(Kind::Dir) => {}
        Some(_) => {
            return Err(RestoreError::Refused {
                node: remote.node().to_string(),
                path: dir.to_string(),
                why: "exists on the target but is not a directory; move it away and run the restore again".into(),
            })
        }
        None => {
            Box::pin(ensure_dir(remote, entries, parent(dir), made, held)).await?;
            make_dir(remote, entries, dir, held).await?;
        }
    }
    made.insert(dir.to_string());
    Ok(())
}

/// Creates `dir`. One the backup recorded as another account's (or open to
/// group or other) stays root's and private, held until the end of the
/// restore gives it its recorded owner and mode.
async fn make_dir<N: NodeFs>(
    remote: &N,
    entries: &[Entry],
    dir: &str,
    held: &mut Held,
) -> Result<(), RestoreError> {
    remote.mkdir(dir).await?;
    if let Some(rec) = recorded_dir(entries, dir).filter(|e| needs_holding(e, remote.accounts())) {
        held.0.insert(dir.to_string(), rec.clone());
        return Ok(remote.set_meta(dir, 0o700, 0, 0, None).await?);
    }
    let (mode, uid, gid) = new_dir_meta(entries, dir, remote.accounts());
    remote.set_meta(dir, mode, uid, gid, None).await?;
    Ok(())
}

/// Writes one file as the backup recorded it: privately under a temporary
/// name (see [`crate::source::Remote::write_private`]), its mode, owner and time set on the
/// open handle, renamed into place, and read back to check its hash.
pub async fn put_file<N: NodeFs>(remote: &N, e: &Entry, data: &[u8]) -> Result<(), RestoreError> {
    write_file(remote, e, data).await?;
    read_back(remote, e, data).await
}

/// Writes `data` as `e` records it. An update (same content, other
/// metadata) is written anew too: metadata goes on the new file's handle,
/// never through a path that a swapped-in symlink could redirect.
async fn write_file<N: NodeFs>(remote: &N, e: &Entry, data: &[u8]) -> Result<(), RestoreError> {
    let (uid, gid) = owner_ids(e, remote.accounts());
    let attrs = Attrs {
        mode: e.mode,
        uid,
        gid,
        mtime: Some(e.mtime),
    };
    remote.write_private(&e.path, data, attrs).await?;
    Ok(())
}

async fn read_back<N: NodeFs>(remote: &N, e: &Entry, data: &[u8]) -> Result<(), RestoreError> {
    let back = Zeroizing::new(remote.read(&e.path, data.len() as u64).await?);
    if sha256(&back) != sha256(data) {
        return Err(RestoreError::Refused {
            node: remote.node().to_string(),
            path: e.path.clone(),
            why: "the file read back differs from what was written; check the target's disk".into(),
        });
    }
    Ok(())
}

/// Refuses to write below a path the backup records as a directory when the
/// target has something else there (for example a symlink pointing elsewhere).
async fn check_ancestors<N: NodeFs>(
    remote: &N,
    plan: &Plan,
    path: &str,
) -> Result<(), RestoreError> {
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
                    node: remote.node().to_string(),
                    path: path.to_string(),
                    why: format!("{p} is not a directory on the target (a symlink?); refusing to write through it"),
                });
            }
        }
        p = parent(p);
    }
    Ok(())
}

async fn restore_entry<N: NodeFs>(
    remote: &N,
    plan: &Plan,
    idx: usize,
    made: &mut BTreeSet<String>,
    held: &mut Held,
) -> Result<bool, RestoreError> {
    let e = &plan.entries[idx];
    let item = &plan.items[idx];
    hold_above(remote, &plan.entries, &e.path, held).await?;
    ensure_dir(remote, &plan.entries, parent(&e.path), made, held).await?;
    check_ancestors(remote, plan, &e.path).await?;
    match e.kind {
        Kind::Dir => {
            if item.action == Action::Create {
                make_dir(remote, &plan.entries, &e.path, held).await?;
            }
            made.insert(e.path.clone());
            // Times of directories are set after their content.
            Ok(false)
        }
        Kind::File => {
            write_file(remote, e, &plan.contents[&e.path]).await?;
            if item.action == Action::Update {
                return Ok(false);
            }
            read_back(remote, e, &plan.contents[&e.path]).await?;
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
pub async fn apply<N: NodeFs>(
    plan: &Plan,
    remote: &N,
    progress: &dyn Progress,
) -> Result<RestoreReport, RestoreError> {
    apply_within(plan, remote, progress, NO_DEADLINE).await
}

/// No deadline in practice (a century).
pub const NO_DEADLINE: Duration = Duration::from_secs(100 * 365 * 86400);

/// What a step cut off at its deadline reports.
fn past(node: &str, what: &str, step: Duration) -> String {
    format!(
        "node {node}: {what} did not finish within {} s: the node is frozen or unreachable, so the restore stopped there (raise --step-timeout if it is only slow; run the restore again once the node answers)",
        step.as_secs()
    )
}

/// Like [`apply`], each step (an entry, a directory's metadata, the trust
/// store update) within `step`. Past it the restore stops: later steps
/// would wait on the same connection. The report's `cut_off` says where.
pub async fn apply_within<N: NodeFs>(
    plan: &Plan,
    remote: &N,
    progress: &dyn Progress,
    step: Duration,
) -> Result<RestoreReport, RestoreError> {
    let node = remote.node();
    let mut report = RestoreReport {
        node: plan.node.clone(),
        created: 0,
        replaced: 0,
        updated: 0,
        left: 0,
        verified: 0,
        errors: vec![],
        trust_store: None,
        cut_off: None,
    };
    let mut made = BTreeSet::new();
    let mut held = Held::default();
    for (idx, item) in plan.items.iter().enumerate() {
        if item.action == Action::Leave {
            report.left += 1;
            continue;
        }
        let work = restore_entry(remote, plan, idx, &mut made, &mut held);
        let Ok(done) = tokio::time::timeout(step, work).await else {
            let why = past(node, &format!("restoring {}", item.path), step);
            progress.warn(&why);
            report.errors.push((item.path.clone(), why.clone()));
            report.cut_off = Some(why);
            left_held(&mut report, &held);
            return Ok(report);
        };
        match done {
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
    // Directory metadata last, deepest first: the directories the plan
    // changes, and those held for the restore (given back through parents
    // still held).
    let mut last: BTreeMap<String, Entry> = held.0.clone();
    for (idx, e) in plan.entries.iter().enumerate() {
        if e.kind == Kind::Dir
            && plan.items[idx].action != Action::Leave
            && !report.errors.iter().any(|(p, _)| p == &e.path)
        {
            last.insert(e.path.clone(), e.clone());
        }
    }
    let mut given = BTreeSet::new();
    for (path, e) in last.iter().rev() {
        let path = path.as_str();
        let (uid, gid) = owner_ids(e, remote.accounts());
        let set = remote.set_meta(path, e.mode, uid, gid, Some(e.mtime));
        match tokio::time::timeout(step, set).await {
            Ok(Ok(())) => {
                given.insert(path.to_string());
            }
            Ok(Err(err)) => report.errors.push((path.to_string(), err.to_string())),
            Err(_) => {
                let why = past(node, &format!("setting the metadata of {path}"), step);
                progress.warn(&why);
                report.errors.push((path.to_string(), why.clone()));
                report.cut_off = Some(why);
                held.0.retain(|p, _| !given.contains(p) && p != path);
                left_held(&mut report, &held);
                return Ok(report);
            }
        }
    }
    if touches_ca_dir(&plan.items) {
        let t = match tokio::time::timeout(step, update_trust_store(remote)).await {
            Ok(t) => t,
            Err(_) => {
                let why = past(node, "updating the trust store", step);
                report.cut_off = Some(why.clone());
                TrustStore::NotUpdated(why)
            }
        };
        match &t {
            TrustStore::Updated => {
                progress.info("updated the trust store (update-ca-certificates)")
            }
            TrustStore::NotUpdated(why) => progress.warn(&format!("node {}: {why}", plan.node)),
        }
        report.trust_store = Some(t);
    }
    Ok(report)
}

/// A restore cut off before it gave held directories back leaves them
/// root-owned: each is named, with what sets its owner again.
fn left_held(report: &mut RestoreReport, held: &Held) {
    for (path, e) in held.0.iter().rev() {
        report.errors.push((
            path.clone(),
            format!(
                "left root-owned (held for the restore, recorded {}:{} {:04o}); the next restore or kubespray's next run sets its owner",
                e.owner.as_deref().unwrap_or("?"),
                e.group.as_deref().unwrap_or("?"),
                e.mode & 0o7777
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::PlanItem;

    fn dir(path: &str, mode: u32, owner: &str, uid: u32) -> Entry {
        Entry {
            kind: Kind::Dir,
            mode,
            uid,
            gid: 0,
            owner: Some(owner.into()),
            group: Some("root".into()),
            size: 0,
            mtime: 0,
            mac: None,
            path: path.into(),
            target: None,
        }
    }

    #[test]
    fn missing_parent_directories_get_the_recorded_owner_and_mode_not_root_0755() {
        let accounts = Accounts::from_files(
            "root:x:0:0::/root:/bin/sh\netcd:x:20012:20012::/:/sbin/nologin\n",
            "root:x:0:\netcd:x:20012:\n",
        );
        // Recorded with another uid on the old machine: the name wins.
        let entries = vec![dir("/etc/ssl/etcd/ssl", 0o700, "etcd", 10012)];
        assert_eq!(
            new_dir_meta(&entries, "/etc/ssl/etcd/ssl", &accounts),
            (0o700, 20012, 0)
        );
        assert_eq!(
            new_dir_meta(&entries, "/etc/ssl/etcd", &accounts),
            (0o755, 0, 0)
        );
    }

    #[test]
    fn the_trust_store_is_updated_only_when_ca_certificates_were_restored() {
        let item = |path: &str, action| PlanItem {
            path: path.into(),
            kind: "file",
            action,
            want: String::new(),
            detail: None,
        };
        assert!(touches_ca_dir(&[item(
            "/usr/local/share/ca-certificates/etcd-ca.crt",
            Action::Create
        )]));
        assert!(!touches_ca_dir(&[item(
            "/usr/local/share/ca-certificates/etcd-ca.crt",
            Action::Leave
        )]));
        assert!(!touches_ca_dir(&[item(
            "/usr/local/share/ca-certificates-old/x.crt",
            Action::Create
        )]));
    }
}
