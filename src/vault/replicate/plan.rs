//! What `push --prune` deletes on the remote and what `pull` fetches: pure
//! decisions over three listings (this vault's refs, the remote's refs, the
//! record of pruned refs), so every rule has a unit test without git or a
//! network. The executor in `replicate` lists, decides, then acts.

use super::pruned::PrunedRecord;
use git2::Oid;
use std::collections::BTreeMap;

/// Ref name to the commit it points at.
pub type Refs = BTreeMap<String, Oid>;

/// The remote refs `push --prune` deletes: exactly those whose name and
/// commit are both in the record. A ref the vault never had, a ref of that
/// name pointing at another commit, and a ref the vault still has at that
/// commit (a prune cut off between recording and deleting) stay.
pub fn remote_deletions(record: &PrunedRecord, local: &Refs, remote: &Refs) -> Vec<(String, Oid)> {
    remote
        .iter()
        .filter(|(name, oid)| record.contains(name, **oid))
        .filter(|(name, oid)| local.get(*name) != Some(*oid))
        .map(|(n, o)| (n.clone(), *o))
        .collect()
}

/// What a pull does with `refs/heads/main`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainAction {
    /// New or behind here: fetch it (git refuses anything but a fast-forward).
    Fetch,
    /// Same commit on both sides.
    UpToDate,
    /// This vault already has the remote's commit in its history: it is
    /// ahead (a backup not pushed yet), and fetching would move it back.
    Ahead,
    /// The remote has no `main`.
    Absent,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PullPlan {
    pub main: MainAction,
    /// Remote refs not fetched because their commit is a snapshot this
    /// vault pruned (listed by name, sorted).
    pub skip: Vec<String>,
    /// Whether any `refs/sprayvault/` ref is new or changed on the remote.
    pub fetch_refs: bool,
}

/// Decides a pull. `in_history(commit, tip)` says whether `commit` is known
/// here and reachable from `tip` (false when it is not known).
pub fn pull_plan(
    record: &PrunedRecord,
    local: &Refs,
    remote: &Refs,
    in_history: &dyn Fn(Oid, Oid) -> bool,
) -> PullPlan {
    let branch = crate::vault::BRANCH;
    let main = match (local.get(branch), remote.get(branch)) {
        (_, None) => MainAction::Absent,
        (None, Some(_)) => MainAction::Fetch,
        (Some(l), Some(r)) if l == r => MainAction::UpToDate,
        (Some(l), Some(r)) if in_history(*r, *l) => MainAction::Ahead,
        _ => MainAction::Fetch,
    };
    let pruned = record.commits();
    let mut skip = Vec::new();
    let mut fetch_refs = false;
    for (name, oid) in remote
        .iter()
        .filter(|(n, _)| n.starts_with(super::SPRAYVAULT_REFS))
    {
        if local.get(name) == Some(oid) {
            continue;
        }
        if pruned.contains(oid) {
            skip.push(name.clone());
        } else {
            fetch_refs = true;
        }
    }
    PullPlan {
        main,
        skip,
        fetch_refs,
    }
}

/// Refs a fetch created whose commit is a pruned snapshot (the remote
/// changed between its listing and the fetch): to be deleted again.
pub fn resurrected(record: &PrunedRecord, before: &Refs, after: &Refs) -> Vec<String> {
    let pruned = record.commits();
    after
        .iter()
        .filter(|(name, oid)| pruned.contains(oid) && before.get(*name) != Some(*oid))
        .map(|(n, _)| n.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> Oid {
        Oid::from_str(&c.to_string().repeat(40)).unwrap()
    }
    fn refs(list: &[(&str, char)]) -> Refs {
        list.iter().map(|(n, c)| (n.to_string(), oid(*c))).collect()
    }
    const S1: &str = "refs/sprayvault/etcd/20261120T020000Z-node1";
    const S2: &str = "refs/sprayvault/etcd/20261121T020000Z-node1";
    const S3: &str = "refs/sprayvault/etcd/20261122T020000Z-node1";
    const OTHER: &str = "refs/sprayvault/etcd/19990101T000000Z-elsewhere";

    fn record(list: &[(&str, char)]) -> PrunedRecord {
        let mut r = PrunedRecord::default();
        for (n, c) in list {
            r.add(n, oid(*c), 1);
        }
        r
    }

    #[test]
    fn push_prune_deletes_exactly_the_recorded_name_and_commit() {
        let rec = record(&[(S1, '1'), (S2, '2')]);
        let local = refs(&[("refs/heads/main", 'e'), (S3, '3')]);
        let remote = refs(&[
            ("refs/heads/main", 'e'),
            (S1, '1'),
            (S2, '9'), // same name, another snapshot: not ours to delete
            (S3, '3'),
            (OTHER, '1'), // our pruned commit under a name we never had
            ("refs/tags/operator", '1'),
        ]);
        assert_eq!(
            remote_deletions(&rec, &local, &remote),
            vec![(S1.to_string(), oid('1'))]
        );
    }

    #[test]
    fn push_prune_keeps_a_ref_the_vault_still_has() {
        // prune recorded S1, then was cut off before deleting the ref.
        let rec = record(&[(S1, '1')]);
        let both = refs(&[(S1, '1')]);
        assert!(remote_deletions(&rec, &both, &both).is_empty());
        assert!(remote_deletions(&PrunedRecord::default(), &Refs::new(), &both).is_empty());
    }

    #[test]
    fn pull_skips_pruned_commits_under_any_name() {
        let rec = record(&[(S1, '1')]);
        let local = refs(&[("refs/heads/main", 'e'), (S2, '2')]);
        let remote = refs(&[
            ("refs/heads/main", 'e'),
            (S1, '1'),
            (OTHER, '1'),
            (S2, '2'),
            ("refs/tags/operator", '1'),
        ]);
        let p = pull_plan(&rec, &local, &remote, &|_, _| false);
        assert_eq!(p.main, MainAction::UpToDate);
        assert_eq!(p.skip, vec![OTHER.to_string(), S1.to_string()]);
        assert!(!p.fetch_refs, "S2 is already here");
    }

    #[test]
    fn pull_fetches_a_new_snapshot_even_under_a_pruned_name() {
        let rec = record(&[(S1, '1')]);
        let remote = refs(&[(S1, '4'), (S3, '3')]);
        let p = pull_plan(&rec, &Refs::new(), &remote, &|_, _| false);
        assert!(p.skip.is_empty());
        assert!(p.fetch_refs);
        assert_eq!(p.main, MainAction::Absent);
    }

    #[test]
    fn pull_leaves_a_branch_that_is_ahead() {
        let local = refs(&[("refs/heads/main", 'b')]);
        let remote = refs(&[("refs/heads/main", 'a')]);
        let ahead = pull_plan(&PrunedRecord::default(), &local, &remote, &|c, tip| {
            c == oid('a') && tip == oid('b')
        });
        assert_eq!(ahead.main, MainAction::Ahead);
        let behind = pull_plan(&PrunedRecord::default(), &local, &remote, &|_, _| false);
        assert_eq!(behind.main, MainAction::Fetch);
        let fresh = pull_plan(&PrunedRecord::default(), &Refs::new(), &remote, &|_, _| {
            true
        });
        assert_eq!(fresh.main, MainAction::Fetch);
        assert!(!fresh.fetch_refs);
    }

    #[test]
    fn a_pruned_snapshot_that_slipped_into_a_fetch_is_named() {
        let rec = record(&[(S1, '1')]);
        let before = refs(&[(S2, '2')]);
        let after = refs(&[(S1, '1'), (S2, '2'), (S3, '3')]);
        assert_eq!(resurrected(&rec, &before, &after), vec![S1.to_string()]);
        // A ref the vault had before the fetch is not touched.
        assert!(resurrected(&rec, &after, &after).is_empty());
    }
}
