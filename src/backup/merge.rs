//! The decision of a backup, made purely: from what this run read of each
//! node (entries, without their contents) and the parent commit's states,
//! what the new commit records of every node, and what changed.
//!
//! Rules: a node read in full gets a fresh manifest; an entry that could
//! not be read keeps its previous record, and so does everything the parent
//! had below it (a directory that failed carries its whole subtree); a node
//! that could not be read at all keeps its previous subtree whole; a node in
//! the parent that this run did not try (`--limit`, or no longer in the
//! inventory) is carried as it was; a node never backed up that could not be
//! read is not recorded.

use super::NodeReport;
use crate::vault::manifest::{Entry, Manifest};
use crate::vault::message::NodeStatus;
use crate::vault::NodeState;
use git2::Oid;
use std::collections::BTreeMap;

/// What reading one node gave, without file contents.
#[derive(Clone, Debug)]
pub enum Read {
    /// The entries read, and `(path, reason)` of those that could not be.
    Entries {
        entries: Vec<Entry>,
        errors: Vec<(String, String)>,
    },
    /// The node could not be read at all; `kind` is the short reason the
    /// commit message records.
    Failed { kind: String },
}

/// What the new commit holds for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// The parent's `nodes/<node>` subtree, unchanged.
    Carry(Oid),
    /// A new manifest. Its files read now take the blob of their content;
    /// the files in `carried` (not read now) keep the parent's blob.
    New {
        manifest: Manifest,
        carried: BTreeMap<String, Oid>,
    },
}

/// The decision for one node.
#[derive(Clone, Debug)]
pub struct NodePlan {
    pub status: NodeStatus,
    /// None: the commit records nothing of the node.
    pub write: Option<Planned>,
    pub report: NodeReport,
}

/// Decides every node of the new commit: each node of `reads` (what this
/// run tried), and each node of `previous` (the parent's) it did not try.
pub fn plan(
    reads: &BTreeMap<String, Read>,
    previous: &BTreeMap<String, NodeState>,
) -> BTreeMap<String, NodePlan> {
    let mut out = BTreeMap::new();
    for (node, read) in reads {
        let old = previous.get(node);
        let p = match read {
            Read::Entries { entries, errors } => {
                let (manifest, carried) =
                    Manifest::carry_forward(entries.clone(), errors, old.map(|o| &o.manifest));
                let carried = carried
                    .into_iter()
                    .filter_map(|p| old.and_then(|o| o.blobs.get(&p)).map(|b| (p, *b)))
                    .collect();
                let status = if errors.is_empty() {
                    NodeStatus::Ok
                } else {
                    NodeStatus::Partial(format!("{} entries could not be read", errors.len()))
                };
                let report = node_report(
                    node,
                    &status,
                    &manifest,
                    old.map(|o| &o.manifest),
                    errors.clone(),
                );
                NodePlan {
                    status,
                    write: Some(Planned::New { manifest, carried }),
                    report,
                }
            }
            Read::Failed { kind } => {
                let status = NodeStatus::Failed(kind.clone());
                let mut report = node_report(node, &status, &Manifest::default(), None, vec![]);
                if let Some(o) = old {
                    report.entries = o.manifest.entries.len();
                    report.files = o.manifest.files().count();
                }
                NodePlan {
                    status,
                    write: old.map(|o| Planned::Carry(o.tree)),
                    report,
                }
            }
        };
        out.insert(node.clone(), p);
    }
    for (node, state) in previous {
        if reads.contains_key(node) {
            continue;
        }
        let status = NodeStatus::Carried;
        let mut report = node_report(
            node,
            &status,
            &state.manifest,
            Some(&state.manifest),
            vec![],
        );
        report.entries = state.manifest.entries.len();
        out.insert(
            node.clone(),
            NodePlan {
                status,
                write: Some(Planned::Carry(state.tree)),
                report,
            },
        );
    }
    out
}

fn node_report(
    node: &str,
    status: &NodeStatus,
    new: &Manifest,
    old: Option<&Manifest>,
    errors: Vec<(String, String)>,
) -> NodeReport {
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    if let Some(old) = old {
        for (p, e) in &new.entries {
            match old.entries.get(p) {
                None => added += 1,
                Some(o) if !o.same_as(e) => changed += 1,
                _ => {}
            }
        }
        removed = old
            .entries
            .keys()
            .filter(|p| !new.entries.contains_key(*p))
            .count();
    } else {
        added = new.entries.len();
    }
    NodeReport {
        node: node.to_string(),
        status: status.outcome(),
        reason: status.reason().map(str::to_string),
        entries: new.entries.len(),
        files: new.files().count(),
        added,
        changed,
        removed,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::manifest::Kind;

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).expect("20 bytes")
    }

    fn entry(kind: Kind, path: &str, mac: Option<&str>) -> Entry {
        Entry {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: Some("root".into()),
            group: Some("root".into()),
            size: 1,
            mtime: 1764554400,
            mac: mac.map(|m| m.repeat(64 / m.len())),
            path: path.into(),
            target: None,
        }
    }
    fn file(path: &str, mac: &str) -> Entry {
        entry(Kind::File, path, Some(mac))
    }
    fn dir(path: &str) -> Entry {
        entry(Kind::Dir, path, None)
    }

    /// A parent state whose files' blobs are numbered in path order from 1.
    fn state(tree: u8, entries: Vec<Entry>) -> NodeState {
        let mut manifest = Manifest::default();
        for e in entries {
            manifest.insert(e);
        }
        let blobs = manifest
            .files()
            .enumerate()
            .map(|(i, e)| (e.path.clone(), oid(i as u8 + 1)))
            .collect();
        NodeState {
            manifest,
            tree: oid(tree),
            blobs,
        }
    }

    fn read(entries: Vec<Entry>, errors: &[&str]) -> Read {
        Read::Entries {
            entries,
            errors: errors
                .iter()
                .map(|p| (p.to_string(), "Permission denied".into()))
                .collect(),
        }
    }

    fn one(node: &str, r: Read, previous: &[(&str, NodeState)]) -> NodePlan {
        let reads = BTreeMap::from([(node.to_string(), r)]);
        let previous = previous
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        plan(&reads, &previous).remove(node).expect("planned")
    }

    fn paths(p: &Planned) -> Vec<&str> {
        match p {
            Planned::New { manifest, .. } => manifest.entries.keys().map(String::as_str).collect(),
            Planned::Carry(_) => panic!("carried whole: {p:?}"),
        }
    }

    fn carried(p: &Planned) -> Vec<(&str, Oid)> {
        match p {
            Planned::New { carried, .. } => carried.iter().map(|(p, o)| (p.as_str(), *o)).collect(),
            Planned::Carry(_) => panic!("carried whole: {p:?}"),
        }
    }

    #[test]
    fn an_ok_node_gets_what_was_read_and_counts_added_changed_removed() {
        let old = state(
            9,
            vec![
                file("/etc/a", "a"),
                file("/etc/b", "b"),
                file("/etc/c", "c"),
            ],
        );
        let p = one(
            "node1",
            read(
                vec![
                    file("/etc/a", "a"),
                    file("/etc/b", "2"),
                    file("/etc/d", "d"),
                ],
                &[],
            ),
            &[("node1", old)],
        );
        assert_eq!(p.status, NodeStatus::Ok);
        let w = p.write.as_ref().expect("written");
        assert_eq!(paths(w), ["/etc/a", "/etc/b", "/etc/d"]);
        assert!(carried(w).is_empty());
        let r = &p.report;
        assert_eq!(
            (r.status.word(), r.added, r.changed, r.removed),
            ("ok", 1, 1, 1)
        );
        assert_eq!((r.entries, r.files), (3, 3));
    }

    #[test]
    fn a_partial_node_carries_failed_entries_and_their_subtrees_from_the_parent() {
        let old = state(
            9,
            vec![
                file("/etc/hosts", "h"),
                dir("/etc/kubernetes"),
                file("/etc/kubernetes/admin.conf", "a"),
                dir("/etc/kubernetes/pki"),
                file("/etc/kubernetes/pki/ca.crt", "c"),
                file("/etc/kubernetes/pki/ca.key", "k"),
                file("/etc/kubernetes/scheduler.conf", "s"),
            ],
        );
        let blob = |p: &str| old.blobs[p];
        let (ca, key, sched) = (
            blob("/etc/kubernetes/pki/ca.crt"),
            blob("/etc/kubernetes/pki/ca.key"),
            blob("/etc/kubernetes/scheduler.conf"),
        );
        let p = one(
            "node1",
            read(
                vec![
                    file("/etc/hosts", "h"),
                    dir("/etc/kubernetes"),
                    file("/etc/kubernetes/admin.conf", "2"),
                ],
                &["/etc/kubernetes/pki", "/etc/kubernetes/scheduler.conf"],
            ),
            &[("node1", old)],
        );
        assert_eq!(
            p.status,
            NodeStatus::Partial("2 entries could not be read".into())
        );
        let w = p.write.as_ref().expect("written");
        assert_eq!(
            paths(w),
            [
                "/etc/hosts",
                "/etc/kubernetes",
                "/etc/kubernetes/admin.conf",
                "/etc/kubernetes/pki",
                "/etc/kubernetes/pki/ca.crt",
                "/etc/kubernetes/pki/ca.key",
                "/etc/kubernetes/scheduler.conf",
            ]
        );
        // The failed entries keep the parent's blobs; what was read does not.
        assert_eq!(
            carried(w),
            [
                ("/etc/kubernetes/pki/ca.crt", ca),
                ("/etc/kubernetes/pki/ca.key", key),
                ("/etc/kubernetes/scheduler.conf", sched),
            ]
        );
        let r = &p.report;
        assert_eq!(
            (r.status.word(), r.reason.as_deref()),
            ("partial", Some("2 entries could not be read"))
        );
        assert_eq!((r.added, r.changed, r.removed), (0, 1, 0));
        assert_eq!(r.errors.len(), 2);
    }

    /// Found by this test: the subtree of a failed directory was cut at the
    /// first sibling sorting inside it (`/etc/kubernetes-old` sorts between
    /// `/etc/kubernetes` and `/etc/kubernetes/manifests`), so the new commit
    /// dropped every entry below the directory.
    #[test]
    fn regression_a_failed_directory_carries_everything_below_it_past_a_sibling_sorting_inside_it()
    {
        let old = state(
            9,
            vec![
                dir("/etc/kubernetes"),
                dir("/etc/kubernetes/manifests"),
                file("/etc/kubernetes/manifests/etcd.yaml", "e"),
                file("/etc/kubernetes/manifests/kube-apiserver.yaml", "k"),
                file("/etc/kubernetes/pki/ca.crt", "c"),
                // Same prefix, not below: gone from the node, so removed.
                file("/etc/kubernetes-old/admin.conf", "o"),
            ],
        );
        let p = one(
            "node1",
            // The directory could not be listed, but one file below it was
            // read by its own path: the fresh record wins.
            read(
                vec![file("/etc/kubernetes/manifests/etcd.yaml", "2")],
                &["/etc/kubernetes"],
            ),
            &[("node1", old)],
        );
        let w = p.write.as_ref().expect("written");
        assert_eq!(
            paths(w),
            [
                "/etc/kubernetes",
                "/etc/kubernetes/manifests",
                "/etc/kubernetes/manifests/etcd.yaml",
                "/etc/kubernetes/manifests/kube-apiserver.yaml",
                "/etc/kubernetes/pki/ca.crt",
            ]
        );
        let c: Vec<&str> = carried(w).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            c,
            [
                "/etc/kubernetes/manifests/kube-apiserver.yaml",
                "/etc/kubernetes/pki/ca.crt"
            ]
        );
        assert_eq!((p.report.changed, p.report.removed), (1, 1));
    }

    #[test]
    fn a_failed_node_is_carried_whole() {
        let old = state(7, vec![dir("/etc"), file("/etc/hosts", "h")]);
        let p = one(
            "node2",
            Read::Failed {
                kind: "unreachable".into(),
            },
            &[("node2", old)],
        );
        assert_eq!(p.status, NodeStatus::Failed("unreachable".into()));
        assert_eq!(p.write, Some(Planned::Carry(oid(7))));
        let r = &p.report;
        assert_eq!(
            (r.status.word(), r.reason.as_deref()),
            ("failed", Some("unreachable"))
        );
        assert_eq!((r.entries, r.files), (2, 1));
        assert_eq!((r.added, r.changed, r.removed), (0, 0, 0));
    }

    #[test]
    fn a_node_the_run_did_not_try_is_carried() {
        // node3 is in the parent but not in this run (--limit, or gone from
        // the inventory).
        let reads = BTreeMap::from([("node1".to_string(), read(vec![], &[]))]);
        let previous = BTreeMap::from([(
            "node3".to_string(),
            state(5, vec![file("/etc/hosts", "h"), file("/etc/etcd.env", "e")]),
        )]);
        let plans = plan(&reads, &previous);
        assert_eq!(plans.keys().collect::<Vec<_>>(), ["node1", "node3"]);
        let p = &plans["node3"];
        assert_eq!(p.status, NodeStatus::Carried);
        assert_eq!(p.write, Some(Planned::Carry(oid(5))));
        let r = &p.report;
        assert_eq!(r.status, crate::vault::message::Outcome::Carried);
        assert_eq!((r.entries, r.files), (2, 2));
        assert_eq!((r.added, r.changed, r.removed), (0, 0, 0));
    }

    #[test]
    fn a_new_node_with_failures_records_what_was_read() {
        let p = one(
            "node4",
            read(
                vec![dir("/etc"), file("/etc/hosts", "h")],
                &["/etc/kubernetes"],
            ),
            &[],
        );
        assert_eq!(
            p.status,
            NodeStatus::Partial("1 entries could not be read".into())
        );
        let w = p.write.as_ref().expect("written");
        assert_eq!(paths(w), ["/etc", "/etc/hosts"]);
        assert!(carried(w).is_empty());
        assert_eq!((p.report.added, p.report.errors.len()), (2, 1));
    }

    #[test]
    fn a_new_node_that_could_not_be_read_is_not_recorded() {
        let p = one(
            "node5",
            Read::Failed {
                kind: "timed out".into(),
            },
            &[],
        );
        assert_eq!(p.status, NodeStatus::Failed("timed out".into()));
        assert_eq!(p.write, None);
        assert_eq!((p.report.entries, p.report.added), (0, 0));
    }
}
