//! etcd snapshots: taken from a healthy member during backup, verified,
//! chunked, compressed, encrypted and deduplicated in the vault, listed,
//! exported for `etcdctl snapshot restore`, and pruned by a retention policy.

pub mod capture;
pub mod chunker;
pub mod env;
pub mod index;
pub mod member;
pub mod prune;
pub mod restore;
pub mod select;
pub mod store;
pub mod trailer;
pub mod trial;

use crate::source::{SshOptions, Target};
use crate::vault::crypto::Recipients;
use crate::vault::mac::MacKey;
use crate::vault::{Vault, VaultError};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the snapshot step of a backup did.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotReport {
    pub reference: String,
    pub node: String,
    pub member: String,
    pub revision: u64,
    pub keys: u64,
    pub size: u64,
    pub chunks: usize,
    pub new_chunks: usize,
    pub bytes_added: u64,
    /// Snapshot refs that could not be read and were skipped (name, why).
    pub skipped: Vec<(String, String)>,
}

/// Tries the members in order until one gives a verified snapshot. Returns
/// the report, or every member's reason.
pub async fn snapshot(
    vault: &Vault,
    members: &[Target],
    ssh: &SshOptions,
    key: &MacKey,
    recipients: &Recipients,
) -> Result<Result<SnapshotReport, Vec<String>>, VaultError> {
    snapshot_with_envs(vault, members, &BTreeMap::new(), ssh, key, recipients).await
}

/// Like [`snapshot`], with the `/etc/etcd.env` already read from some
/// members (by node name), so their snapshot needs no read of its own.
pub async fn snapshot_with_envs(
    vault: &Vault,
    members: &[Target],
    envs: &BTreeMap<String, Vec<u8>>,
    ssh: &SshOptions,
    key: &MacKey,
    recipients: &Recipients,
) -> Result<Result<SnapshotReport, Vec<String>>, VaultError> {
    let mut reasons = Vec::new();
    for t in members {
        let mut writer = store::ChunkWriter::new(vault, recipients)?;
        let env = envs.get(&t.node).map(Vec::as_slice);
        match capture::take_with_env(t, ssh, env, key, &mut writer).await {
            Ok(index) => {
                let (new_chunks, bytes_added) = (writer.new_chunks, writer.bytes_added);
                let skipped = std::mem::take(&mut writer.skipped);
                let reference = writer.commit(&index)?;
                return Ok(Ok(SnapshotReport {
                    reference,
                    node: index.node.clone(),
                    member: index.member.clone(),
                    revision: index.revision,
                    keys: index.keys,
                    size: index.size,
                    chunks: index.chunks.len(),
                    new_chunks,
                    bytes_added,
                    skipped,
                }));
            }
            Err(why) => reasons.push(why),
        }
    }
    Ok(Err(reasons))
}
