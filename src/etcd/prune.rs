//! Retention for etcd snapshots (keep-last, -daily, -weekly, -monthly, as
//! restic's `forget` counts them), and freeing the space: removing a
//! snapshot's ref, then letting the system `git gc --prune=now` drop the
//! objects no ref reaches. The backup history on `main` is never touched.

use super::store::{StoredSnapshot, PREFIX};
use crate::vault::{Vault, VaultError};
use std::collections::HashSet;
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.last + self.daily + self.weekly + self.monthly == 0
    }
}

/// Names of the snapshots the policy keeps (`snaps` oldest first).
pub fn keep(snaps: &[StoredSnapshot], policy: Policy) -> HashSet<String> {
    let mut kept = HashSet::new();
    let newest_first: Vec<&StoredSnapshot> = snaps.iter().rev().collect();
    for s in newest_first.iter().take(policy.last) {
        kept.insert(s.name.clone());
    }
    let buckets: [(usize, fn(OffsetDateTime) -> String); 3] = [
        (policy.daily, |t| {
            format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
        }),
        (policy.weekly, |t| {
            let (y, w, _) = t.to_iso_week_date();
            format!("{y}-W{w:02}")
        }),
        (policy.monthly, |t| {
            format!("{}-{:02}", t.year(), u8::from(t.month()))
        }),
    ];
    for (n, bucket) in buckets {
        let mut seen = HashSet::new();
        for s in &newest_first {
            if seen.len() >= n {
                break;
            }
            let t = OffsetDateTime::from_unix_timestamp(s.index.taken)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            if seen.insert(bucket(t)) {
                kept.insert(s.name.clone());
            }
        }
    }
    kept
}

fn dir_size(path: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Removes the refs of `forget`, then collects unreachable objects.
/// Returns the bytes the vault directory shrank by.
pub fn remove(vault: &Vault, forget: &[&StoredSnapshot]) -> Result<i64, VaultError> {
    let objects = vault.dir().join("objects");
    let before = dir_size(&objects) as i64;
    for s in forget {
        let name = format!("{PREFIX}{}", s.name);
        let mut r = vault
            .repo()
            .find_reference(&name)
            .map_err(|source| VaultError::Git {
                dir: vault.dir().into(),
                what: format!("finding {name}"),
                source,
            })?;
        r.delete().map_err(|source| VaultError::Git {
            dir: vault.dir().into(),
            what: format!("deleting {name}"),
            source,
        })?;
    }
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(vault.dir())
        .args([
            "-c",
            "gc.reflogExpire=now",
            "-c",
            "gc.reflogExpireUnreachable=now",
            "gc",
            "--prune=now",
            "--quiet",
        ])
        .output()
        .map_err(|source| VaultError::Io {
            path: "git".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(VaultError::Damaged {
            rev: "gc".into(),
            what: format!(
                "git gc failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(before - dir_size(&objects) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::index::SnapshotIndex;

    fn snap(name: &str, taken: i64) -> StoredSnapshot {
        StoredSnapshot {
            name: name.into(),
            commit: String::new(),
            index: SnapshotIndex {
                node: "n".into(),
                member: "e".into(),
                taken,
                revision: 0,
                keys: 0,
                size: 0,
                chunks: vec![],
            },
            chunk_blobs: Default::default(),
        }
    }

    #[test]
    fn policies_count_buckets() {
        let day = 86400;
        // 60 nightly snapshots from 2026-01-01.
        let snaps: Vec<StoredSnapshot> = (0..60)
            .map(|i| snap(&format!("s{i:02}"), 1767225600 + i * day))
            .collect();
        assert_eq!(
            keep(
                &snaps,
                Policy {
                    last: 3,
                    ..Default::default()
                }
            ),
            ["s59", "s58", "s57"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert_eq!(
            keep(
                &snaps,
                Policy {
                    daily: 7,
                    ..Default::default()
                }
            )
            .len(),
            7
        );
        let monthly = keep(
            &snaps,
            Policy {
                monthly: 12,
                ..Default::default()
            },
        );
        // January, February, March 2026: the newest of each.
        assert_eq!(
            monthly,
            ["s59", "s58", "s30"]
                .iter()
                .map(|s| s.to_string())
                .collect::<HashSet<_>>()
        );
        let weekly = keep(
            &snaps,
            Policy {
                weekly: 2,
                ..Default::default()
            },
        );
        assert_eq!(weekly.len(), 2);
        assert!(keep(&snaps, Policy::default()).is_empty());
    }
}
