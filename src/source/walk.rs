//! Collecting what a node has at the paths the vault configuration
//! includes: directories recursively, symlinks as links (never followed).
//! What comes out is the node's own metadata and content, neutral: turning
//! it into vault entries (and their keyed hashes) is the backup's job.
//!
//! A path absent on the node is normal (workers have no `/etc/etcd.env`). An
//! entry that cannot be read becomes a per-entry error, never a reason to
//! stop reading the rest.

use super::content::{kib_for, Budget, Reader};
use super::{Remote, SourceError};
use crate::paths::{check_link_target, check_path, glob_match, parent};
use crate::vault::config::VaultConfig;
use crate::vault::manifest::Kind;
use futures_util::StreamExt;

/// One path as the node has it; `K` is what the caller's reader kept of a
/// regular file's content.
pub struct Found<K> {
    pub path: String,
    pub kind: Kind,
    /// From lstat; a symlink's mode is 0777 and its size its target's length.
    pub meta: super::Meta,
    /// The node's names for the owner and group, when it has them.
    pub owner: Option<String>,
    pub group: Option<String>,
    /// A symlink's target.
    pub target: Option<String>,
    /// What the reader kept of a regular file's content (of exactly
    /// `meta.size` bytes).
    pub kept: Option<K>,
}

/// Everything read from one node.
pub struct NodeScan<K> {
    pub found: Vec<Found<K>>,
    /// `(path, reason)` of entries that could not be read.
    pub errors: Vec<(String, String)>,
    /// `(path, note)` of entries recorded with less than the node has (an
    /// owner by id only).
    pub notes: Vec<(String, String)>,
}

/// Requests in flight on one node's SFTP channel at a time.
const IN_FLIGHT: usize = 64;

/// The most entries (and per-entry errors) one node may report: far above
/// what kubespray writes under the included paths (a few hundred), low
/// enough that a node cannot make the backup host hold what it likes.
pub const MAX_ENTRIES: usize = 100_000;

/// The most KiB one file takes from the budget: a budget of at least this
/// much never waits forever.
pub const BUDGET_MAX: u32 = 4 << 10;

impl<K> Default for NodeScan<K> {
    fn default() -> Self {
        NodeScan {
            found: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// How much of a node's files a backup reads, and how long it waits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Files larger than this many bytes are per-file errors, never read.
    pub max_file_size: u64,
    /// How long the node's SFTP server may answer nothing while an open
    /// waits before it is taken to be stuck in that open.
    pub stall: std::time::Duration,
}

/// How many times one node's server may get stuck before the node fails.
const MAX_STUCK: usize = 16;

fn stuck_reason(stall: std::time::Duration) -> String {
    format!(
        "did not open within {} s while the node's SFTP server answered nothing else: a FIFO swapped in, or a file system that hangs? skipped, never waited on, its previous record is kept; the connection was cut and opened again (the node's stuck sftp-server process stays until the open returns)",
        stall.as_secs_f64()
    )
}

/// One entry read, with its listing.
type Read<K> = (String, super::Meta, Kind, Result<Got<K>, SourceError>);

/// Reads `wanted` into `got`, up to [`IN_FLIGHT`] at a time, until all are
/// read (`None`) or the server is stuck in an open: that path. What was read
/// before it got stuck stays in `got`.
async fn read_level<R: Reader>(
    remote: &Remote,
    wanted: &[(String, super::Meta, Kind)],
    limits: &Limits,
    reader: &R,
    budget: &Budget,
    got: &mut Vec<Read<R::Kept>>,
) -> Option<String> {
    let limit = limits.max_file_size;
    let mut reads = futures_util::stream::iter(wanted.iter().cloned())
        .map(|(path, meta, kind)| async move {
            let got = match kind {
                Kind::File => {
                    let kib = kib_for(meta.size, reader.holds(meta.size.min(limit)));
                    let _held = budget
                        .acquire_many(kib.min(BUDGET_MAX))
                        .await
                        .expect("the budget is never closed");
                    let pass = reader.begin(&path, meta.size);
                    remote
                        .read_checked(&path, &meta, limit, pass)
                        .await
                        .map(Got::File)
                }
                Kind::Symlink => remote.read_link(&path).await.map(Got::Link),
                Kind::Dir => remote.list(&path).await.map(Got::Dir),
            };
            (path, meta, kind, got)
        })
        .buffer_unordered(IN_FLIGHT);
    let stuck = remote.watch().stuck(limits.stall);
    tokio::pin!(stuck);
    loop {
        tokio::select! {
            read = reads.next() => match read {
                Some(read) => got.push(read),
                None => return None,
            },
            path = &mut stuck => return Some(path),
        }
    }
}

/// What reading one entry gave.
enum Got<K> {
    File(K),
    Link(String),
    Dir(Vec<(String, super::Meta)>),
}

/// Reads every included entry of the node. Every entry of one directory
/// level is asked for at once (up to [`IN_FLIGHT`]), so a node costs a
/// round trip per level, not per file. Entries come out sorted by path.
/// Files larger than the limits allow are per-file errors, never read. Each
/// file's bytes go through a pass of `reader`, within the memory `budget`.
/// A file the node's SFTP server gets stuck opening (a FIFO swapped in) is
/// a per-file error: the connection is cut and made again, and the rest of
/// its level read on the new one.
pub async fn read_node<R: Reader>(
    remote: &mut Remote,
    config: &VaultConfig,
    limits: &Limits,
    reader: &R,
    budget: &Budget,
) -> Result<NodeScan<R::Kept>, SourceError> {
    let mut out = NodeScan::default();
    let mut stalls = 0;
    let found =
        futures_util::future::join_all(config.include.iter().map(|inc| roots_of(&*remote, inc)))
            .await;
    let mut roots: Vec<(String, super::Meta)> = Vec::new();
    for f in found {
        match f? {
            Ok(r) => roots.extend(r),
            Err(e) => out.errors.push(e),
        }
    }
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    roots.dedup_by(|a, b| a.0 == b.0);
    let mut level = roots;
    let mut seen = std::collections::BTreeSet::new();
    while !level.is_empty() {
        let mut wanted = Vec::new();
        for (path, meta) in level {
            if config.is_excluded(&path) || !seen.insert(path.clone()) {
                continue;
            }
            if let Err(e) = check_path(&path) {
                out.errors
                    .push((path.escape_debug().to_string(), e.to_string()));
                continue;
            }
            let Some(kind) = meta.kind else {
                out.errors.push((
                    path,
                    "not a regular file, directory or symlink; skipped".into(),
                ));
                continue;
            };
            wanted.push((path, meta, kind));
        }
        let mut got = Vec::new();
        while let Some(stuck) = read_level(remote, &wanted, limits, reader, budget, &mut got).await
        {
            stalls += 1;
            if stalls > MAX_STUCK {
                return Err(SourceError::Io {
                    node: remote.target.node.clone(),
                    path: stuck,
                    why: format!("the node's SFTP server got stuck in an open {MAX_STUCK} times; the node is given up (look for FIFOs or a hanging file system under its included paths)"),
                });
            }
            out.errors.push((stuck.clone(), stuck_reason(limits.stall)));
            let done: std::collections::BTreeSet<&str> =
                got.iter().map(|(p, ..)| p.as_str()).collect();
            wanted.retain(|(p, ..)| p != &stuck && !done.contains(p.as_str()));
            remote.reconnect().await?;
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        if out.found.len() + out.errors.len() + got.len() > MAX_ENTRIES {
            return Err(SourceError::Io {
                node: remote.target.node.clone(),
                path: got.first().map(|g| parent(&g.0).to_string()).unwrap_or_default(),
                why: format!("the node reports more than {MAX_ENTRIES} entries under the included paths, more than any kubespray node has; the node is given up (check it, or exclude what does not belong)"),
            });
        }
        let mut next = Vec::new();
        for (path, meta, kind, got) in got {
            let mut found = found_of(remote, &path, &meta, kind);
            if let Some(note) = remote.accounts.id_only_note(meta.uid, meta.gid) {
                out.notes.push((path.clone(), note));
            }
            match got {
                Err(e) => out.errors.push((path, reason(&e))),
                Ok(Got::File(kept)) => {
                    found.kept = Some(kept);
                    out.found.push(found);
                }
                Ok(Got::Link(t)) => match check_link_target(&t) {
                    Ok(()) => {
                        found.meta.mode = 0o777;
                        found.meta.size = t.len() as u64;
                        found.target = Some(t);
                        out.found.push(found);
                    }
                    Err(e) => out.errors.push((path, e.to_string())),
                },
                Ok(Got::Dir(children)) => {
                    out.found.push(found);
                    for (name, m) in children {
                        next.push((format!("{path}/{name}"), m));
                    }
                }
            }
        }
        level = next;
    }
    out.found.sort_by(|a, b| a.path.cmp(&b.path));
    out.errors.sort();
    Ok(out)
}

/// The entries one include names: itself, or for a glob the matching
/// children of its directory. `Err` inside for a per-entry error; outside
/// when the connection failed.
async fn roots_of(
    remote: &Remote,
    inc: &str,
) -> Result<Result<Vec<(String, super::Meta)>, (String, String)>, SourceError> {
    if !inc.contains('*') {
        return Ok(match remote.lstat(inc).await {
            Ok(Some(meta)) => Ok(vec![(inc.to_string(), meta)]),
            Ok(None) => Ok(vec![]),
            Err(e) => Err((inc.to_string(), reason(&e))),
        });
    }
    let dir = parent(inc);
    match remote.lstat(dir).await? {
        Some(m) if m.kind == Some(Kind::Dir) => {}
        _ => return Ok(Ok(vec![])),
    }
    Ok(match remote.list(dir).await {
        Ok(children) => Ok(children
            .into_iter()
            .map(|(name, meta)| {
                let path = if dir == "/" {
                    format!("/{name}")
                } else {
                    format!("{dir}/{name}")
                };
                (path, meta)
            })
            .filter(|(path, _)| glob_match(inc, path))
            .collect()),
        Err(e) => Err((dir.to_string(), reason(&e))),
    })
}

/// What the listing says of a path, before its content is read.
fn found_of<K>(remote: &Remote, path: &str, meta: &super::Meta, kind: Kind) -> Found<K> {
    let mut meta = meta.clone();
    if kind == Kind::Dir {
        meta.size = 0;
    }
    Found {
        path: path.to_string(),
        kind,
        owner: remote.accounts.user_name(meta.uid).map(str::to_string),
        group: remote.accounts.group_name(meta.gid).map(str::to_string),
        meta,
        target: None,
        kept: None,
    }
}

fn reason(e: &SourceError) -> String {
    match e {
        SourceError::Io { why, .. } => why.clone(),
        other => other.reason(),
    }
}
