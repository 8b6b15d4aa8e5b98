//! etcd snapshots in the vault: one commit per snapshot, each on a ref of
//! its own under `refs/sprayvault/etcd/`, so that pruning a snapshot is
//! deleting its ref (and letting git collect what no ref reaches) without
//! rewriting the backup history on `main`. Since index version 3 the file
//! is stored as 4 KiB units in packs (`crate::vault::packs`), so the pages
//! bbolt did not change are stored once; chunks of versions 1 and 2 stay
//! readable. `super::reassemble` reads either back.

use super::index::SnapshotIndex;
use crate::vault::packs::PackWriter;
use crate::vault::replicate::pruned::PrunedRecord;
use crate::vault::snapshots::SnapshotCommit;
use crate::vault::trust::{SignedRecord, TrustError, TrustedVault};
use crate::vault::{Vault, VaultError};
use git2::Oid;
use std::collections::HashMap;

pub use crate::vault::snapshots::PREFIX;

/// A snapshot as listed from its ref.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredSnapshot {
    pub name: String,
    pub commit: String,
    #[serde(flatten)]
    pub index: SnapshotIndex,
    #[serde(skip)]
    pub chunk_blobs: HashMap<String, Oid>,
    /// The page map's blob and the `packs` tree (version 3).
    #[serde(skip)]
    pub map_blob: Option<Oid>,
    #[serde(skip)]
    pub packs_tree: Option<Oid>,
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
    let index = SnapshotIndex::parse(&tree.index).map_err(|e| damaged(e.to_string()))?;
    if index.paged() && tree.map.is_none() {
        return Err(damaged("no page map".into()));
    }
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
        map_blob: tree.map,
        packs_tree: tree.packs,
    })
}

/// The packs of a snapshot (none for chunked ones), by mac.
pub fn packs(vault: &Vault, snap: &StoredSnapshot) -> Result<Vec<(String, Oid)>, VaultError> {
    match snap.packs_tree {
        Some(t) => vault.snapshot_packs(t),
        None => Ok(Vec::new()),
    }
}

/// The packs a new snapshot of `node` may refer to: those of the newest
/// paged snapshot of that node and of the newest of all.
pub fn base_packs(
    vault: &Vault,
    snaps: &[StoredSnapshot],
    node: &str,
) -> Result<Vec<(String, Oid)>, VaultError> {
    let newest = |of_node: bool| {
        snaps
            .iter()
            .filter(|s| s.index.paged() && (!of_node || s.index.node == node))
            .max_by_key(|s| (s.index.taken, &s.name))
    };
    let mut out: Vec<(String, Oid)> = Vec::new();
    let (own, any) = (newest(true), newest(false));
    for s in [own, any.filter(|a| own.is_none_or(|o| o.name != a.name))]
        .into_iter()
        .flatten()
    {
        out.extend(packs(vault, s)?);
    }
    Ok(out)
}

/// Writes the commit and ref of the snapshot `index` describes, whose
/// map and packs `writer` stored; returns the ref name.
pub fn commit(writer: PackWriter<'_>, index: &SnapshotIndex) -> Result<String, VaultError> {
    writer.commit(&SnapshotCommit {
        index: &index.to_text(),
        node: &index.node,
        member: &index.member,
        taken: index.taken,
        revision: index.revision,
        keys: index.keys,
    })
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
    use crate::etcd::pages::UNIT;
    use crate::etcd::reassemble::read;
    use crate::vault::config::VaultConfig;
    use crate::vault::crypto::Identity;
    use crate::vault::session::Session;

    struct Fixture {
        dir: tempfile::TempDir,
        vault: Vault,
        identity: Identity,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        let id_path = dir.path().join("identity");
        let secret = age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_string();
        std::fs::write(&id_path, secret + "\n").unwrap();
        std::fs::set_permissions(
            &id_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let config = VaultConfig::new(vec![key.to_public().to_string()], &[], &[]).unwrap();
        let vault = Vault::init(&dir.path().join("v"), config).unwrap();
        let identity = Identity::load(&id_path).unwrap();
        Fixture {
            dir,
            vault,
            identity,
        }
    }

    fn index(taken: i64, size: u64) -> SnapshotIndex {
        SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken,
            revision: 7,
            keys: 1,
            size,
            chunks: vec![],
            map: None,
            etcd: None,
            hashkv: None,
        }
    }

    /// Stores `file` as a snapshot taken at `taken`, fed in pieces of odd
    /// sizes, reusing the packs of the snapshots stored before; returns
    /// the blobs it wrote.
    fn store(f: &Fixture, taken: i64, file: &[u8]) -> usize {
        let previous = f.vault.backup(f.vault.head().unwrap()).unwrap();
        let mut session = Session::new(&f.vault, &previous).unwrap();
        let snaps = list(&f.vault).unwrap();
        let mut w = session.snapshot(base_packs(&f.vault, &snaps, "node1").unwrap());
        for piece in file.chunks(5000) {
            w.push(piece).unwrap();
        }
        let mut idx = index(taken, file.len() as u64);
        idx.map = Some(w.finish().unwrap());
        let blobs = w.counts().new_blobs;
        commit(w, &idx).unwrap();
        blobs
    }

    fn reassemble(f: &Fixture, taken: i64) -> Vec<u8> {
        let snaps = list(&f.vault).unwrap();
        let snap = snaps.iter().find(|s| s.index.taken == taken).unwrap();
        let mut out = Vec::new();
        read(&f.vault, snap, &f.identity, |p| {
            out.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        out
    }

    /// A database of `units` distinct 4 KiB pages and a 32-byte trailer.
    fn database(units: usize, seed: u8) -> Vec<u8> {
        let mut file = Vec::new();
        for u in 0..units {
            let mut page = vec![seed; UNIT];
            page[..8].copy_from_slice(&(u as u64).to_le_bytes());
            file.extend_from_slice(&page);
        }
        file.extend_from_slice(&[0xee; 32]);
        file
    }

    #[test]
    fn a_snapshot_stores_only_the_pages_that_changed_and_reads_back_whole() {
        let f = fixture();
        // 300 pages: 3 packs, and a map.
        let first = database(300, 1);
        assert_eq!(store(&f, 1795140000, &first), 4);
        assert_eq!(reassemble(&f, 1795140000), first);
        // Three pages rewritten in place, two appended, a new trailer.
        let mut second = first[..300 * UNIT].to_vec();
        for u in [0, 150, 299] {
            second[u * UNIT + 100] ^= 0xff;
        }
        second.extend_from_slice(&database(2, 9)[..2 * UNIT]);
        second.extend_from_slice(&[0xdd; 32]);
        // One new pack (5 pages and the trailer) and the map.
        assert_eq!(store(&f, 1795143600, &second), 2);
        assert_eq!(reassemble(&f, 1795143600), second);
        assert_eq!(reassemble(&f, 1795140000), first);
        // Equal pages within one snapshot are stored once, and a file
        // that is not a whole number of pages ends with a short unit.
        let mut third = vec![0u8; 40 * UNIT];
        third.extend_from_slice(b"tail");
        assert_eq!(store(&f, 1795147200, &third), 2);
        assert_eq!(reassemble(&f, 1795147200), third);
    }

    #[test]
    fn a_page_list_the_backup_host_did_not_seal_is_not_reused() {
        let f = fixture();
        let first = database(200, 1);
        store(&f, 1795140000, &first);
        let lists = f.vault.local_dir().join(crate::vault::packs::PAGES_DIR);
        let mut names: Vec<_> = std::fs::read_dir(&lists)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&names[0]).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // One list altered (a unit's mac swapped): its pack is stored afresh.
        let text = std::fs::read_to_string(&names[0]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let forged = text.replacen(lines[2], lines[3], 1);
        std::fs::write(&names[0], forged).unwrap();
        assert_eq!(store(&f, 1795143600, &first), 2);
        assert_eq!(reassemble(&f, 1795143600), first);
        drop(f.dir);
    }

    #[test]
    fn a_failed_snapshot_leaves_no_page_list() {
        let f = fixture();
        let previous = f.vault.backup(f.vault.head().unwrap()).unwrap();
        let mut session = Session::new(&f.vault, &previous).unwrap();
        let mut w = session.snapshot(vec![]);
        w.push(&database(300, 3)).unwrap();
        drop(w);
        let lists = f.vault.local_dir().join(crate::vault::packs::PAGES_DIR);
        assert_eq!(std::fs::read_dir(&lists).unwrap().count(), 0);
        assert_eq!(session.counts(), crate::vault::blobs::Counts::default());
    }

    /// Found by back-to-back backups in the lab: a second snapshot of the
    /// same node within one second failed the whole run on an existing ref.
    #[test]
    fn regression_two_snapshots_in_one_second_get_distinct_refs() {
        let f = fixture();
        let a = store(&f, 1795140000, b"");
        let b = store(&f, 1795140000, b"");
        assert_eq!((a, b), (1, 1));
        let names: Vec<String> = list(&f.vault)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            ["20261120T020000Z-node1", "20261120T020000Z-node1.2"]
        );
    }
}
