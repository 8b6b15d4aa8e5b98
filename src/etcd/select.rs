//! Which stored snapshot `--at` means: `latest`, a snapshot's name (or a
//! prefix of its commit id), an etcd revision, a backup (commit id, tag,
//! `latest~N`: the snapshot that backup took), or a date (the last snapshot
//! taken at or before it).

use super::store::{StoredSnapshot, PREFIX};
use crate::vault::rev::parse_date;
use crate::vault::Vault;

/// Picks one of `snaps` (oldest first). Errors are sentences that say what
/// to give instead.
pub fn pick<'a>(
    vault: &Vault,
    snaps: &'a [StoredSnapshot],
    at: Option<&str>,
) -> Result<&'a StoredSnapshot, String> {
    if snaps.is_empty() {
        return Err("the vault holds no etcd snapshot; backups take one from a member of the inventory's etcd group".into());
    }
    let at = at.unwrap_or("latest").trim();
    if at == "latest" {
        return Ok(&snaps[snaps.len() - 1]);
    }
    let name = at.strip_prefix(PREFIX).unwrap_or(at);
    if let Some(s) = snaps.iter().find(|s| s.name == name) {
        return Ok(s);
    }
    if !at.is_empty() && at.bytes().all(|b| b.is_ascii_digit()) {
        let rev: u64 = at
            .parse()
            .map_err(|_| format!("etcd revision {at} is out of range"))?;
        return snaps
            .iter()
            .rev()
            .find(|s| s.index.revision == rev)
            .ok_or_else(|| {
                format!("no etcd snapshot at revision {rev}; `sprayvault etcd ls` lists the revisions held")
            });
    }
    if at.len() >= 4 && at.bytes().all(|b| b.is_ascii_hexdigit()) {
        let found: Vec<&StoredSnapshot> =
            snaps.iter().filter(|s| s.commit.starts_with(at)).collect();
        if found.len() == 1 {
            return Ok(found[0]);
        }
    }
    if let Some(limit) = parse_date(at) {
        return snaps
            .iter()
            .rev()
            .find(|s| s.index.taken <= limit)
            .ok_or_else(|| {
                format!("no etcd snapshot taken at or before {at}; `sprayvault etcd ls` lists them")
            });
    }
    if let Ok(commit) = vault.resolve(Some(at)) {
        let (_, record) = vault.commit_info(commit).map_err(|e| e.to_string())?;
        let taken = record
            .etcd
            .as_deref()
            .and_then(|e| e.strip_prefix("ok "))
            .and_then(|e| e.split_whitespace().next())
            .and_then(|r| r.strip_prefix(PREFIX))
            .map(str::to_string);
        return match taken {
            Some(n) => snaps.iter().find(|s| s.name == n).ok_or_else(|| {
                format!("backup {at} took etcd snapshot {n}, which has been pruned; `sprayvault etcd ls` lists those left")
            }),
            None => Err(format!(
                "backup {at} holds no etcd snapshot (its run took none or failed to); give a snapshot name, revision or date from `sprayvault etcd ls`"
            )),
        };
    }
    Err(format!(
        "no etcd snapshot {at:?}: give latest, a name or revision from `sprayvault etcd ls`, a backup (commit, tag, latest~N), or a date"
    ))
}
