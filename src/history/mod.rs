//! What changed between backups: per-backup counts for `log`, and per-entry
//! changes for `diff`. Both work from the plaintext manifests, so they need
//! no identity; `inspect` looks inside changed files when one is given.

pub mod inspect;

use crate::vault::manifest::{Entry, Kind, Manifest};
use crate::vault::message::NodeStatus;
use crate::vault::{Vault, VaultError};
use git2::Oid;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One entry that differs between two backups.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub node: String,
    pub path: String,
    pub change: ChangeKind,
    pub content_changed: bool,
    /// Metadata differences, e.g. `mode 0644 -> 0600`, `owner kube -> root`.
    pub meta: Vec<String>,
    #[serde(skip)]
    pub old: Option<Entry>,
    #[serde(skip)]
    pub new: Option<Entry>,
}

fn who(name: &Option<String>, id: u32) -> String {
    name.clone().unwrap_or_else(|| id.to_string())
}

/// The differences between two manifests of one node, in path order.
pub fn compare(node: &str, old: &Manifest, new: &Manifest, path: Option<&str>) -> Vec<Change> {
    let wanted = |p: &str| {
        path.is_none_or(|w| p == w || p.strip_prefix(w).is_some_and(|r| r.starts_with('/')))
    };
    let mut out = Vec::new();
    for (p, n) in new.entries.iter().filter(|(p, _)| wanted(p)) {
        match old.entries.get(p) {
            None => out.push(Change {
                node: node.into(),
                path: p.clone(),
                change: ChangeKind::Added,
                content_changed: true,
                meta: vec![],
                old: None,
                new: Some(n.clone()),
            }),
            Some(o) if o != n => {
                let mut meta = Vec::new();
                if o.kind != n.kind {
                    meta.push(format!("type {} -> {}", o.kind.word(), n.kind.word()));
                }
                if o.mode != n.mode && n.kind != Kind::Symlink {
                    meta.push(format!("mode {:04o} -> {:04o}", o.mode, n.mode));
                }
                if who(&o.owner, o.uid) != who(&n.owner, n.uid) {
                    meta.push(format!(
                        "owner {} -> {}",
                        who(&o.owner, o.uid),
                        who(&n.owner, n.uid)
                    ));
                }
                if who(&o.group, o.gid) != who(&n.group, n.gid) {
                    meta.push(format!(
                        "group {} -> {}",
                        who(&o.group, o.gid),
                        who(&n.group, n.gid)
                    ));
                }
                if o.target != n.target {
                    meta.push(format!(
                        "target {} -> {}",
                        o.target.as_deref().unwrap_or("-"),
                        n.target.as_deref().unwrap_or("-")
                    ));
                }
                let content_changed = o.mac != n.mac;
                if content_changed || !meta.is_empty() {
                    out.push(Change {
                        node: node.into(),
                        path: p.clone(),
                        change: ChangeKind::Changed,
                        content_changed,
                        meta,
                        old: Some(o.clone()),
                        new: Some(n.clone()),
                    });
                }
            }
            Some(_) => {}
        }
    }
    for (p, o) in old.entries.iter().filter(|(p, _)| wanted(p)) {
        if !new.entries.contains_key(p) {
            out.push(Change {
                node: node.into(),
                path: p.clone(),
                change: ChangeKind::Removed,
                content_changed: true,
                meta: vec![],
                old: Some(o.clone()),
                new: None,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Decrypted file contents of a backup, each object decrypted once.
pub struct Contents<'a> {
    vault: &'a Vault,
    identity: &'a crate::vault::crypto::Identity,
    cache: HashMap<Oid, Rc<Vec<u8>>>,
}

impl<'a> Contents<'a> {
    pub fn new(vault: &'a Vault, identity: &'a crate::vault::crypto::Identity) -> Contents<'a> {
        Contents {
            vault,
            identity,
            cache: HashMap::new(),
        }
    }

    /// The plaintext of `path` on `node` in `backup`.
    pub fn get(
        &mut self,
        backup: &crate::vault::Backup,
        node: &str,
        path: &str,
    ) -> Result<Rc<Vec<u8>>, VaultError> {
        let oid =
            backup
                .node(node)?
                .blobs
                .get(path)
                .copied()
                .ok_or_else(|| VaultError::Damaged {
                    rev: backup.short_id(),
                    what: format!("node {node}: no content for {path}"),
                })?;
        if let Some(c) = self.cache.get(&oid) {
            return Ok(Rc::clone(c));
        }
        let plain = Rc::new(self.vault.decrypt_file(backup, node, path, self.identity)?);
        self.cache.insert(oid, Rc::clone(&plain));
        Ok(plain)
    }
}

/// One line of `log`.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    pub commit: String,
    pub time: i64,
    pub kind: String,
    /// Nodes and their status in this backup.
    pub nodes: BTreeMap<String, crate::vault::message::Outcome>,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub partial: bool,
    /// Why nodes failed or were partial, `node: reason`.
    pub reasons: Vec<String>,
}

/// Parsed manifests, shared between the many commits in which a node did not change.
#[derive(Default)]
struct ManifestCache(HashMap<Oid, Rc<Manifest>>);

impl ManifestCache {
    fn get(&mut self, vault: &Vault, oid: Oid, node: &str) -> Result<Rc<Manifest>, VaultError> {
        if let Some(m) = self.0.get(&oid) {
            return Ok(Rc::clone(m));
        }
        let m = Rc::new(vault.manifest(oid, node)?);
        self.0.insert(oid, Rc::clone(&m));
        Ok(m)
    }
}

/// The history of the vault, newest first, optionally for one node and/or path.
/// With an identity, failure reasons are the detailed texts of each commit's
/// encrypted `details.age` rather than the trailers' generic words.
pub fn log(
    vault: &Vault,
    node: Option<&str>,
    path: Option<&str>,
    identity: Option<&crate::vault::crypto::Identity>,
) -> Result<Vec<LogEntry>, VaultError> {
    let commits = vault.history()?;
    let mut cache = ManifestCache::default();
    let empty = Rc::new(Manifest::default());
    let mut trees: Vec<BTreeMap<String, (Oid, Oid)>> = Vec::with_capacity(commits.len());
    for c in &commits {
        trees.push(vault.node_trees(*c)?);
    }
    let mut out = Vec::with_capacity(commits.len());
    for (i, c) in commits.iter().enumerate() {
        let (time, record) = vault.commit_info(*c)?;
        let none = BTreeMap::new();
        let (now, before) = (&trees[i], trees.get(i + 1).unwrap_or(&none));
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        let names: std::collections::BTreeSet<&String> = now
            .keys()
            .chain(before.keys())
            .filter(|n| node.is_none_or(|w| w == n.as_str()))
            .collect();
        for n in names {
            let (a, b) = (now.get(n), before.get(n));
            if a.map(|x| x.0) == b.map(|x| x.0) {
                continue;
            }
            let new = match a {
                Some((_, m)) => cache.get(vault, *m, n)?,
                None => Rc::clone(&empty),
            };
            let old = match b {
                Some((_, m)) => cache.get(vault, *m, n)?,
                None => Rc::clone(&empty),
            };
            for ch in compare(n, &old, &new, path) {
                match ch.change {
                    ChangeKind::Added => added += 1,
                    ChangeKind::Changed => changed += 1,
                    ChangeKind::Removed => removed += 1,
                }
            }
        }
        let nodes: BTreeMap<String, crate::vault::message::Outcome> = record
            .nodes
            .iter()
            .filter(|(n, _)| node.is_none_or(|w| w == n.as_str()))
            .map(|(n, s)| (n.clone(), s.outcome()))
            .collect();
        let details = match identity {
            Some(id) if record.is_partial() => vault.details(*c, id)?,
            _ => BTreeMap::new(),
        };
        let reasons: Vec<String> = record
            .nodes
            .iter()
            .filter(|(n, _)| node.is_none_or(|w| w == n.as_str()))
            .filter_map(|(n, s)| match s {
                NodeStatus::Failed(r) => {
                    let key = crate::vault::message::Subject::Node(n).key();
                    Some(format!("{n}: {}", details.get(&key).unwrap_or(r)))
                }
                NodeStatus::Partial(r) => {
                    let prefix = format!("entry {n} ");
                    let more: Vec<String> = details
                        .iter()
                        .filter_map(|(k, v)| Some(format!("{}: {v}", k.strip_prefix(&prefix)?)))
                        .collect();
                    Some(if more.is_empty() {
                        format!("{n}: {r}")
                    } else {
                        format!("{n}: {r} ({})", more.join(", "))
                    })
                }
                _ => None,
            })
            .collect();
        out.push(LogEntry {
            commit: c.to_string(),
            time,
            kind: record.kind.clone(),
            partial: !reasons.is_empty(),
            nodes,
            added,
            changed,
            removed,
            reasons,
        });
    }
    Ok(out)
}
