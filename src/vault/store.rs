//! Content storage with deduplication, the one place that decides whether
//! content needs encrypting (vault-layout, "Content identity and
//! deduplication"): content whose mac is already known (from the parent
//! commit, or written earlier in this run) gets the existing blob, but only
//! when the backup host's bindings prove that blob holds that content;
//! anything else is encrypted once and written as a new blob. Node files and the
//! control host's files go through the same store, so a file identical on a
//! node and on the control host is stored once.

use super::bindings::Bindings;
use super::crypto::Recipients;
use super::{Backup, Vault, VaultError};
use git2::Oid;
use std::collections::HashMap;

pub struct ContentStore<'a> {
    vault: &'a Vault,
    recipients: &'a Recipients,
    known: HashMap<String, Oid>,
    bindings: Bindings,
    /// Blobs this run wrote, and their ciphertext bytes.
    pub new_blobs: usize,
    pub bytes_added: u64,
}

impl<'a> ContentStore<'a> {
    /// A store that knows every file content blob of `previous` (nodes and
    /// control host), the parent commit of the run.
    pub fn new(
        vault: &'a Vault,
        recipients: &'a Recipients,
        previous: &Backup,
    ) -> Result<Self, VaultError> {
        let mut store = ContentStore {
            vault,
            recipients,
            known: HashMap::new(),
            bindings: Bindings::load(vault)?,
            new_blobs: 0,
            bytes_added: 0,
        };
        for state in previous.nodes.values() {
            for e in state.manifest.files() {
                if let (Some(mac), Some(oid)) = (&e.mac, state.blobs.get(&e.path)) {
                    store.know(mac, *oid);
                }
            }
        }
        Ok(store)
    }

    /// Makes content `mac`, stored as blob `oid`, reusable, if the bindings
    /// prove that `oid` holds it.
    pub fn know(&mut self, mac: &str, oid: Oid) {
        if self.bindings.proven(mac, oid) {
            self.known.entry(mac.to_string()).or_insert(oid);
        }
    }

    /// A new blob holding `content`, never shared: for content whose identity
    /// is not its bytes (a fact cache file is known by its stable facts).
    pub fn put_unshared(&mut self, content: &[u8]) -> Result<Oid, VaultError> {
        let (oid, size) = self.vault.write_encrypted(self.recipients, content)?;
        self.bytes_added += size;
        self.new_blobs += 1;
        Ok(oid)
    }

    /// The blob holding `content` (whose mac is `mac`): the known one, or a
    /// new one encrypted now.
    pub fn put(&mut self, mac: &str, content: &[u8]) -> Result<Oid, VaultError> {
        if let Some(oid) = self.known.get(mac) {
            return Ok(*oid);
        }
        let (oid, size) = self.vault.write_encrypted(self.recipients, content)?;
        self.bytes_added += size;
        self.new_blobs += 1;
        self.bindings.record(mac, oid)?;
        self.known.insert(mac.to_string(), oid);
        Ok(oid)
    }
}
