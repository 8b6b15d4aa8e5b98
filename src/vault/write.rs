//! Writing: blobs first, then trees, then the commit, then the branch by
//! compare-and-swap (see vault-layout, "Writing a commit").

use super::config::VaultConfig;
use super::control::ControlWrite;
use super::facts_index;
use super::manifest::Manifest;
use super::message::RunRecord;
use super::tree::TreeSpec;
use super::{Vault, VaultError, BRANCH, CONFIG_FILE, MAC_KEY_AGE};
use git2::Oid;
use std::collections::BTreeMap;
use std::path::Path;

/// What goes into a new commit for one node.
pub enum NodeWrite {
    /// Keep the node's subtree from the parent unchanged.
    Carry(Oid),
    /// A freshly read state; `blobs` must cover every file entry.
    New {
        manifest: Manifest,
        blobs: BTreeMap<String, Oid>,
    },
}

impl Vault {
    pub(super) fn write_blob(&self, data: &[u8]) -> Result<Oid, VaultError> {
        self.git("writing an object", self.repo.blob(data))
    }

    /// Encrypts `plain` to `recipients` straight into a new blob.
    pub(super) fn write_encrypted(
        &self,
        recipients: &super::crypto::Recipients,
        plain: &[u8],
    ) -> Result<(Oid, u64), VaultError> {
        super::blobs::encrypt_blob(&self.repo, recipients, plain)
    }

    /// Writes a large ciphertext blob without compressing it (see `loose`).
    /// Makes every object written so far without a sync of its own durable
    /// (vault-layout, "Writing a commit", step 5): one pass, before a ref
    /// moves.
    pub(super) fn make_durable(&self) -> Result<(), VaultError> {
        let oids = std::mem::take(&mut *self.unsynced.lock().expect("not poisoned"));
        let objects = self.repo.path().join("objects");
        super::loose::sync_objects(&objects, &oids).map_err(|source| VaultError::Io {
            path: objects,
            error: source,
        })
    }

    /// Notes objects written without a sync, for [`Vault::make_durable`].
    pub(super) fn note_unsynced(&self, oids: impl IntoIterator<Item = Oid>) {
        self.unsynced.lock().expect("not poisoned").extend(oids);
    }

    pub(super) fn write_stored_blob(&self, data: &[u8]) -> Result<Oid, VaultError> {
        let objects = self.repo.path().join("objects");
        let oid = super::loose::write_blob(&objects, data).map_err(|source| VaultError::Io {
            path: objects,
            error: source,
        })?;
        self.note_unsynced([oid]);
        Ok(oid)
    }

    /// Writes a backup commit on top of `parent` and moves the branch to it
    /// (see [`super::session::Session::commit_backup`]).
    pub(super) fn commit_backup(
        &self,
        parent: Oid,
        config: &VaultConfig,
        nodes: BTreeMap<String, NodeWrite>,
        facts: &BTreeMap<String, (facts_index::FactEntry, Oid)>,
        control: ControlWrite,
        record: &RunRecord,
    ) -> Result<Oid, VaultError> {
        let parent_commit = self.git("reading the parent", self.repo.find_commit(parent))?;
        let parent_tree = self.git("reading the parent", parent_commit.tree())?;
        let mut spec = TreeSpec::default();
        spec.blob(CONFIG_FILE, self.write_blob(config.to_json().as_bytes())?);
        let key = parent_tree
            .get_name(MAC_KEY_AGE)
            .ok_or_else(|| VaultError::Damaged {
                rev: parent.to_string(),
                what: format!("no {MAC_KEY_AGE}"),
            })?;
        spec.blob(MAC_KEY_AGE, key.id());
        if !facts.is_empty() {
            let index = facts_index::FactsIndex {
                entries: facts
                    .iter()
                    .map(|(h, (e, _))| (h.clone(), e.clone()))
                    .collect(),
            };
            spec.blob("facts/index", self.write_blob(index.to_text().as_bytes())?);
            for (host, (_, oid)) in facts {
                spec.blob(&format!("facts/files/{host}"), *oid);
            }
        }
        for (node, w) in nodes {
            match w {
                NodeWrite::Carry(oid) => spec.tree(&format!("nodes/{node}"), oid),
                NodeWrite::New { manifest, blobs } => {
                    spec.blob(
                        &format!("nodes/{node}/manifest"),
                        self.write_blob(
                            manifest
                                .to_checked_text()
                                .map_err(|error| VaultError::Manifest {
                                    node: node.to_string(),
                                    rev: "the commit being written".into(),
                                    error,
                                })?
                                .as_bytes(),
                        )?,
                    );
                    for (path, oid) in blobs {
                        spec.blob(&format!("nodes/{node}/files{path}"), oid);
                    }
                }
            }
        }
        self.control_spec(&mut spec, &parent_tree, control)?;
        // Failure texts (ssh's messages, addresses) only encrypted.
        if let Some(text) = record.details_text() {
            let recipients =
                super::crypto::Recipients::parse(&config.recipients).map_err(VaultError::from)?;
            let cipher = recipients
                .encrypt(text.as_bytes())
                .map_err(VaultError::from)?;
            spec.blob(super::DETAILS_AGE, self.write_blob(&cipher)?);
        }
        self.commit(spec, Some(parent), record)
    }

    pub(super) fn commit(
        &self,
        spec: TreeSpec,
        parent: Option<Oid>,
        record: &RunRecord,
    ) -> Result<Oid, VaultError> {
        let tree_id = self.git("writing trees", spec.write(&self.repo))?;
        let tree = self.git("writing trees", self.repo.find_tree(tree_id))?;
        let parents: Vec<git2::Commit> = match parent {
            Some(p) => vec![self.git("reading the parent", self.repo.find_commit(p))?],
            None => vec![],
        };
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        let oid = self.signed_commit(&record.to_message(), &tree, &refs)?;
        self.make_durable()?;
        let log = record.summary.clone();
        let moved = match parent {
            Some(p) => self.repo.reference_matching(BRANCH, oid, true, p, &log),
            None => self.repo.reference(BRANCH, oid, false, &log),
        };
        moved.map_err(|e| {
            if e.code() == git2::ErrorCode::Modified || e.code() == git2::ErrorCode::Exists {
                VaultError::Raced
            } else {
                VaultError::Git {
                    dir: self.dir.clone(),
                    what: "moving the branch".into(),
                    error: e,
                }
            }
        })?;
        Ok(oid)
    }
}

pub(super) fn write_private(path: &Path, data: &[u8]) -> Result<(), VaultError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| VaultError::Io {
        path: path.to_path_buf(),
        error: source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}
