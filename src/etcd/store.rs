//! etcd snapshots in the vault: one commit per snapshot, each on a ref of
//! its own under `refs/sprayvault/etcd/`, so that pruning a snapshot is
//! deleting its ref (and letting git collect what no ref reaches) without
//! rewriting the backup history on `main`. Chunks are gzip-compressed, then
//! age-encrypted, and named by their keyed hash, so equal chunks of
//! different snapshots are stored once.

use super::index::SnapshotIndex;
use crate::vault::crypto::Identity;
use crate::vault::replicate::pruned::PrunedRecord;
use crate::vault::snapshots::SnapshotCommit;
use crate::vault::trust::{SignedRecord, TrustError, TrustedVault};
use crate::vault::{Vault, VaultError};
use git2::Oid;
use std::collections::HashMap;

pub use crate::vault::snapshots::{ChunkWriter, PREFIX};

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
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (name, oid) in vault.snapshot_refs()? {
        match read_one(vault, &name, oid) {
            Ok(s) => out.push(s),
            Err(e) => bad.push((name, e)),
        }
    }
    out.sort_by(|a, b| (a.index.taken, &a.name).cmp(&(b.index.taken, &b.name)));
    Ok((out, bad))
}

fn read_one(vault: &Vault, name: &str, oid: Option<Oid>) -> Result<StoredSnapshot, VaultError> {
    let damaged = |what: String| VaultError::Damaged {
        rev: name.to_string(),
        what,
    };
    let tree = vault.snapshot_tree(name, oid)?;
    let index = SnapshotIndex::parse(&tree.index).map_err(damaged)?;
    let chunk_blobs = tree.chunks;
    if let Some((mac, _)) = index
        .chunks
        .iter()
        .find(|(m, _)| !chunk_blobs.contains_key(m))
    {
        return Err(damaged(format!("chunk {mac} has no blob")));
    }
    Ok(StoredSnapshot {
        name: name.trim_start_matches(PREFIX).to_string(),
        commit: tree.commit.to_string(),
        index,
        chunk_blobs,
    })
}

/// Every chunk blob of `snaps`, by mac: what a new snapshot may reuse.
pub fn chunk_blobs(snaps: &[StoredSnapshot]) -> impl Iterator<Item = (String, Oid)> + '_ {
    snaps
        .iter()
        .flat_map(|s| s.chunk_blobs.iter().map(|(m, o)| (m.clone(), *o)))
}

/// Writes the commit and ref of the snapshot `index` describes, whose
/// chunks `writer` stored; returns the ref name.
pub fn commit(writer: ChunkWriter<'_>, index: &SnapshotIndex) -> Result<String, VaultError> {
    writer.commit(&SnapshotCommit {
        index: &index.to_text(),
        node: &index.node,
        member: &index.member,
        taken: index.taken,
        revision: index.revision,
        keys: index.keys,
    })
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
            error: source,
        })?;
    }
    Ok(())
}

/// `--at latest` picks the newest snapshot ref present, so a copy that
/// dropped newer refs would hand out an old snapshot. The newest
/// authenticated backup names the snapshot it took: it must be here, or
/// pruned here.
pub fn check_newest_present(
    trusted: &TrustedVault<'_>,
    snaps: &[StoredSnapshot],
) -> Result<(), TrustError> {
    let vault = trusted.vault();
    let (_, record) = vault.commit_info(trusted.trusted.head)?;
    let Some(reference) = record.etcd.as_ref().and_then(|e| e.reference()) else {
        return Ok(());
    };
    let name = reference.trim_start_matches(PREFIX);
    if snaps.iter().any(|s| s.name == name) {
        return Ok(());
    }
    let pruned = PrunedRecord::load(vault.dir())?;
    if pruned.entries().iter().any(|t| t.name == reference) {
        return Ok(());
    }
    Err(TrustError::SnapshotMissing {
        dir: vault.dir().to_path_buf(),
        backup: trusted.trusted.head.to_string()[..10].to_string(),
        snapshot: crate::term::escape(name).into_owned(),
    })
}

impl SignedRecord for StoredSnapshot {
    fn record_commit(&self) -> Option<Oid> {
        Oid::from_str(&self.commit).ok()
    }
    fn record_name(&self) -> String {
        self.name.clone()
    }
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
        let previous = vault.backup(vault.head().unwrap()).unwrap();
        let mut session = crate::vault::session::Session::new(&vault, &previous).unwrap();
        let index = SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1795140000,
            revision: 7,
            keys: 1,
            size: 0,
            chunks: vec![],
            etcd: None,
            hashkv: None,
        };
        let a = commit(session.snapshot(vec![]), &index).unwrap();
        let b = commit(session.snapshot(vec![]), &index).unwrap();
        assert_eq!(a, "refs/sprayvault/etcd/20261120T020000Z-node1");
        assert_eq!(b, "refs/sprayvault/etcd/20261120T020000Z-node1.2");
        assert_eq!(list(&vault).unwrap().len(), 2);
    }
}
