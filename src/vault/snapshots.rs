//! etcd snapshot commits (vault-layout, "etcd snapshots"): one parentless,
//! signed commit per snapshot, each on a ref of its own under
//! `refs/sprayvault/etcd/`, holding the plaintext `snapshot` index and one
//! `chunks/<mac>` blob per distinct chunk (gzip, then age). The index format
//! belongs to `crate::etcd::index`; here is what touches the repository:
//! writing chunks and the commit and its ref, listing and reading the refs,
//! signing version 1 refs, and deleting refs for retention.

use super::bindings::Bindings;
use super::blobs::Counts;
use super::crypto::Recipients;
use super::tree::TreeSpec;
use super::{Vault, VaultError};
use flate2::write::GzEncoder;
use git2::Oid;
use std::collections::HashMap;
use std::io::Write;

pub const PREFIX: &str = "refs/sprayvault/etcd/";

/// gzip level of new chunks. With flate2's zlib-rs backend, level 3 is as
/// fast as level 2 (its "fast" deflate runs levels 1-3) and shrinks etcd
/// databases within 0.2% of level 6; level 1 leaves a third more. Measured
/// on a 75 MiB snapshot in 256 KiB pieces: 0.79-0.91 s at ratio 0.328,
/// where miniz_oxide took 2.8-3.8 s at level 2 for 0.329.
pub const LEVEL: u32 = 3;

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
    /// The blob of each `chunks/<mac>`, by mac.
    pub chunks: HashMap<String, Oid>,
}

/// Writes the chunks of one snapshot being taken, reusing chunks already
/// stored, then its commit and ref. Made by `Session::snapshot`.
pub struct ChunkWriter<'s> {
    vault: &'s Vault,
    recipients: &'s Recipients,
    bindings: &'s mut Bindings,
    /// The session's counters, which this snapshot's join when it commits.
    session: &'s mut Counts,
    known: HashMap<String, Oid>,
    written: Vec<(String, Oid)>,
    counts: Counts,
    /// A write found the vault's disk full.
    full: bool,
}

impl<'s> ChunkWriter<'s> {
    pub(super) fn new(
        vault: &'s Vault,
        recipients: &'s Recipients,
        bindings: &'s mut Bindings,
        session: &'s mut Counts,
        known: HashMap<String, Oid>,
    ) -> ChunkWriter<'s> {
        ChunkWriter {
            vault,
            recipients,
            bindings,
            session,
            known,
            written: vec![],
            counts: Counts::default(),
            full: false,
        }
    }

    /// Whether a write of this snapshot found the vault's disk full.
    pub fn disk_full(&self) -> bool {
        self.full
    }

    /// The chunks written for this snapshot so far, and their bytes.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Stores one chunk (named `mac`), unless an equal one is stored already.
    pub fn put(&mut self, mac: &str, data: &[u8]) -> Result<(), VaultError> {
        let put = self.store(mac, data);
        if let Err(e) = &put {
            self.full |= e.is_disk_full();
        }
        put
    }

    fn store(&mut self, mac: &str, data: &[u8]) -> Result<(), VaultError> {
        let oid = match self.known.get(mac) {
            Some(o) => *o,
            None => {
                let gzip = |e| VaultError::Io {
                    path: "gzip".into(),
                    error: e,
                };
                let mut gz = GzEncoder::new(
                    Vec::with_capacity(data.len() / 2),
                    flate2::Compression::new(LEVEL),
                );
                gz.write_all(data).map_err(gzip)?;
                let packed = gz.finish().map_err(gzip)?;
                let cipher = self.recipients.encrypt(&packed)?;
                self.counts.add(cipher.len() as u64);
                let oid = self.vault.write_stored_blob(&cipher)?;
                self.bindings.record(mac, oid)?;
                self.known.insert(mac.to_string(), oid);
                oid
            }
        };
        self.written.push((mac.to_string(), oid));
        Ok(())
    }

    /// Writes the snapshot commit and its ref; returns the ref name.
    pub fn commit(self, snap: &SnapshotCommit) -> Result<String, VaultError> {
        let vault = self.vault;
        let mut spec = TreeSpec::default();
        spec.blob("snapshot", vault.write_blob(snap.index.as_bytes())?);
        for (mac, oid) in &self.written {
            spec.blob(&format!("chunks/{mac}"), *oid);
        }
        let repo = vault.repo();
        let tree = vault.git(
            "writing a snapshot",
            spec.write(repo).and_then(|t| repo.find_tree(t)),
        )?;
        let msg = format!(
            "etcd snapshot of {} ({}) at revision {}, {} keys\n",
            snap.member, snap.node, snap.revision, snap.keys
        );
        let oid = vault.signed_commit(&msg, &tree, &[])?;
        let base = format!("{PREFIX}{}-{}", super::stamp(snap.taken), snap.node);
        // Two snapshots of one node within a second (back-to-back runs)
        // get `.2`, `.3`, ... rather than failing the second run.
        let mut n = 1;
        let name = loop {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            match repo.reference(&name, oid, false, &msg) {
                Ok(_) => break name,
                Err(e) if e.code() == git2::ErrorCode::Exists && n < 100 => n += 1,
                Err(source) => {
                    return Err(VaultError::Git {
                        dir: vault.dir().into(),
                        what: "writing the snapshot ref".into(),
                        error: source,
                    })
                }
            }
        };
        self.session.new_blobs += self.counts.new_blobs;
        self.session.bytes_added += self.counts.bytes_added;
        Ok(name)
    }
}

impl Vault {
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
        let mut chunks = HashMap::new();
        if let Some(c) = tree.get_name("chunks") {
            let ct = self.git("reading a snapshot", self.repo.find_tree(c.id()))?;
            for e in ct.iter() {
                if let Some(n) = e.name() {
                    chunks.insert(n.to_string(), e.id());
                }
            }
        }
        Ok(SnapshotTree {
            commit: oid,
            index,
            chunks,
        })
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
