//! A writing session: the one way content and commits get into the vault
//! (vault-layout, "Content identity and deduplication" and "Writing a
//! commit"). A run opens one session on the parent commit; every node file,
//! control host file, fact cache file, etcd chunk and snapshot index goes
//! through it, and it writes the run's commits and refs.
//!
//! Invariants kept here: content whose mac is already known (from the parent
//! commit, or written earlier in this run) gets the existing blob, but only
//! when the backup host's bindings prove that blob holds that content;
//! anything else is encrypted once and written as a new blob, bound to its
//! mac before any commit refers to it. A file identical on a node and on the
//! control host is stored once. The counters hold every new object the
//! run's commits refer to, and its ciphertext bytes.

use super::bindings::Bindings;
use super::blobs::{Blobs, Counts};
use super::config::VaultConfig;
use super::control::ControlWrite;
use super::crypto::Recipients;
use super::facts_index::FactEntry;
use super::mac::MacKey;
use super::packs::PackWriter;
use super::{Backup, NodeWrite, Vault, VaultError};
use git2::Oid;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

pub struct Session<'v> {
    vault: &'v Vault,
    parent: Oid,
    config: VaultConfig,
    recipients: Recipients,
    key: MacKey,
    /// Content blobs reusable by mac (the parent's proven ones and this
    /// run's), shared with the tasks that read nodes.
    blobs: Arc<Blobs>,
    /// This run's new blobs that its commits refer to (bound and counted).
    adopted: HashSet<Oid>,
    bindings: Bindings,
    counts: Counts,
}

impl<'v> Session<'v> {
    /// A session writing on top of `previous`, the branch's newest commit:
    /// its configuration (upgraded to this version), its recipients, the
    /// local keyed-hash key, and every node file blob it holds as reusable.
    pub fn new(vault: &'v Vault, previous: &Backup) -> Result<Session<'v>, VaultError> {
        let config = previous.config.upgraded();
        let recipients = Recipients::parse(&config.recipients)?;
        let key = vault.mac_key()?;
        let blobs = Blobs::open(vault.repo.path(), Recipients::parse(&config.recipients)?)?;
        let mut session = Session {
            vault,
            parent: previous.commit,
            config,
            blobs: Arc::new(blobs),
            recipients,
            key,
            adopted: HashSet::new(),
            bindings: Bindings::load(vault)?,
            counts: Counts::default(),
        };
        for state in previous.nodes.values() {
            session.learn(&state.manifest, &state.blobs);
        }
        Ok(session)
    }

    /// Makes the files of a parent's `manifest`, stored as `blobs` (by
    /// path), reusable where the bindings prove them.
    pub fn learn(
        &mut self,
        manifest: &super::manifest::Manifest,
        blobs: &std::collections::BTreeMap<String, Oid>,
    ) {
        for e in manifest.files() {
            if let (Some(mac), Some(oid)) = (&e.mac, blobs.get(&e.path)) {
                self.know(mac, *oid);
            }
        }
    }

    pub fn vault(&self) -> &'v Vault {
        self.vault
    }
    /// The configuration the run's commit records.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }
    pub fn key(&self) -> &MacKey {
        &self.key
    }
    /// What this session wrote so far (chunks of snapshots once committed).
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Makes content `mac`, stored as blob `oid`, reusable, if the bindings
    /// prove that `oid` holds it.
    pub fn know(&mut self, mac: &str, oid: Oid) {
        if self.bindings.proven(mac, oid) {
            self.blobs.know(mac, oid);
        }
    }

    /// The content store the tasks reading nodes write through.
    pub fn blobs(&self) -> Arc<Blobs> {
        Arc::clone(&self.blobs)
    }

    /// Makes blob `oid`, holding the content whose mac is `mac`, part of the
    /// run's commit: a blob this run wrote is bound to its mac and counted
    /// (once), one it reused was proven when it became known.
    pub fn adopt(&mut self, mac: &str, oid: Oid) -> Result<(), VaultError> {
        if let Some(size) = self.blobs.written(oid) {
            if self.adopted.insert(oid) {
                self.bindings.record(mac, oid)?;
                self.counts.add(size);
            }
        }
        Ok(())
    }

    /// A new blob holding `content`, never shared: for content whose identity
    /// is not its bytes (a fact cache file is known by its stable facts).
    pub fn put_unshared(&mut self, content: &[u8]) -> Result<Oid, VaultError> {
        let (oid, size) = self.vault.write_encrypted(&self.recipients, content)?;
        self.counts.add(size);
        Ok(oid)
    }

    /// The blob holding `content` (whose mac is `mac`): the known one, or a
    /// new one encrypted now.
    pub fn put(&mut self, mac: &str, content: &[u8]) -> Result<Oid, VaultError> {
        let oid = self.blobs.write(mac, content)?;
        self.adopt(mac, oid)?;
        Ok(oid)
    }

    /// A writer for one etcd snapshot, reusing the units of the packs
    /// `base` (`(mac, blob)` from stored snapshots' trees) that the backup
    /// host's sealed page lists describe. Its packs count in this session
    /// once it commits.
    pub fn snapshot(&mut self, base: impl IntoIterator<Item = (String, Oid)>) -> PackWriter<'_> {
        PackWriter::new(
            self.vault,
            &self.recipients,
            &mut self.counts,
            self.key.clone(),
            base,
        )
    }

    /// Writes the run's backup commit on top of the parent and moves the
    /// branch to it by compare-and-swap, ending the session.
    pub fn commit_backup(
        self,
        nodes: BTreeMap<String, NodeWrite>,
        facts: &BTreeMap<String, (FactEntry, Oid)>,
        control: ControlWrite,
        record: &super::message::RunRecord,
    ) -> Result<Oid, VaultError> {
        self.vault.note_unsynced(self.blobs.written_oids());
        self.vault
            .commit_backup(self.parent, &self.config, nodes, facts, control, record)
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::VaultConfig;
    use super::super::snapshots::SnapshotCommit;
    use super::*;

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn vault(dir: &tempfile::TempDir) -> Vault {
        let config = VaultConfig::new(vec![RECIPIENT.into()], &[], &[]).unwrap();
        Vault::init(&dir.path().join("v"), config).unwrap()
    }

    fn session(vault: &Vault) -> Session<'_> {
        let previous = vault.backup(vault.head().unwrap()).unwrap();
        Session::new(vault, &previous).unwrap()
    }

    fn mac(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn snap(index: &str) -> SnapshotCommit<'_> {
        SnapshotCommit {
            index,
            node: "node1",
            member: "etcd1",
            taken: 1795140000,
            revision: 7,
            keys: 1,
        }
    }

    #[test]
    fn content_is_encrypted_once_per_mac_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(&dir);
        let mut s = session(&vault);
        let a = s.put(&mac('a'), b"same").unwrap();
        assert_eq!(s.put(&mac('a'), b"same").unwrap(), a);
        let counts = s.counts();
        assert_eq!(counts.new_blobs, 1);
        assert!(counts.bytes_added > 4, "{counts:?}");
        // Fact files are never shared, and count too.
        assert_ne!(s.put_unshared(b"same").unwrap(), a);
        assert_eq!(s.counts().new_blobs, 2);
        // A blob the bindings do not prove is never reused for a mac.
        let mut s = session(&vault);
        s.know(&mac('b'), a);
        assert_ne!(s.put(&mac('b'), b"other").unwrap(), a);
        // One the backup host bound is.
        s.know(&mac('a'), a);
        assert_eq!(s.put(&mac('a'), b"same").unwrap(), a);
        assert_eq!(s.counts().new_blobs, 1);
    }

    #[test]
    fn packs_count_in_the_session_once_their_snapshot_commits() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(&dir);
        let mut s = session(&vault);
        // A member that fails after storing a pack: nothing counted.
        let mut w = s.snapshot(vec![]);
        w.push(&[1u8; 4096 * 200]).unwrap();
        w.finish().unwrap();
        assert_eq!(w.counts().new_blobs, 2);
        drop(w);
        assert_eq!(s.counts(), Counts::default());
        let mut w = s.snapshot(vec![]);
        w.push(b"pages").unwrap();
        w.finish().unwrap();
        let counts = w.counts();
        assert_eq!(counts.new_blobs, 2);
        let name = w.commit(&snap("index")).unwrap();
        assert_eq!(name, "refs/sprayvault/etcd/20261120T020000Z-node1");
        assert_eq!(s.counts(), counts);
        let (_, oid) = vault.snapshot_refs().unwrap().remove(0);
        let tree = vault.snapshot_tree(&name, oid).unwrap();
        assert_eq!(tree.index, b"index");
        assert!(tree.map.is_some());
        assert_eq!(vault.snapshot_packs(tree.packs.unwrap()).unwrap().len(), 1);
    }

    #[test]
    fn only_snapshot_refs_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(&dir);
        let mut s = session(&vault);
        let mut w = s.snapshot(vec![]);
        w.finish().unwrap();
        let name = w.commit(&snap("index")).unwrap();
        assert!(vault.delete_snapshot_ref(super::super::BRANCH).is_err());
        assert!(vault.head().is_ok());
        vault.snapshot_ref(&name).unwrap();
        vault.delete_snapshot_ref(&name).unwrap();
        assert!(vault.snapshot_refs().unwrap().is_empty());
    }
}
