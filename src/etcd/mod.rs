//! etcd snapshots: taken from a healthy member during backup, verified,
//! chunked, compressed, encrypted and deduplicated in the vault, listed,
//! exported for `etcdctl snapshot restore`, and pruned by a retention policy.

pub mod capture;
pub mod env;
pub(crate) mod flags;
pub mod index;
pub(crate) mod member;
pub mod pages;
pub mod prune;
pub mod reassemble;
pub mod restore;
pub mod run;
pub mod select;
pub mod store;
pub mod trailer;
pub mod trial;

use crate::source::{SshOptions, Target};
use crate::vault::session::Session;
use crate::vault::VaultError;
use serde::Serialize;

/// What the snapshot step of a backup did.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotReport {
    pub reference: String,
    pub node: String,
    pub member: String,
    pub revision: u64,
    pub keys: u64,
    pub size: u64,
    /// Packs the snapshot refers to.
    pub packs: usize,
    /// Blobs it wrote: its new packs and its page map.
    pub new_blobs: usize,
    pub bytes_added: u64,
    /// Snapshot refs that could not be read and were skipped (name, why).
    pub skipped: Vec<(String, String)>,
}

/// Tries the members in order until one gives a verified snapshot, stored
/// through `session`. Returns the report, or every member's reason. A
/// stream longer than `limit` (else 4 times the newest stored snapshot,
/// at least [`MIN_LIMIT`]; [`FIRST_LIMIT`] when there is none) is refused.
pub async fn snapshot(
    session: &mut Session<'_>,
    members: &[Target],
    ssh: &SshOptions,
    limit: Option<u64>,
) -> Result<Result<SnapshotReport, Vec<String>>, VaultError> {
    let key = session.key().clone();
    let (snaps, bad) = store::list_readable(session.vault())?;
    let skipped: Vec<(String, String)> = bad.into_iter().map(|(n, e)| (n, e.to_string())).collect();
    let limit = limit.unwrap_or_else(|| stream_limit(&snaps));
    let mut reasons = Vec::new();
    let dir = session.vault().dir().to_path_buf();
    for t in members {
        // Each member's writer starts from the stored snapshots: packs a
        // failed member left are not reused (nor counted).
        let base = store::base_packs(session.vault(), &snaps, &t.node)?;
        let mut writer = session.snapshot(base);
        let taken = capture::take(t, ssh, &key, &mut writer, limit).await;
        if taken.is_err() && writer.disk_full() {
            return Err(VaultError::DiskFull {
                dir,
                what: String::new(),
            });
        }
        match taken {
            Ok(index) => {
                let counts = writer.counts();
                let packs = writer.packs();
                let reference = store::commit(writer, &index)?;
                return Ok(Ok(SnapshotReport {
                    reference,
                    node: index.node.clone(),
                    member: index.member.clone(),
                    revision: index.revision,
                    keys: index.keys,
                    size: index.size,
                    packs,
                    new_blobs: counts.new_blobs,
                    bytes_added: counts.bytes_added,
                    skipped,
                }));
            }
            Err(why) => reasons.push(why.to_string()),
        }
    }
    Ok(Err(reasons))
}

/// Says which members a snapshot is about to be tried from, in order.
pub fn announce(members: &[Target], progress: &dyn crate::progress::Progress) {
    progress.info(&format!(
        "etcd snapshot from {}",
        members
            .iter()
            .map(|m| m.node.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    ));
}

/// The snapshot stream's cap when no stored snapshot says otherwise: etcd's
/// largest supported backend quota (8 GiB) and its trailer.
pub const FIRST_LIMIT: u64 = (8 << 30) + 32;
/// The cap never goes below this, however small the last snapshot was.
pub const MIN_LIMIT: u64 = 256 << 20;

/// 4 times the newest stored snapshot's size, at least [`MIN_LIMIT`].
pub fn stream_limit(snaps: &[store::StoredSnapshot]) -> u64 {
    match snaps.iter().max_by_key(|s| s.index.taken) {
        Some(s) => s.index.size.saturating_mul(4).max(MIN_LIMIT),
        None => FIRST_LIMIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::index::SnapshotIndex;

    fn stored(taken: i64, size: u64) -> store::StoredSnapshot {
        store::StoredSnapshot {
            name: format!("s{taken}"),
            commit: String::new(),
            index: SnapshotIndex {
                node: "n".into(),
                member: "e".into(),
                taken,
                revision: 0,
                keys: 0,
                size,
                chunks: vec![],
                map: None,
                etcd: None,
                hashkv: None,
            },
            chunk_blobs: Default::default(),
            map_blob: None,
            packs_tree: None,
        }
    }

    #[test]
    fn the_stream_limit_follows_the_newest_snapshot() {
        assert_eq!(stream_limit(&[]), FIRST_LIMIT);
        // 4 times the newest (not the largest), never below MIN_LIMIT.
        let snaps = [stored(1, 900 << 20), stored(2, 100 << 20)];
        assert_eq!(stream_limit(&snaps), 400 << 20);
        assert_eq!(stream_limit(&[stored(1, 1 << 20)]), MIN_LIMIT);
    }
}
