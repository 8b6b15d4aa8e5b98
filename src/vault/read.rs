//! Reading backups back: a commit's configuration, run record, manifests,
//! fact index and content blobs, and the history of the branch.

use super::config::VaultConfig;
use super::crypto::Identity;
use super::facts_index;
use super::mac::MacKey;
use super::manifest::Entry;
use super::manifest::Manifest;
use super::message::RunRecord;
use super::{tree, Vault, VaultError, BRANCH, CONFIG_FILE, MAC_KEY_AGE};
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
    /// The `mac-key.age` blob of the commit: the key readers check content with.
    pub mac_key_blob: Option<Oid>,
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

    /// The node's recorded state, for reading: refused when the manifest
    /// lists a path outside the vault's include paths, which no backup writes.
    pub fn node(&self, node: &str) -> Result<&NodeState, VaultError> {
        let state = self
            .nodes
            .get(node)
            .ok_or_else(|| VaultError::UnknownNode {
                node: node.to_string(),
                rev: self.short_id(),
                known: if self.nodes.is_empty() {
                    "none".into()
                } else {
                    self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })?;
        if let Some(e) = state
            .manifest
            .entries
            .values()
            .find(|e| !self.config.is_included(&e.path))
        {
            return Err(self.tampered(
                node,
                &e.path,
                "the path is outside the vault's include paths",
            ));
        }
        Ok(state)
    }

    /// The error for content of `node` at `path` that is not what the
    /// backup records.
    pub fn tampered(&self, node: &str, path: &str, why: &str) -> VaultError {
        VaultError::Tampered {
            rev: self.short_id(),
            node: node.to_string(),
            path: path.to_string(),
            why: why.to_string(),
        }
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
                        error: source,
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
            facts = facts_index::FactsIndex::parse(blob.content())
                .map_err(|e| damaged(e.to_string()))?;
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
            mac_key_blob: tree.get_name(MAC_KEY_AGE).map(|e| e.id()),
        })
    }

    /// The keyed-hash key of `backup`, decrypted from its `mac-key.age`
    /// with `identity`: what every read checks content against.
    pub fn content_key(&self, backup: &Backup, identity: &Identity) -> Result<MacKey, VaultError> {
        self.content_key_of(backup.commit, backup.mac_key_blob, identity)
    }

    /// `content_key` of `commit`, whose `mac-key.age` blob is `blob`.
    /// The keyed-hash key of the newest commit (the pinned `mac-key.age`),
    /// decrypted with `identity` once per process: what etcd snapshot
    /// chunks are named by.
    pub fn current_content_key(&self, identity: &Identity) -> Result<MacKey, VaultError> {
        let head = self.head()?;
        self.content_key_of(head, self.mac_key_blob(head)?, identity)
    }

    pub(super) fn content_key_of(
        &self,
        commit: Oid,
        blob: Option<Oid>,
        identity: &Identity,
    ) -> Result<MacKey, VaultError> {
        let rev = commit.to_string()[..10].to_string();
        let damaged = |what: &str| VaultError::Damaged {
            rev: rev.clone(),
            what: what.to_string(),
        };
        let oid = blob.ok_or_else(|| damaged("no mac-key.age"))?;
        let mut cache = self
            .content_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(k) = cache.get(&oid) {
            return Ok(k.clone());
        }
        let plain = identity.decrypt_secret(
            &self.read_blob(oid)?,
            &format!("mac-key.age of backup {rev}"),
        )?;
        let key = std::str::from_utf8(&plain)
            .ok()
            .and_then(MacKey::from_text)
            .ok_or_else(|| damaged("mac-key.age does not hold a key"))?;
        cache.insert(oid, key.clone());
        Ok(key)
    }

    /// The `mac-key.age` blob of `commit`.
    pub fn mac_key_blob(&self, commit: Oid) -> Result<Option<Oid>, VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let tree = self.git("reading a tree", c.tree())?;
        let blob = tree.get_name(MAC_KEY_AGE).map(|e| e.id());
        Ok(blob)
    }

    /// A stream of the plaintext of file entry `e` of `node`, which fails
    /// with an `InvalidData` error holding `VaultError::Tampered` when the
    /// content is not `e.size` bytes with mac `e.mac`, before it ends.
    pub fn checked_reader<'a>(
        &'a self,
        backup: &Backup,
        node: &str,
        e: &Entry,
        identity: &'a Identity,
    ) -> Result<Box<dyn std::io::Read + 'a>, VaultError> {
        let state = backup.node(node)?;
        let oid = state
            .blobs
            .get(&e.path)
            .ok_or_else(|| backup.tampered(node, &e.path, "the file has no content blob"))?;
        let key = self.content_key(backup, identity)?;
        let (_, cipher) = self.blob_reader(*oid)?;
        let what = format!("{} of node {node} in backup {}", e.path, backup.short_id());
        let plain = identity.decrypt_reader(cipher, &what)?;
        Ok(Box::new(CheckedReader {
            inner: plain,
            mac: Some(key.stream()),
            want_mac: e.mac.clone().unwrap_or_default(),
            left: e.size,
            rev: backup.short_id(),
            node: node.to_string(),
            path: e.path.clone(),
        }))
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
            error: source,
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
                error: source,
            }),
        }
    }

    /// The detailed failure texts of backup `commit` (its `details.age`), by
    /// subject; empty when the commit has none.
    pub fn details(
        &self,
        commit: Oid,
        identity: &Identity,
    ) -> Result<std::collections::BTreeMap<String, String>, VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let tree = self.git("reading a commit", c.tree())?;
        let Some(e) = tree.get_name(super::DETAILS_AGE) else {
            return Ok(Default::default());
        };
        let rev = commit.to_string()[..10].to_string();
        let plain = identity.decrypt(
            &self.read_blob(e.id())?,
            &format!("the failure details of backup {rev}"),
        )?;
        Ok(super::message::RunRecord::parse_details(
            &String::from_utf8_lossy(&plain),
        ))
    }

    /// Ok when `oid` is a blob present and intact in the object store;
    /// else git's error.
    pub fn check_blob(&self, oid: Oid) -> Result<(), git2::Error> {
        self.repo.find_blob(oid).map(|_| ())
    }

    /// Calls `f` with the content of blob `oid`, without copying it.
    pub fn with_blob<T>(&self, oid: Oid, f: impl FnOnce(&[u8]) -> T) -> Result<T, VaultError> {
        let b = self.git("reading an object", self.repo.find_blob(oid))?;
        Ok(f(b.content()))
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
                    VaultError::Git { error, .. } => error.message().to_string(),
                    other => other.to_string(),
                }
            ),
        })?;
        let mut plain = identity.decrypt_secret(
            &cipher,
            &format!("{path} of node {node} in backup {}", backup.short_id()),
        )?;
        let entry = state
            .manifest
            .entries
            .get(path)
            .ok_or_else(|| backup.tampered(node, path, "the manifest has no entry for it"))?;
        let key = self.content_key(backup, identity)?;
        let mac = entry.mac.as_deref().unwrap_or_default();
        check_content(&key, (mac, entry.size), &plain)
            .map_err(|why| backup.tampered(node, path, &why.to_string()))?;
        // Wiped here when its check fails; the caller's to wipe otherwise.
        Ok(std::mem::take(&mut *plain))
    }
}

/// How decrypted content differs from what its manifest records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotRecorded {
    #[error("the content is {got} bytes, not the size the manifest records ({want})")]
    Size { got: u64, want: u64 },
    #[error("the content does not have the mac the manifest records")]
    Mac,
}

/// Why decrypted content is not the `(mac, size)` a manifest or index
/// records, if it is not.
pub fn check_content(key: &MacKey, want: (&str, u64), plain: &[u8]) -> Result<(), NotRecorded> {
    let (mac, size) = want;
    if plain.len() as u64 != size {
        return Err(NotRecorded::Size {
            got: plain.len() as u64,
            want: size,
        });
    }
    if key.mac(plain) != mac {
        return Err(NotRecorded::Mac);
    }
    Ok(())
}

/// Passes decrypted content through while computing its mac, and fails at
/// the end (or when it runs long) unless size and mac are the recorded ones.
struct CheckedReader<R> {
    inner: R,
    mac: Option<super::mac::MacStream>,
    want_mac: String,
    left: u64,
    rev: String,
    node: String,
    path: String,
}

impl<R: std::io::Read> CheckedReader<R> {
    /// An `InvalidData` error carrying `VaultError::Tampered`.
    fn fail(&self, why: &str) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            VaultError::Tampered {
                rev: self.rev.clone(),
                node: self.node.clone(),
                path: self.path.clone(),
                why: why.to_string(),
            },
        )
    }
}

impl<R: std::io::Read> std::io::Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(mac) = self.mac.as_mut() else {
            return Ok(0);
        };
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(self.fail("the content is longer than the size the manifest records"));
        }
        if n > 0 {
            mac.update(&buf[..n]);
            self.left -= n as u64;
            return Ok(n);
        }
        if self.left > 0 {
            return Err(self.fail(&format!(
                "the content ends {} bytes short of the size the manifest records",
                self.left
            )));
        }
        let got = self.mac.take().expect("checked above").finish();
        if got != self.want_mac {
            return Err(self.fail("the content does not have the mac the manifest records"));
        }
        Ok(0)
    }
}
