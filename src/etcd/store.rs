//! etcd snapshots in the vault: one commit per snapshot, each on a ref of
//! its own under `refs/sprayvault/etcd/`, so that pruning a snapshot is
//! deleting its ref (and letting git collect what no ref reaches) without
//! rewriting the backup history on `main`. Chunks are gzip-compressed, then
//! age-encrypted, and named by their keyed hash, so equal chunks of
//! different snapshots are stored once.

use super::index::SnapshotIndex;
use crate::vault::crypto::{Identity, Recipients};
use crate::vault::tree::TreeSpec;
use crate::vault::{Vault, VaultError};
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

/// A snapshot as listed from its ref.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredSnapshot {
    pub name: String,
    pub commit: String,
    #[serde(flatten)]
    pub index: SnapshotIndex,
    #[serde(skip)]
    pub chunk_blobs: HashMap<String, Oid>,
}

fn git<T>(vault: &Vault, what: &str, r: Result<T, git2::Error>) -> Result<T, VaultError> {
    r.map_err(|source| VaultError::Git {
        dir: vault.dir().into(),
        what: what.into(),
        source,
    })
}

/// Every snapshot, oldest first; the first unreadable snapshot ref is an error.
pub fn list(vault: &Vault) -> Result<Vec<StoredSnapshot>, VaultError> {
    let (out, bad) = list_readable(vault)?;
    match bad.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(out),
    }
}

/// A snapshot ref that could not be read, and why.
pub type Unreadable = (String, VaultError);

/// Every readable snapshot, oldest first, and the refs that could not be
/// read (each with why): a backup skips those instead of failing.
pub fn list_readable(vault: &Vault) -> Result<(Vec<StoredSnapshot>, Vec<Unreadable>), VaultError> {
    let repo = vault.repo();
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for r in git(
        vault,
        "listing snapshots",
        repo.references_glob(&format!("{PREFIX}*")),
    )? {
        let r = git(vault, "listing snapshots", r)?;
        let Some(name) = r.name().map(str::to_string) else {
            continue;
        };
        match read_one(vault, &name, r.target()) {
            Ok(s) => out.push(s),
            Err(e) => bad.push((name, e)),
        }
    }
    out.sort_by(|a, b| (a.index.taken, &a.name).cmp(&(b.index.taken, &b.name)));
    Ok((out, bad))
}

fn read_one(vault: &Vault, name: &str, oid: Option<Oid>) -> Result<StoredSnapshot, VaultError> {
    let repo = vault.repo();
    let damaged = |what: String| VaultError::Damaged {
        rev: name.to_string(),
        what,
    };
    let oid = oid.ok_or_else(|| damaged("a symbolic ref".into()))?;
    let commit = git(vault, "reading a snapshot", repo.find_commit(oid))?;
    let tree = git(vault, "reading a snapshot", commit.tree())?;
    let idx_entry = tree
        .get_name("snapshot")
        .ok_or_else(|| damaged("no snapshot index".into()))?;
    let blob = git(vault, "reading a snapshot", repo.find_blob(idx_entry.id()))?;
    let index = SnapshotIndex::parse(blob.content()).map_err(damaged)?;
    let mut chunk_blobs = HashMap::new();
    if let Some(c) = tree.get_name("chunks") {
        let ct = git(vault, "reading a snapshot", repo.find_tree(c.id()))?;
        for e in ct.iter() {
            if let Some(n) = e.name() {
                chunk_blobs.insert(n.to_string(), e.id());
            }
        }
    }
    if let Some((mac, _)) = index
        .chunks
        .iter()
        .find(|(m, _)| !chunk_blobs.contains_key(m))
    {
        return Err(damaged(format!("chunk {mac} has no blob")));
    }
    Ok(StoredSnapshot {
        name: name.trim_start_matches(PREFIX).to_string(),
        commit: oid.to_string(),
        index,
        chunk_blobs,
    })
}

/// Signs the snapshot refs a version 1 vault wrote before commits were
/// signed: each unsigned snapshot commit is replaced by a signed one with
/// the same tree and message (and a `Sprayvault-Signed-Later` trailer), so
/// that readers can authenticate it. Only the backup host, under the vault
/// lock, does this, vouching for its own copy (vault-layout, Section 12a).
/// Refs signed by another key are left alone (readers refuse them). Returns
/// the names of the refs signed.
pub fn sign_unsigned(vault: &Vault) -> Result<Vec<String>, VaultError> {
    let own = vault.create_signing_key()?;
    let repo = vault.repo();
    let mut unsigned = Vec::new();
    for r in git(
        vault,
        "listing snapshots",
        repo.references_glob(&format!("{PREFIX}*")),
    )? {
        let r = git(vault, "listing snapshots", r)?;
        // A ref that is not a commit is no snapshot: listing skips it and
        // names it (the run is partial), it is not signed here.
        if let (Some(name), Some(oid)) = (r.name(), r.target()) {
            if repo.find_commit(oid).is_ok()
                && vault.signature_of(oid, &own) == crate::vault::signing::SigStatus::Unsigned
            {
                unsigned.push((name.to_string(), oid));
            }
        }
    }
    let mut signed = Vec::new();
    for (name, oid) in unsigned {
        let old = git(vault, "reading a snapshot", repo.find_commit(oid))?;
        let tree = git(vault, "reading a snapshot", old.tree())?;
        let mut msg = old
            .message()
            .unwrap_or("etcd snapshot")
            .trim_end()
            .to_string();
        msg.push_str(&format!(
            "\n\nSprayvault-Signed-Later: {}\n",
            crate::vault::now_rfc3339()
        ));
        let new = vault.signed_commit(&msg, &tree, &[])?;
        git(
            vault,
            "signing a snapshot ref",
            repo.reference_matching(
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

/// Writes chunks of a snapshot being taken, reusing chunks already stored.
pub struct ChunkWriter<'a> {
    vault: &'a Vault,
    recipients: &'a Recipients,
    known: HashMap<String, Oid>,
    bindings: crate::vault::bindings::Bindings,
    /// Snapshot refs that could not be read, skipped (name, why).
    pub skipped: Vec<(String, String)>,
    pub written: Vec<(String, Oid)>,
    pub new_chunks: usize,
    pub bytes_added: u64,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(
        vault: &'a Vault,
        recipients: &'a Recipients,
    ) -> Result<ChunkWriter<'a>, VaultError> {
        // Only chunks the bindings prove are reused (see vault::bindings).
        let bindings = crate::vault::bindings::Bindings::load(vault)?;
        let mut known = HashMap::new();
        let (snaps, bad) = list_readable(vault)?;
        let skipped = bad.into_iter().map(|(n, e)| (n, e.to_string())).collect();
        for s in snaps {
            known.extend(
                s.chunk_blobs
                    .into_iter()
                    .filter(|(mac, oid)| bindings.proven(mac, *oid)),
            );
        }
        Ok(ChunkWriter {
            vault,
            recipients,
            known,
            bindings,
            skipped,
            written: vec![],
            new_chunks: 0,
            bytes_added: 0,
        })
    }

    /// Stores one chunk (named `mac`), unless an equal one is stored already.
    pub fn put(&mut self, mac: &str, data: &[u8]) -> Result<(), VaultError> {
        let oid = match self.known.get(mac) {
            Some(o) => *o,
            None => {
                let mut gz = GzEncoder::new(
                    Vec::with_capacity(data.len() / 2),
                    flate2::Compression::new(LEVEL),
                );
                gz.write_all(data).map_err(|e| VaultError::Io {
                    path: "gzip".into(),
                    source: e,
                })?;
                let packed = gz.finish().map_err(|e| VaultError::Io {
                    path: "gzip".into(),
                    source: e,
                })?;
                let cipher = self.recipients.encrypt(&packed)?;
                self.bytes_added += cipher.len() as u64;
                self.new_chunks += 1;
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
    pub fn commit(self, index: &SnapshotIndex) -> Result<String, VaultError> {
        let mut spec = TreeSpec::default();
        spec.blob(
            "snapshot",
            self.vault.write_blob(index.to_text().as_bytes())?,
        );
        for (mac, oid) in &self.written {
            spec.blob(&format!("chunks/{mac}"), *oid);
        }
        let repo = self.vault.repo();
        let tree = git(
            self.vault,
            "writing a snapshot",
            spec.write(repo).and_then(|t| repo.find_tree(t)),
        )?;
        let msg = format!(
            "etcd snapshot of {} ({}) at revision {}, {} keys\n",
            index.member, index.node, index.revision, index.keys
        );
        let oid = self.vault.signed_commit(&msg, &tree, &[])?;
        let t = time::OffsetDateTime::from_unix_timestamp(index.taken)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let base = format!(
            "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            index.node
        );
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
                        dir: self.vault.dir().into(),
                        what: "writing the snapshot ref".into(),
                        source,
                    })
                }
            }
        };
        Ok(name)
    }
}

/// Decrypts and decompresses chunk `i` of a snapshot, checking its size and
/// its keyed hash (the name the index gives it): a chunk swapped on the git
/// host is refused, whoever encrypted it.
pub fn read_chunk(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    i: usize,
) -> Result<Vec<u8>, VaultError> {
    let (mac, size) = &snap.index.chunks[i];
    let what = format!("chunk {} of etcd snapshot {}", i + 1, snap.name);
    let cipher = vault.read_blob(snap.chunk_blobs[mac])?;
    let packed = identity.decrypt(&cipher, &what)?;
    let mut plain = Vec::with_capacity(*size as usize);
    std::io::copy(&mut flate2::read::GzDecoder::new(&packed[..]), &mut plain).map_err(|e| {
        VaultError::Damaged {
            rev: snap.name.clone(),
            what: format!("{what} does not decompress: {e}"),
        }
    })?;
    if plain.len() as u64 != *size {
        return Err(VaultError::Damaged {
            rev: snap.name.clone(),
            what: format!("{what} has {} bytes, the index says {size}", plain.len()),
        });
    }
    if vault.current_content_key(identity)?.mac(&plain) != *mac {
        return Err(VaultError::Tampered {
            rev: snap.name.clone(),
            node: snap.index.node.clone(),
            path: format!("chunk {} of the etcd snapshot", i + 1),
            why: "its content does not match the keyed hash the snapshot's index names it by"
                .into(),
        });
    }
    Ok(plain)
}

/// Reassembles a snapshot, calling `out` with each decrypted, decompressed
/// chunk in order.
pub fn read(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), VaultError> {
    for i in 0..snap.index.chunks.len() {
        let plain = read_chunk(vault, snap, identity, i)?;
        out(&plain).map_err(|source| VaultError::Io {
            path: snap.name.clone().into(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::config::VaultConfig;

    /// Found by back-to-back backups in the lab: a second snapshot of the
    /// same node within one second failed the whole run on an existing ref.
    #[test]
    fn regression_two_snapshots_in_one_second_get_distinct_refs() {
        let dir = tempfile::tempdir().unwrap();
        let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let config = VaultConfig::new(vec![recipient.into()], &[], &[]).unwrap();
        let vault = Vault::init(&dir.path().join("v"), config).unwrap();
        let recipients = Recipients::parse(&[recipient]).unwrap();
        let index = SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1795140000,
            revision: 7,
            keys: 1,
            size: 0,
            chunks: vec![],
        };
        let a = ChunkWriter::new(&vault, &recipients)
            .unwrap()
            .commit(&index)
            .unwrap();
        let b = ChunkWriter::new(&vault, &recipients)
            .unwrap()
            .commit(&index)
            .unwrap();
        assert_eq!(a, "refs/sprayvault/etcd/20261120T020000Z-node1");
        assert_eq!(b, "refs/sprayvault/etcd/20261120T020000Z-node1.2");
        assert_eq!(list(&vault).unwrap().len(), 2);
    }
}
