//! Which stored snapshot `--at` means: `latest`, a snapshot's name (or a
//! prefix of its commit id), an etcd revision, a backup (commit id, tag,
//! `latest~N`: the snapshot that backup took), or a date (the last snapshot
//! taken at or before it).

use super::store::{StoredSnapshot, PREFIX};
use crate::error::{Classify, ErrorClass};
use crate::vault::rev::parse_date;
use crate::vault::{Vault, VaultError};

/// Why `--at` names no snapshot; each says what to give instead.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    #[error("the vault holds no etcd snapshot; backups take one from a member of the inventory's etcd group")]
    NoSnapshots,
    #[error("etcd revision {0} is out of range")]
    RevisionRange(String),
    #[error("no etcd snapshot at revision {0}; `sprayvault etcd ls` lists the revisions held")]
    NoRevision(u64),
    #[error("no etcd snapshot taken at or before {0}; `sprayvault etcd ls` lists them")]
    NoneBefore(String),
    #[error("backup {at} took etcd snapshot {name}, which has been pruned; `sprayvault etcd ls` lists those left")]
    Pruned { at: String, name: String },
    #[error("backup {0} holds no etcd snapshot (its run took none or failed to); give a snapshot name, revision or date from `sprayvault etcd ls`")]
    NoneInBackup(String),
    #[error("no etcd snapshot {0:?}: give latest, a name or revision from `sprayvault etcd ls`, a backup (commit, tag, latest~N), or a date")]
    Unknown(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl Classify for PickError {
    fn class(&self) -> ErrorClass {
        match self {
            PickError::Vault(v) => v.class(),
            _ => ErrorClass::Failed,
        }
    }
}

/// Picks one of `snaps` (oldest first).
pub fn pick<'a>(
    vault: &Vault,
    snaps: &'a [StoredSnapshot],
    at: Option<&str>,
) -> Result<&'a StoredSnapshot, PickError> {
    if snaps.is_empty() {
        return Err(PickError::NoSnapshots);
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
            .map_err(|_| PickError::RevisionRange(at.to_string()))?;
        return snaps
            .iter()
            .rev()
            .find(|s| s.index.revision == rev)
            .ok_or(PickError::NoRevision(rev));
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
            .ok_or_else(|| PickError::NoneBefore(at.to_string()));
    }
    if let Ok(commit) = vault.resolve(Some(at)) {
        let (_, record) = vault.commit_info(commit)?;
        let taken = record
            .etcd
            .as_ref()
            .and_then(|e| e.reference())
            .and_then(|r| r.strip_prefix(PREFIX))
            .map(str::to_string);
        return match taken {
            Some(n) => snaps.iter().find(|s| s.name == n).ok_or(PickError::Pruned {
                at: at.to_string(),
                name: n,
            }),
            None => Err(PickError::NoneInBackup(at.to_string())),
        };
    }
    Err(PickError::Unknown(at.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::index::SnapshotIndex;
    use crate::vault::config::VaultConfig;

    fn snap(name: &str, commit: &str, taken: i64, revision: u64) -> StoredSnapshot {
        StoredSnapshot {
            name: name.into(),
            commit: commit.into(),
            index: SnapshotIndex {
                node: "node1".into(),
                member: "etcd1".into(),
                taken,
                revision,
                keys: 1,
                size: 0,
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
    fn at_takes_names_revisions_commits_and_dates() {
        let dir = tempfile::tempdir().unwrap();
        let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let config = VaultConfig::new(vec![recipient.into()], &[], &[]).unwrap();
        let vault = Vault::init(&dir.path().join("v"), config).unwrap();
        // 2026-11-20T02:00:00Z and a day later.
        let snaps = vec![
            snap("20261120T020000Z-node1", "aaaa1111", 1795140000, 100),
            snap("20261121T020000Z-node1", "bbbb2222", 1795226400, 250),
        ];
        let name = |at: Option<&str>| {
            pick(&vault, &snaps, at)
                .map(|s| s.name.as_str())
                .map_err(|e| e.to_string())
        };
        assert_eq!(name(None), Ok("20261121T020000Z-node1"));
        assert_eq!(name(Some("latest")), Ok("20261121T020000Z-node1"));
        assert_eq!(
            name(Some("refs/sprayvault/etcd/20261120T020000Z-node1")),
            Ok("20261120T020000Z-node1")
        );
        assert_eq!(name(Some("100")), Ok("20261120T020000Z-node1"));
        assert_eq!(name(Some("bbbb")), Ok("20261121T020000Z-node1"));
        assert_eq!(name(Some("2026-11-20")), Ok("20261120T020000Z-node1"));
        assert_eq!(name(Some("2026-11-21T01:59")), Ok("20261120T020000Z-node1"));
        assert_eq!(name(Some("2026-11-22")), Ok("20261121T020000Z-node1"));
        let e = name(Some("101")).unwrap_err();
        assert!(e.contains("no etcd snapshot at revision 101"), "{e}");
        let e = name(Some("2026-11-19")).unwrap_err();
        assert!(e.contains("at or before 2026-11-19"), "{e}");
        // The vault's first commit is a backup that took no snapshot.
        let e = name(Some("latest~0")).unwrap_err();
        assert!(e.contains("holds no etcd snapshot"), "{e}");
        let e = name(Some("tuesday")).unwrap_err();
        assert!(e.contains("no etcd snapshot \"tuesday\""), "{e}");
        let e = pick(&vault, &[], None).unwrap_err().to_string();
        assert!(e.contains("holds no etcd snapshot"), "{e}");
    }
}
