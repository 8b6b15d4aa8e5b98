//! Retention for etcd snapshots (keep-last, -hourly, -daily, -weekly, -monthly, as
//! restic's `forget` counts them), and freeing the space: recording the
//! snapshot's ref as pruned, removing it, then letting the system `git gc`
//! drop the objects no ref reaches and that are older than the grace period
//! (written, or last repacked, that long ago). The backup history on `main` is never touched.
//!
//! All of it runs under the vault lock (the caller passes it as proof), so
//! no sprayvault run writes meanwhile; the grace period (not `--prune=now`)
//! also keeps the young loose objects of any writer outside the lock, and of
//! reflog entries, for that long.

use super::store::{StoredSnapshot, PREFIX};
use crate::vault::lock::VaultLock;
use crate::vault::replicate::pruned::PrunedRecord;
use crate::vault::{Vault, VaultError};
use std::collections::HashSet;
use std::time::Duration;
use time::OffsetDateTime;

/// git's own default for `gc.pruneExpire`: unreachable objects younger
/// than two weeks are kept.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(14 * 86400);

/// `grace` as git's `--prune=` date: `now` for zero.
pub fn git_expiry(grace: Duration) -> String {
    match grace.as_secs() {
        0 => "now".into(),
        s => format!("{s}.seconds.ago"),
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    pub last: usize,
    pub hourly: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.last + self.hourly + self.daily + self.weekly + self.monthly == 0
    }
}

/// The name of the hour, day, week or month a time falls in.
type Bucket = fn(OffsetDateTime) -> String;

/// Names of the snapshots the policy keeps (`snaps` oldest first).
pub fn keep(snaps: &[StoredSnapshot], policy: Policy) -> HashSet<String> {
    let mut kept = HashSet::new();
    let newest_first: Vec<&StoredSnapshot> = snaps.iter().rev().collect();
    for s in newest_first.iter().take(policy.last) {
        kept.insert(s.name.clone());
    }
    let buckets: [(usize, Bucket); 4] = [
        (policy.hourly, |t| {
            format!(
                "{}-{:02}-{:02}T{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour()
            )
        }),
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

/// Records the refs of `forget` as pruned (`sprayvault/pruned`, for
/// `push --prune` and `pull`), removes them, then collects unreachable
/// objects older than `grace`. Returns the bytes the vault's
/// objects shrank by (objects younger than the grace are freed by a later
/// prune).
pub fn remove(
    vault: &Vault,
    _held: &VaultLock,
    forget: &[&StoredSnapshot],
    grace: Duration,
) -> Result<i64, VaultError> {
    let objects = vault.dir().join("objects");
    let before = dir_size(&objects) as i64;
    // The record first: a prune cut off after it and before a ref's deletion
    // leaves a recorded ref that still exists here, which `push --prune`
    // and `pull` treat as kept.
    let mut record = PrunedRecord::load(vault.dir())?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut refs = Vec::new();
    for s in forget {
        let name = format!("{PREFIX}{}", s.name);
        let commit = vault.snapshot_ref(&name)?;
        record.add(&name, commit, now);
        refs.push(name);
    }
    if !refs.is_empty() {
        record.save(vault.dir()).map_err(|e| {
            if e.is_disk_full() {
                VaultError::DiskFull {
                    dir: vault.dir().to_path_buf(),
                    what: "the record of pruned snapshots could not be written, so nothing was removed".into(),
                }
            } else {
                e
            }
        })?;
    }
    for name in refs {
        vault.delete_snapshot_ref(&name)?;
    }
    forget_page_lists(vault)?;
    let expiry = git_expiry(grace);
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(vault.dir())
        .env_remove("GIT_DIR")
        .args([
            "-c",
            &format!("gc.reflogExpire={expiry}"),
            "-c",
            &format!("gc.reflogExpireUnreachable={expiry}"),
            "gc",
            &format!("--prune={expiry}"),
            "--quiet",
        ])
        .output()
        .map_err(|source| VaultError::Io {
            path: "git".into(),
            error: source,
        })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        if said.contains("No space left on device") {
            // git removes its temporary packs; the refs are recorded as
            // pruned, and the next prune frees their objects.
            return Err(VaultError::DiskFull {
                dir: vault.dir().to_path_buf(),
                what: "git gc could not write its new pack (git removed it); the snapshots are recorded as pruned and the next prune frees their objects".into(),
            });
        }
        return Err(VaultError::Damaged {
            rev: "gc".into(),
            what: format!(
                "git gc in {} failed: {}",
                vault.dir().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(before - dir_size(&objects) as i64)
}

/// Removes the backup host's page lists of packs no snapshot ref lists
/// any more (vault-layout, "Pages and packs"); none while a ref cannot be
/// read, as its packs are not known.
fn forget_page_lists(vault: &Vault) -> Result<(), VaultError> {
    let (snaps, bad) = super::store::list_readable(vault)?;
    if !bad.is_empty() {
        return Ok(());
    }
    let mut keep = HashSet::new();
    for s in &snaps {
        keep.extend(super::store::packs(vault, s)?.into_iter().map(|(m, _)| m));
    }
    crate::vault::packs::forget_lists(vault, &keep).map_err(|error| VaultError::Io {
        path: vault.local_dir().join(crate::vault::packs::PAGES_DIR),
        error,
    })?;
    Ok(())
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
    fn hourly_keeps_the_newest_snapshot_of_each_of_the_last_hours() {
        // Every 20 minutes for 5 hours from 2026-01-01T00:00Z: s00..s14.
        let snaps: Vec<StoredSnapshot> = (0..15)
            .map(|i| snap(&format!("s{i:02}"), 1767225600 + i * 1200))
            .collect();
        let kept = keep(
            &snaps,
            Policy {
                hourly: 3,
                ..Default::default()
            },
        );
        // Hours 04, 03 and 02: the last snapshot taken in each.
        let want: HashSet<String> = ["s14", "s11", "s08"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(kept, want);
        // With daily too, the day's newest is already among them.
        let both = keep(
            &snaps,
            Policy {
                hourly: 3,
                daily: 1,
                ..Default::default()
            },
        );
        assert_eq!(both, want);
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

    // Runs the system git (an outside program: `--features lab`).
    #[cfg(feature = "lab")]
    #[test]
    fn the_grace_is_a_date_git_understands() {
        assert_eq!(git_expiry(Duration::ZERO), "now");
        assert_eq!(git_expiry(DEFAULT_GRACE), "1209600.seconds.ago");
        // git's approxidate reads it as that long ago (`--since` prints it).
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .expect("git runs");
        for (grace, ago) in [(Duration::ZERO, 0), (DEFAULT_GRACE, 1209600)] {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["rev-parse", &format!("--since={}", git_expiry(grace))])
                .output()
                .expect("git runs");
            let text = String::from_utf8_lossy(&out.stdout);
            let at: i64 = text
                .trim()
                .trim_start_matches("--max-age=")
                .parse()
                .unwrap_or_else(|_| panic!("{text:?} {}", String::from_utf8_lossy(&out.stderr)));
            let want = OffsetDateTime::now_utc().unix_timestamp() - ago;
            assert!((at - want).abs() < 60, "{grace:?}: {at}, want {want}");
        }
    }
}
