//! etcd snapshot commits (vault-layout, "etcd snapshots"): one parentless,
//! signed commit per snapshot, each on a ref of its own under
//! `refs/sprayvault/etcd/`, holding the plaintext `snapshot` index and the
//! page map and packs (`super::packs`), or, written before, one
//! `chunks/<mac>` blob per distinct chunk. The index format belongs to
//! `crate::etcd::index`; here is what touches the repository: the commit
//! and its ref, listing and reading the refs, signing version 1 refs, and
//! deleting refs for retention.

use super::tree::TreeSpec;
use super::{Vault, VaultError};
use git2::Oid;
use std::collections::HashMap;

pub const PREFIX: &str = "refs/sprayvault/etcd/";

/// What a snapshot commit records besides its chunks.
pub struct SnapshotCommit<'a> {
    /// The `snapshot` index file, as text.
    pub index: &'a str,
    pub node: &'a str,
    pub member: &'a str,
    /// Unix seconds: the ref's time stamp.
    pub taken: i64,
    pub revision: u64,
    pub keys: u64,
}

/// The tree of a snapshot commit, read back.
pub struct SnapshotTree {
    pub commit: Oid,
    /// The `snapshot` index file.
    pub index: Vec<u8>,
    /// The blob of each `chunks/<mac>`, by mac (versions 1 and 2).
    pub chunks: HashMap<String, Oid>,
    /// The page map's blob and the `packs` tree (version 3).
    pub map: Option<Oid>,
    pub packs: Option<Oid>,
}

impl Vault {
    /// Writes the tree `spec` of a snapshot as a signed commit without
    /// parent and its ref, once every object is durable; returns the ref.
    pub(super) fn commit_snapshot(
        &self,
        snap: &SnapshotCommit,
        spec: &TreeSpec,
    ) -> Result<String, VaultError> {
        let repo = self.repo();
        let tree = self.git(
            "writing a snapshot",
            spec.write(repo).and_then(|t| repo.find_tree(t)),
        )?;
        let msg = format!(
            "etcd snapshot of {} ({}) at revision {}, {} keys\n",
            snap.member, snap.node, snap.revision, snap.keys
        );
        let oid = self.signed_commit(&msg, &tree, &[])?;
        self.make_durable()?;
        let base = format!("{PREFIX}{}-{}", super::stamp(snap.taken), snap.node);
        // Two snapshots of one node within a second (back-to-back runs)
        // get `.2`, `.3`, ... rather than failing the second run.
        let mut n = 1;
        loop {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            match repo.reference(&name, oid, false, &msg) {
                Ok(_) => return Ok(name),
                Err(e) if e.code() == git2::ErrorCode::Exists && n < 100 => n += 1,
                Err(source) => {
                    return Err(VaultError::Git {
                        dir: self.dir().into(),
                        what: "writing the snapshot ref".into(),
                        error: source,
                    })
                }
            }
        }
    }

    /// Every ref under [`PREFIX`] (full name) and the object it names
    /// (None: a symbolic ref), in git's order.
    pub fn snapshot_refs(&self) -> Result<Vec<(String, Option<Oid>)>, VaultError> {
        let mut out = Vec::new();
        let refs = self.git(
            "listing snapshots",
            self.repo.references_glob(&format!("{PREFIX}*")),
        )?;
        for r in refs {
            let r = self.git("listing snapshots", r)?;
            if let Some(name) = r.name() {
                out.push((name.to_string(), r.target()));
            }
        }
        Ok(out)
    }

    /// The tree of the snapshot commit `oid`, which ref `name` names.
    pub fn snapshot_tree(&self, name: &str, oid: Option<Oid>) -> Result<SnapshotTree, VaultError> {
        let damaged = |what: &str| VaultError::Damaged {
            rev: name.to_string(),
            what: what.into(),
        };
        let oid = oid.ok_or_else(|| damaged("a symbolic ref"))?;
        let commit = self.git("reading a snapshot", self.repo.find_commit(oid))?;
        let tree = self.git("reading a snapshot", commit.tree())?;
        let idx = tree
            .get_name("snapshot")
            .ok_or_else(|| damaged("no snapshot index"))?;
        let index = self.read_blob_as("reading a snapshot", idx.id())?;
        let listed = |dir: &str| -> Result<HashMap<String, Oid>, VaultError> {
            let mut out = HashMap::new();
            if let Some(c) = tree.get_name(dir) {
                let ct = self.git("reading a snapshot", self.repo.find_tree(c.id()))?;
                for e in ct.iter() {
                    if let Some(n) = e.name() {
                        out.insert(n.to_string(), e.id());
                    }
                }
            }
            Ok(out)
        };
        Ok(SnapshotTree {
            commit: oid,
            index,
            chunks: listed("chunks")?,
            map: tree.get_name("map").map(|e| e.id()),
            packs: tree.get_name("packs").map(|e| e.id()),
        })
    }

    /// The packs of a snapshot's `packs` tree (`packs/<xx>/<mac>`), by
    /// mac: read when needed, as a listing holds every snapshot.
    pub fn snapshot_packs(&self, packs: Oid) -> Result<Vec<(String, Oid)>, VaultError> {
        let mut out = Vec::new();
        let pt = self.git("reading a snapshot", self.repo.find_tree(packs))?;
        for fan in pt.iter() {
            let ft = self.git("reading a snapshot", self.repo.find_tree(fan.id()))?;
            for e in ft.iter() {
                let (Some(f), Some(n)) = (fan.name(), e.name()) else {
                    continue;
                };
                if n.starts_with(f) {
                    out.push((n.to_string(), e.id()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn read_blob_as(&self, what: &str, oid: Oid) -> Result<Vec<u8>, VaultError> {
        let b = self.git(what, self.repo.find_blob(oid))?;
        Ok(b.content().to_vec())
    }

    /// The commit snapshot ref `name` (a full name under [`PREFIX`]) points at.
    pub fn snapshot_ref(&self, name: &str) -> Result<Oid, VaultError> {
        let r = self.git(&format!("finding {name}"), self.repo.find_reference(name))?;
        r.target().ok_or_else(|| VaultError::Damaged {
            rev: name.to_string(),
            what: "the snapshot ref is symbolic".into(),
        })
    }

    /// Deletes snapshot ref `name` (a full name under [`PREFIX`]); its
    /// objects stay until `git gc` collects what no ref reaches.
    pub fn delete_snapshot_ref(&self, name: &str) -> Result<(), VaultError> {
        let what = format!("deleting {name}");
        if !name.starts_with(PREFIX) {
            return Err(VaultError::Damaged {
                rev: name.to_string(),
                what: format!("{what}: not a snapshot ref"),
            });
        }
        let mut r = self.git(&what, self.repo.find_reference(name))?;
        self.git(&what, r.delete())
    }

    /// Signs the snapshot refs a version 1 vault wrote before commits were
    /// signed: each unsigned snapshot commit is replaced by a signed one with
    /// the same tree and message (and a `Sprayvault-Signed-Later` trailer), so
    /// that readers can authenticate it. Only the backup host, under the vault
    /// lock, does this, vouching for its own copy (vault-layout, Section 12a).
    /// Refs signed by another key are left alone (readers refuse them). Returns
    /// the names of the refs signed, without [`PREFIX`].
    pub fn sign_unsigned_snapshots(&self) -> Result<Vec<String>, VaultError> {
        let own = self.create_signing_key()?;
        let mut unsigned = Vec::new();
        for (name, oid) in self.snapshot_refs()? {
            // A ref that is not a commit is no snapshot: listing skips it and
            // names it (the run is partial), it is not signed here.
            if let Some(oid) = oid {
                if self.repo.find_commit(oid).is_ok()
                    && self.signature_of(oid, &own) == super::signing::SigStatus::Unsigned
                {
                    unsigned.push((name, oid));
                }
            }
        }
        let mut signed = Vec::new();
        for (name, oid) in unsigned {
            let old = self.git("reading a snapshot", self.repo.find_commit(oid))?;
            let tree = self.git("reading a snapshot", old.tree())?;
            let mut msg = old
                .message()
                .unwrap_or("etcd snapshot")
                .trim_end()
                .to_string();
            msg.push_str(&format!(
                "\n\nSprayvault-Signed-Later: {}\n",
                super::now_rfc3339()
            ));
            let new = self.signed_commit(&msg, &tree, &[])?;
            self.git(
                "signing a snapshot ref",
                self.repo.reference_matching(
                    &name,
                    new,
                    true,
                    oid,
                    "sprayvault: sign a version 1 snapshot",
                ),
            )?;
            signed.push(name.trim_start_matches(PREFIX).to_string());
        }
        Ok(signed)
    }
}
