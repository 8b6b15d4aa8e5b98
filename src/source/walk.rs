//! Collecting a node's recorded entries: every path the vault configuration
//! includes, directories recursively, symlinks as links (never followed).
//!
//! A path absent on the node is normal (workers have no `/etc/etcd.env`). An
//! entry that cannot be read becomes a per-entry error, never a reason to
//! stop reading the rest.

use super::{Remote, SourceError};
use crate::paths::{check_link_target, check_path, glob_match, parent};
use crate::vault::config::VaultConfig;
use crate::vault::mac::MacKey;
use crate::vault::manifest::{Entry, Kind};

/// An entry read from a node, with its content for regular files.
pub struct ReadEntry {
    pub entry: Entry,
    pub content: Option<Vec<u8>>,
}

/// Everything read from one node.
#[derive(Default)]
pub struct NodeRead {
    pub entries: Vec<ReadEntry>,
    /// `(path, reason)` of entries that could not be read.
    pub errors: Vec<(String, String)>,
}

/// Reads every included entry of the node.
pub async fn read_node(
    remote: &Remote,
    config: &VaultConfig,
    key: &MacKey,
) -> Result<NodeRead, SourceError> {
    let mut out = NodeRead::default();
    let mut roots: Vec<(String, super::Meta)> = Vec::new();
    for inc in &config.include {
        if inc.contains('*') {
            let dir = parent(inc);
            match remote.lstat(dir).await? {
                Some(m) if m.kind == Some(Kind::Dir) => {}
                _ => continue,
            }
            match remote.list(dir).await {
                Ok(children) => {
                    for (name, meta) in children {
                        let path = if dir == "/" {
                            format!("/{name}")
                        } else {
                            format!("{dir}/{name}")
                        };
                        if glob_match(inc, &path) {
                            roots.push((path, meta));
                        }
                    }
                }
                Err(e) => out.errors.push((dir.to_string(), reason(&e))),
            }
        } else {
            match remote.lstat(inc).await {
                Ok(Some(meta)) => roots.push((inc.clone(), meta)),
                Ok(None) => {}
                Err(e) => out.errors.push((inc.clone(), reason(&e))),
            }
        }
    }
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    roots.dedup_by(|a, b| a.0 == b.0);
    let mut stack: Vec<(String, super::Meta)> = roots.into_iter().rev().collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some((path, meta)) = stack.pop() {
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
        let owner = remote.accounts.user_name(meta.uid).map(str::to_string);
        let group = remote.accounts.group_name(meta.gid).map(str::to_string);
        let mut entry = Entry {
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            owner,
            group,
            size: if kind == Kind::Dir { 0 } else { meta.size },
            mtime: meta.mtime,
            mac: None,
            path: path.clone(),
            target: None,
        };
        match kind {
            Kind::File => match remote.read(&path).await {
                Ok(data) => {
                    entry.size = data.len() as u64;
                    entry.mac = Some(key.mac(&data));
                    out.entries.push(ReadEntry {
                        entry,
                        content: Some(data),
                    });
                }
                Err(e) => out.errors.push((path, reason(&e))),
            },
            Kind::Symlink => match remote.read_link(&path).await {
                Ok(t) => match check_link_target(&t) {
                    Ok(()) => {
                        entry.mode = 0o777;
                        entry.size = t.len() as u64;
                        entry.target = Some(t);
                        out.entries.push(ReadEntry {
                            entry,
                            content: None,
                        });
                    }
                    Err(e) => out.errors.push((path, e.to_string())),
                },
                Err(e) => out.errors.push((path, reason(&e))),
            },
            Kind::Dir => match remote.list(&path).await {
                Ok(children) => {
                    out.entries.push(ReadEntry {
                        entry,
                        content: None,
                    });
                    for (name, m) in children.into_iter().rev() {
                        stack.push((format!("{path}/{name}"), m));
                    }
                }
                Err(e) => out.errors.push((path, reason(&e))),
            },
        }
    }
    Ok(out)
}

fn reason(e: &SourceError) -> String {
    match e {
        SourceError::Io { why, .. } => why.clone(),
        other => other.reason(),
    }
}
