//! Reading backups back: a commit's configuration, run record, manifests,
//! fact index and content blobs, and the history of the branch.

use super::config::VaultConfig;
use super::crypto::Identity;
use super::facts_index;
use super::manifest::Manifest;
use super::message::RunRecord;
use super::{tree, Vault, VaultError, BRANCH, CONFIG_FILE};
use git2::Oid;
use std::collections::BTreeMap;

/// One node's recorded state in a backup.
#[derive(Clone, Debug)]
pub struct NodeState {
    pub manifest: Manifest,
    /// The id of the `nodes/<node>` tree.
    pub tree: Oid,
    /// Encrypted blob of each file entry, keyed by absolute path.
    pub blobs: BTreeMap<String, Oid>,
}

/// A backup commit, read back.
#[derive(Clone, Debug)]
pub struct Backup {
    pub commit: Oid,
    pub time: i64,
    pub record: RunRecord,
    pub config: VaultConfig,
    pub nodes: BTreeMap<String, NodeState>,
    /// The Ansible facts the backup holds, and the blob of each host's.
    pub facts: facts_index::FactsIndex,
    pub fact_blobs: BTreeMap<String, Oid>,
}

impl Backup {
    /// The facts entries with their blobs, as the next commit carries them.
    pub fn facts_with_blobs(&self) -> BTreeMap<String, (facts_index::FactEntry, Oid)> {
        self.facts
            .entries
            .iter()
            .filter_map(|(h, e)| self.fact_blobs.get(h).map(|o| (h.clone(), (e.clone(), *o))))
            .collect()
    }

    pub fn short_id(&self) -> String {
        self.commit.to_string()[..10].to_string()
    }

    pub fn node(&self, node: &str) -> Result<&NodeState, VaultError> {
        self.nodes.get(node).ok_or_else(|| VaultError::UnknownNode {
            node: node.to_string(),
            rev: self.short_id(),
            known: if self.nodes.is_empty() {
                "none".into()
            } else {
                self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }
}

impl Vault {
    /// Reads a backup commit: configuration, run record, and every node's manifest.
    pub fn backup(&self, commit: Oid) -> Result<Backup, VaultError> {
        let rev = commit.to_string()[..10].to_string();
        let damaged = |what: String| VaultError::Damaged {
            rev: rev.clone(),
            what,
        };
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let tree = self.git("reading a tree", c.tree())?;
        let cfg_entry = tree
            .get_name(CONFIG_FILE)
            .ok_or_else(|| damaged(format!("no {CONFIG_FILE}")))?;
        let cfg_blob = self.git(
            "reading the configuration",
            self.repo.find_blob(cfg_entry.id()),
        )?;
        let config = VaultConfig::parse(cfg_blob.content())?;
        let record = RunRecord::parse(c.message().unwrap_or(""));
        let mut nodes = BTreeMap::new();
        if let Some(nodes_entry) = tree.get_name("nodes") {
            let nodes_tree = self.git("reading nodes", self.repo.find_tree(nodes_entry.id()))?;
            for n in nodes_tree.iter() {
                let name = n
                    .name()
                    .ok_or_else(|| damaged("a node name is not UTF-8".into()))?
                    .to_string();
                crate::paths::check_node_name(&name).map_err(|e| damaged(e.to_string()))?;
                let node_tree = self.git("reading a node", self.repo.find_tree(n.id()))?;
                let m_entry = node_tree
                    .get_name("manifest")
                    .ok_or_else(|| damaged(format!("node {name} has no manifest")))?;
                let m_blob = self.git("reading a manifest", self.repo.find_blob(m_entry.id()))?;
                let manifest =
                    Manifest::parse(m_blob.content()).map_err(|source| VaultError::Manifest {
                        node: name.clone(),
                        rev: rev.clone(),
                        source,
                    })?;
                let mut blobs = BTreeMap::new();
                if let Some(files) = node_tree.get_name("files") {
                    for (rel, oid) in
                        self.git("reading files", tree::blobs_below(&self.repo, files.id()))?
                    {
                        blobs.insert(format!("/{rel}"), oid);
                    }
                }
                for e in manifest.files() {
                    if !blobs.contains_key(&e.path) {
                        return Err(damaged(format!(
                            "node {name}: file {} has no content blob",
                            e.path
                        )));
                    }
                }
                nodes.insert(
                    name,
                    NodeState {
                        manifest,
                        tree: n.id(),
                        blobs,
                    },
                );
            }
        }
        let mut facts = facts_index::FactsIndex::default();
        let mut fact_blobs = BTreeMap::new();
        if let Some(f) = tree.get_name("facts") {
            let ftree = self.git("reading facts", self.repo.find_tree(f.id()))?;
            let idx = ftree
                .get_name("index")
                .ok_or_else(|| damaged("facts/ has no index".into()))?;
            let blob = self.git("reading the facts index", self.repo.find_blob(idx.id()))?;
            facts = facts_index::FactsIndex::parse(blob.content()).map_err(&damaged)?;
            if let Some(files) = ftree.get_name("files") {
                for (host, oid) in
                    self.git("reading facts", tree::blobs_below(&self.repo, files.id()))?
                {
                    fact_blobs.insert(host, oid);
                }
            }
            if let Some(h) = facts.entries.keys().find(|h| !fact_blobs.contains_key(*h)) {
                return Err(damaged(format!("facts of {h} have no content blob")));
            }
        }
        Ok(Backup {
            commit,
            time: c.time().seconds(),
            record,
            config,
            nodes,
            facts,
            fact_blobs,
        })
    }

    /// The `nodes/<node>` tree id and manifest blob id of every node of a
    /// commit, without reading any manifest: what `log` needs to skip nodes
    /// that did not change.
    pub fn node_trees(&self, commit: Oid) -> Result<BTreeMap<String, (Oid, Oid)>, VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let tree = self.git("reading a tree", c.tree())?;
        let mut out = BTreeMap::new();
        if let Some(nodes_entry) = tree.get_name("nodes") {
            let nodes_tree = self.git("reading nodes", self.repo.find_tree(nodes_entry.id()))?;
            for n in nodes_tree.iter() {
                let Some(name) = n.name() else { continue };
                let node_tree = self.git("reading a node", self.repo.find_tree(n.id()))?;
                let manifest = node_tree.get_name("manifest").map(|m| m.id());
                if let Some(m) = manifest {
                    out.insert(name.to_string(), (n.id(), m));
                }
            }
        }
        Ok(out)
    }

    /// Parses the manifest blob `oid` (of `node`, for error messages).
    pub fn manifest(&self, oid: Oid, node: &str) -> Result<Manifest, VaultError> {
        let blob = self.git("reading a manifest", self.repo.find_blob(oid))?;
        Manifest::parse(blob.content()).map_err(|source| VaultError::Manifest {
            node: node.to_string(),
            rev: oid.to_string()[..10].to_string(),
            source,
        })
    }

    /// The first-parent history of the branch, newest first.
    pub fn history(&self) -> Result<Vec<Oid>, VaultError> {
        let mut walk = self.git("walking history", self.repo.revwalk())?;
        self.git("walking history", walk.push_ref(BRANCH))?;
        self.git("walking history", walk.simplify_first_parent())?;
        walk.map(|o| self.git("walking history", o)).collect()
    }

    /// The commit's time and message.
    pub fn commit_info(&self, commit: Oid) -> Result<(i64, RunRecord), VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        Ok((
            c.time().seconds(),
            RunRecord::parse(c.message().unwrap_or("")),
        ))
    }

    /// A stream of blob `oid`'s content and its length: read from the loose
    /// object as it goes when there is one, else from libgit2 in memory.
    pub fn blob_reader(&self, oid: Oid) -> Result<(u64, Box<dyn std::io::Read + '_>), VaultError> {
        let objects = self.repo.path().join("objects");
        match super::loose::open_blob(&objects, oid) {
            Ok(Some((size, r))) => Ok((size, Box::new(r))),
            Ok(None) => {
                let b = self.git("reading an object", self.repo.find_blob(oid))?;
                let data = b.content().to_vec();
                Ok((data.len() as u64, Box::new(std::io::Cursor::new(data))))
            }
            Err(source) => Err(VaultError::Io {
                path: objects,
                source,
            }),
        }
    }

    /// Reads one file's ciphertext from the vault.
    pub fn read_blob(&self, oid: Oid) -> Result<Vec<u8>, VaultError> {
        let b = self.git("reading an object", self.repo.find_blob(oid))?;
        Ok(b.content().to_vec())
    }

    /// Decrypts the file at `path` of `node` in `backup`.
    pub fn decrypt_file(
        &self,
        backup: &Backup,
        node: &str,
        path: &str,
        identity: &Identity,
    ) -> Result<Vec<u8>, VaultError> {
        let state = backup.node(node)?;
        let oid = state.blobs.get(path).ok_or_else(|| VaultError::Damaged {
            rev: backup.short_id(),
            what: format!("node {node}: no content for {path}"),
        })?;
        let cipher = self.read_blob(*oid).map_err(|e| VaultError::Damaged {
            rev: backup.short_id(),
            what: format!(
                "node {node}: the object holding {path} is unreadable ({})",
                match &e {
                    VaultError::Git { source, .. } => source.message().to_string(),
                    other => other.to_string(),
                }
            ),
        })?;
        Ok(identity.decrypt(
            &cipher,
            &format!("{path} of node {node} in backup {}", backup.short_id()),
        )?)
    }
}
