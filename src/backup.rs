//! The nightly backup: read every selected node in parallel, then write one
//! commit holding every node's state. Its stages: gather (the nodes, and the
//! etcd snapshot alongside), decide ([`merge::plan`], pure), store (the
//! content through the run's [`Session`]), then the control host, the fact
//! cache, and the commit.
//!
//! Invariants: nothing is encrypted twice (content already in the parent
//! commit is found by its keyed hash and its blob reused); a node that cannot
//! be read keeps its previous state; the branch moves only after every object
//! of the new commit is written.

use crate::inventory::{Inventory, InventoryError};
use crate::paths::check_node_name;
use crate::progress::Progress;
use crate::source::content::Budget;
use crate::source::walk::{read_node, Found, Limits, NodeScan, BUDGET_MAX};
use crate::source::{Remote, SourceError, SshOptions, Target};
use crate::vault::control::ControlWrite;
use crate::vault::manifest::Entry;
use crate::vault::message::{EntryError, EtcdOutcome, Outcome, RunRecord, Subject};
use crate::vault::session::Session;
use crate::vault::{now_rfc3339, NodeWrite, Vault, VaultError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

pub(crate) mod content;
pub(crate) mod merge;

use content::{Contents, Kept};

/// The plaintext reason of an entry that could not be read (the detail is
/// encrypted, vault-layout Section 11).
const UNREADABLE: &str = "could not be read";

/// The file the etcd snapshot needs from its member.
const ETCD_ENV: &str = "/etc/etcd.env";

/// KiB of file content held at once while the nodes are read, all nodes
/// together (each file takes what it holds plus one piece in flight).
const MEMORY_BUDGET_KIB: usize = 32 << 10;
const _: () = assert!(MEMORY_BUDGET_KIB >= BUDGET_MAX as usize);

#[derive(Debug, Error)]
pub enum BackupError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("inventory host {0}")]
    BadHost(String),
    #[error("no node could be read, nothing was committed:\n{0}")]
    AllFailed(String),
}

impl crate::error::Classify for BackupError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            BackupError::Vault(v) => v.class(),
            BackupError::Inventory(i) => i.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}

pub struct BackupOptions {
    pub limit: Option<String>,
    pub ssh: SshOptions,
    /// Nodes read at the same time.
    pub jobs: usize,
    pub lock_wait: Duration,
    /// Ansible's fact cache on this host, if configured.
    pub facts: Option<crate::facts::config::FactCache>,
    /// Take an etcd snapshot from a member of the `etcd` group.
    pub etcd_snapshot: bool,
    /// The most bytes the snapshot stream may carry (None: 4 times the
    /// last snapshot; see `etcd::stream_limit`).
    pub etcd_snapshot_limit: Option<u64>,
    /// Record the control host's kubespray directory, looked for as these say.
    pub control: Option<crate::control::ControlOptions>,
    /// How long one node may take, connection and reading (and the etcd
    /// snapshot) each; a node past it is cut off and fails.
    pub node_timeout: Duration,
    /// Files larger than this many bytes are per-file errors, never read.
    pub max_file_size: u64,
    /// How long a node's SFTP server may answer nothing while a file's open
    /// waits: past it, the file is a per-file error (a FIFO swapped in) and
    /// the node is connected again.
    pub stall_timeout: Duration,
    /// Build on a newest commit this host did not sign: a backup host
    /// rebuilt from the off-site copy, whose old signing key is lost.
    pub adopt_history: bool,
}

/// What happened to one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub status: Outcome,
    pub reason: Option<String>,
    pub entries: usize,
    pub files: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub errors: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    pub commit: String,
    pub nodes: Vec<NodeReport>,
    pub new_blobs: usize,
    pub bytes_added: u64,
    pub partial: bool,
    /// The soonest notAfter of the certificates read in this run.
    pub soonest_cert_expiry: Option<i64>,
    /// What happened to the Ansible fact cache, when one is configured.
    pub facts: Option<crate::facts::FactsRead>,
    /// The etcd snapshot of this run, or why there is none.
    pub etcd: Option<Result<crate::etcd::SnapshotReport, String>>,
    /// What was recorded of the control host, when it was looked for.
    pub control: Option<crate::control::ControlReport>,
}

impl BackupReport {
    /// `3/3 nodes, 41 files, 2 changed`, counting the nodes this run tried.
    pub fn counts(&self) -> String {
        let ran: Vec<&NodeReport> = self
            .nodes
            .iter()
            .filter(|n| n.status != Outcome::Carried)
            .collect();
        let ok = ran.iter().filter(|n| n.status == Outcome::Ok).count();
        let files: usize = ran.iter().map(|n| n.files).sum();
        let changed: usize = ran.iter().map(|n| n.added + n.changed + n.removed).sum();
        format!("{ok}/{} nodes, {files} files, {changed} changed", ran.len())
    }

    /// The run's one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{}, commit {}",
            self.counts(),
            &self.commit[..self.commit.len().min(10)]
        )
    }
}

pub async fn run(
    vault: &Vault,
    inventory: &Inventory,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    let started = now_rfc3339();
    let hosts = inventory.select(opts.limit.as_deref())?;
    for h in &hosts {
        check_node_name(&h.name).map_err(|e| BackupError::BadHost(e.to_string()))?;
    }
    let _lock = vault.lock(opts.lock_wait)?;
    // A run that fails leaves the vault as it found it (vault::mark).
    let mark = vault.mark()?;
    let result = run_locked(vault, inventory, hosts, opts, progress, started).await;
    match result {
        Err(e) => {
            let wrote = vault.discard_since(&mark);
            match e {
                BackupError::Vault(v) if v.is_disk_full() => Err(VaultError::DiskFull {
                    dir: vault.dir().to_path_buf(),
                    what: crate::vault::removed_what(wrote),
                }
                .into()),
                e => Err(e),
            }
        }
        ok => ok,
    }
}

async fn run_locked(
    vault: &Vault,
    inventory: &Inventory,
    hosts: Vec<&crate::inventory::Host>,
    opts: &BackupOptions,
    progress: &dyn Progress,
    started: String,
) -> Result<BackupReport, BackupError> {
    let parent = vault.head()?;
    let previous = vault.backup(parent)?;
    let mut session = Session::new(vault, &previous)?;
    if !opts.adopt_history {
        vault.check_ours(parent, previous.config.format)?;
    }
    // Upgrading a format 1 vault: its snapshots were written unsigned.
    let signed = if previous.config.format < 2 {
        vault.sign_unsigned_snapshots()?
    } else {
        vec![]
    };
    if !signed.is_empty() {
        progress.info(&format!(
            "signed {} snapshot(s) written before snapshots were signed: {}",
            signed.len(),
            signed.join(", ")
        ));
    }

    // Gather: the nodes, and the etcd snapshot, which starts as soon as the
    // first member has been read (it needs that member's etcd.env) while the
    // other nodes are read. Reading needs no session; the snapshot has it.
    let members: Vec<Target> = hosts
        .iter()
        .filter(|h| opts.etcd_snapshot && h.is_etcd())
        .map(|h| Target::from_host(h))
        .collect();
    let config = session.config().clone();
    let contents = Contents {
        blobs: session.blobs(),
        key: session.key().clone(),
        keep: &[ETCD_ENV],
    };
    let (read_tx, read_rx) = tokio::sync::mpsc::unbounded_channel();
    let (reads, snapshot) = tokio::join!(
        read_all(
            hosts.iter().map(|h| Target::from_host(h)).collect(),
            &config,
            &contents,
            opts,
            progress,
            read_tx,
        ),
        take_snapshot(&mut session, &members, read_rx, opts, progress)
    );
    let snapshot = snapshot?;

    // Decide, then store what was decided.
    let plans = merge::plan(&summaries(&reads), &previous.nodes);
    let mut record = RunRecord::new("backup", String::new());
    record.started = Some(started);
    let stored = store_nodes(&mut session, &reads, plans, &mut record)?;
    // Per-file notes go to the run's encrypted details and to stderr.
    for (node, read) in &reads {
        for (path, note) in read.iter().flat_map(|r| &r.notes) {
            record.detail(Subject::Entry(node, path), note);
            progress.warn(&format!("{node}: {}: {note}", crate::term::escape(path)));
        }
    }
    if session.blobs().disk_full() {
        return Err(VaultError::DiskFull {
            dir: vault.dir().to_path_buf(),
            what: String::new(),
        }
        .into());
    }
    if !hosts.is_empty() && stored.failures.len() == hosts.len() {
        return Err(BackupError::AllFailed(stored.failures.join("\n")));
    }
    let (control, control_report) = match &opts.control {
        Some(c) => {
            let previous_control = vault.control(parent)?;
            let (w, r) =
                crate::control::collect(c, previous_control.as_ref(), &contents.key, &mut session)?;
            record.control = Some(r.trailer());
            if let Some(why) = r.detail() {
                record.detail(Subject::Control, why);
            }
            (w, Some(r))
        }
        None => (ControlWrite::Carry, None),
    };
    record.finished = Some(now_rfc3339());
    let partial = record.is_partial();
    let mut report = BackupReport {
        commit: String::new(),
        nodes: stored.reports,
        new_blobs: 0,
        bytes_added: 0,
        partial,
        soonest_cert_expiry: stored.soonest,
        facts: None,
        etcd: None,
        control: control_report,
    };
    if let Some(snap) = snapshot {
        record_snapshot(snap, &mut record, &mut report);
    }
    record.summary = format!("backup: {}", report.counts());
    let facts = match &opts.facts {
        Some(cache) => {
            let hosts: Vec<String> = inventory.hosts.keys().cloned().collect();
            let (facts, read) = crate::facts::collect(&mut session, cache, &hosts, &previous)?;
            for (host, why) in &read.errors {
                let path = cache.file(host).display().to_string();
                record.detail(Subject::Entry(host, &path), why);
                record.errors.push(EntryError::new(host, &path, UNREADABLE));
            }
            report.partial |= !read.errors.is_empty();
            report.facts = Some(read);
            facts
        }
        None => previous.facts_with_blobs(),
    };
    // Every new object counts: node and control files, the snapshot's
    // chunks, fact blobs.
    let counts = session.counts();
    report.new_blobs = counts.new_blobs;
    report.bytes_added = counts.bytes_added;
    let commit = session.commit_backup(stored.writes, &facts, control, &record)?;
    report.commit = commit.to_string();
    Ok(report)
}

/// What reading each node gave, without contents: what the merge decides on.
fn summaries(
    reads: &BTreeMap<String, Result<NodeRead, SourceError>>,
) -> BTreeMap<String, merge::Read> {
    reads
        .iter()
        .map(|(node, result)| {
            let read = match result {
                Ok(r) => merge::Read::Entries {
                    entries: r.entries.iter().map(|e| e.entry.clone()).collect(),
                    errors: r.errors.clone(),
                },
                Err(e) => merge::Read::Failed {
                    kind: e.kind().into(),
                },
            };
            (node.clone(), read)
        })
        .collect()
}

/// What storing the nodes gave.
struct Stored {
    writes: BTreeMap<String, NodeWrite>,
    reports: Vec<NodeReport>,
    /// The message of each node that could not be read.
    failures: Vec<String>,
    /// The soonest notAfter of the certificates read.
    soonest: Option<i64>,
}

/// Carries out the plans: the content read now goes through the session,
/// carried files keep their blobs, and the record gets every node's status
/// and failures.
fn store_nodes(
    session: &mut Session<'_>,
    reads: &BTreeMap<String, Result<NodeRead, SourceError>>,
    plans: BTreeMap<String, merge::NodePlan>,
    record: &mut RunRecord,
) -> Result<Stored, VaultError> {
    let mut out = Stored {
        writes: BTreeMap::new(),
        reports: Vec::new(),
        failures: Vec::new(),
        soonest: None,
    };
    for (node, plan) in plans {
        match reads.get(&node) {
            Some(Ok(read)) => {
                for (path, why) in &read.errors {
                    record.errors.push(EntryError::new(&node, path, UNREADABLE));
                    record.detail(Subject::Entry(&node, path), why);
                }
            }
            Some(Err(e)) => {
                record.detail(Subject::Node(&node), &e.reason());
                out.failures.push(e.to_string());
            }
            None => {}
        }
        let write = match plan.write {
            Some(merge::Planned::Carry(tree)) => Some(NodeWrite::Carry(tree)),
            Some(merge::Planned::New { manifest, carried }) => {
                let mut blobs = carried;
                if let Some(Ok(read)) = reads.get(&node) {
                    for r in &read.entries {
                        if let Some(kept) = &r.kept {
                            for &t in &kept.expiries {
                                out.soonest = Some(out.soonest.map_or(t, |s| s.min(t)));
                            }
                            session.adopt(&kept.mac, kept.blob)?;
                            blobs.insert(r.entry.path.clone(), kept.blob);
                        }
                    }
                }
                Some(NodeWrite::New { manifest, blobs })
            }
            None => None,
        };
        if let Some(w) = write {
            out.writes.insert(node.clone(), w);
        }
        record.nodes.insert(node, plan.status);
        out.reports.push(plan.report);
    }
    Ok(out)
}

/// Takes the etcd snapshot through `session` from the first member that
/// gives one, once the first member's read ended (as `reads` tells). None: no snapshot was asked for, or no node could be
/// read (then the run commits nothing, not even a snapshot).
async fn take_snapshot(
    session: &mut Session<'_>,
    members: &[Target],
    mut reads: tokio::sync::mpsc::UnboundedReceiver<(String, bool)>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<Option<Result<crate::etcd::SnapshotReport, Vec<String>>>, VaultError> {
    let Some(first) = members.first() else {
        return Ok(None);
    };
    // If that member could not be read, wait for every node.
    let (mut any_read, mut first_read) = (false, false);
    while let Some((node, read)) = reads.recv().await {
        any_read |= read;
        first_read |= read && node == first.node;
        if first_read {
            break;
        }
    }
    if !any_read {
        return Ok(None);
    }
    crate::etcd::announce(members, progress);
    let snap = crate::etcd::snapshot(session, members, &opts.ssh, opts.etcd_snapshot_limit);
    match tokio::time::timeout(opts.node_timeout, snap).await {
        Ok(s) => s.map(Some),
        Err(_) => Ok(Some(Err(vec![format!(
            "the etcd snapshot did not end within {} s; cut off (raise --node-timeout if the cluster is only slow)",
            opts.node_timeout.as_secs()
        )]))),
    }
}

/// Records the snapshot's outcome in the commit's record and the report.
fn record_snapshot(
    snap: Result<crate::etcd::SnapshotReport, Vec<String>>,
    record: &mut RunRecord,
    report: &mut BackupReport,
) {
    match snap {
        Ok(s) => {
            record.etcd = Some(EtcdOutcome::Taken {
                reference: s.reference.clone(),
                member: s.member.clone(),
                node: s.node.clone(),
                revision: s.revision,
                keys: s.keys,
                size: s.size,
            });
            // An unreadable snapshot ref is skipped, named, and makes
            // the run partial; everything else is committed.
            for (name, _) in &s.skipped {
                report.partial = true;
                record.errors.push(EntryError::new(
                    &s.node,
                    name,
                    "unreadable snapshot ref, skipped",
                ));
            }
            report.etcd = Some(Ok(s));
        }
        Err(reasons) => {
            let why = reasons.join("; ");
            record.etcd = Some(EtcdOutcome::Failed("no member gave a snapshot".into()));
            record.detail(Subject::Etcd, &why);
            report.partial = true;
            report.etcd = Some(Err(why));
        }
    }
}

/// An entry read from a node, as the vault records it, with what was kept
/// of its content for regular files (stored already; see `content`).
pub struct ReadEntry {
    pub entry: Entry,
    pub kept: Option<Kept>,
}

/// Everything read from one node, as vault entries.
#[derive(Default)]
pub struct NodeRead {
    pub entries: Vec<ReadEntry>,
    /// `(path, reason)` of entries that could not be read.
    pub errors: Vec<(String, String)>,
    /// `(path, note)` of entries recorded with less than the node has.
    pub notes: Vec<(String, String)>,
}

/// The vault's entries for what a node has: its metadata as recorded, and
/// each file's keyed hash (vault-layout, Sections 8 and 10).
pub fn entries_of(scan: NodeScan<Kept>) -> NodeRead {
    let entries = scan
        .found
        .into_iter()
        .map(|f: Found<Kept>| ReadEntry {
            entry: Entry {
                kind: f.kind,
                mode: f.meta.mode,
                uid: f.meta.uid,
                gid: f.meta.gid,
                owner: f.owner,
                group: f.group,
                size: f.meta.size,
                mtime: f.meta.mtime,
                mac: f.kept.as_ref().map(|k| k.mac.clone()),
                path: f.path,
                target: f.target,
            },
            kept: f.kept,
        })
        .collect();
    NodeRead {
        entries,
        errors: scan.errors,
        notes: scan.notes,
    }
}

/// Reads the nodes with at most `opts.jobs` connections at a time.
async fn read_all(
    targets: Vec<Target>,
    config: &crate::vault::config::VaultConfig,
    contents: &Contents,
    opts: &BackupOptions,
    progress: &dyn Progress,
    node_read: tokio::sync::mpsc::UnboundedSender<(String, bool)>,
) -> BTreeMap<String, Result<NodeRead, SourceError>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let budget = Arc::new(Budget::new(MEMORY_BUDGET_KIB));
    let mut set = tokio::task::JoinSet::new();
    for t in targets {
        progress.start(&format!("{} (ssh {})", t.node, t.display()));
        let sem = Arc::clone(&sem);
        let config = config.clone();
        let contents = contents.clone();
        let budget = Arc::clone(&budget);
        let ssh = opts.ssh.clone();
        let node_timeout = opts.node_timeout;
        let limits = Limits {
            max_file_size: opts.max_file_size,
            stall: opts.stall_timeout,
        };
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let work = async {
                let mut remote = Remote::connect_read_only(&t, &ssh).await?;
                let scan = read_node(&mut remote, &config, &limits, &contents, &budget).await;
                remote.close().await;
                scan.map(entries_of)
            };
            // Dropping the work on the deadline kills its ssh process.
            let result = match tokio::time::timeout(node_timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(SourceError::Deadline {
                    node: t.node.clone(),
                    what: "reading its files".into(),
                    secs: node_timeout.as_secs(),
                }),
            };
            (t.node, result)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((node, result)) => {
                match &result {
                    Ok(r) if r.errors.is_empty() => {
                        progress.finish(&node, &format!("{} entries", r.entries.len()))
                    }
                    Ok(r) => progress.warn(&format!(
                        "{node}: {} entries, {} could not be read",
                        r.entries.len(),
                        r.errors.len()
                    )),
                    Err(e) => progress.warn(&e.to_string()),
                }
                // Nobody listens when no snapshot is taken.
                let _ = node_read.send((node.clone(), result.is_ok()));
                out.insert(node, result);
            }
            Err(e) => progress.warn(&format!("a node task failed: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Meta;
    use crate::vault::manifest::Kind;

    fn found(path: &str, kind: Kind, kept: Option<Kept>, target: Option<&str>) -> Found<Kept> {
        Found {
            path: path.into(),
            kind,
            meta: Meta {
                kind: Some(kind),
                mode: 0o640,
                uid: 998,
                gid: 996,
                size: if kept.is_some() { 4 } else { 0 },
                mtime: 1_700_000_000,
            },
            owner: Some("kube".into()),
            group: None,
            target: target.map(str::to_string),
            kept,
        }
    }

    #[test]
    fn a_nodes_scan_becomes_entries_with_keyed_hashes_of_file_contents_only() {
        let blob = git2::Oid::hash_object(git2::ObjectType::Blob, b"ciphertext").unwrap();
        let kept = Kept {
            mac: "ab".repeat(32),
            blob,
            expiries: vec![],
            text: None,
        };
        let scan = NodeScan {
            found: vec![
                found("/etc/kubernetes/ssl", Kind::Dir, None, None),
                found("/etc/kubernetes/ssl/ca.crt", Kind::File, Some(kept), None),
                found(
                    "/etc/kubernetes/pki",
                    Kind::Symlink,
                    None,
                    Some("/etc/kubernetes/ssl"),
                ),
            ],
            errors: vec![("/etc/x".into(), "Permission denied".into())],
            notes: vec![],
        };
        let read = entries_of(scan);
        assert_eq!(
            read.errors,
            [("/etc/x".to_string(), "Permission denied".to_string())]
        );
        let [dir, file, link] = &read.entries[..] else {
            panic!("three entries");
        };
        assert_eq!((dir.entry.mac.as_ref(), dir.kept.is_none()), (None, true));
        assert_eq!(file.entry.mac, Some("ab".repeat(32)));
        assert_eq!(file.entry.size, 4);
        assert_eq!(file.kept.as_ref().map(|k| k.blob), Some(blob));
        assert_eq!(
            (
                file.entry.owner.as_deref(),
                file.entry.group.as_deref(),
                file.entry.uid
            ),
            (Some("kube"), None, 998)
        );
        assert_eq!(link.entry.target.as_deref(), Some("/etc/kubernetes/ssl"));
        assert_eq!(link.entry.mac, None);
    }
}
