//! The replacement plan: a pure function of what was observed (the vault,
//! the inventory, the node, the other etcd members) to the steps to carry
//! out and every reason to refuse. No I/O here; every rule has a unit test.

use crate::etcd::member::{self, Member};
use serde::Serialize;
use std::fmt;

/// What the vault's copy of the node's `/etc/etcd.env` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedMember {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub data_dir: String,
}

/// Another etcd member of the inventory, as seen through its own connection
/// and admin certificate.
#[derive(Clone, Debug, Serialize)]
pub struct OtherMember {
    pub node: String,
    /// `ETCD_NAME` of its live `/etc/etcd.env`.
    pub name: Option<String>,
    /// `Ok` when `endpoint health` answered, else why not.
    pub health: Result<(), String>,
    /// Its `member list`, when it answered.
    pub members: Option<Vec<Member>>,
}

/// The etcd side of what was observed.
#[derive(Clone, Debug)]
pub struct EtcdSeen {
    /// kubespray's `etcd_member_name` for the node, and whether the
    /// inventory sets it (else it is `etcdN` by position in the etcd group).
    pub inventory_name: (String, bool),
    /// From the vault, or why it cannot be read.
    pub recorded: Result<RecordedMember, String>,
    pub others: Vec<OtherMember>,
    /// The node's own etcd answers `endpoint health` with its own certificate.
    pub own_healthy: bool,
    /// The node's `etcd` (version and flags) and whether it starts on the
    /// vault's `etcd.env`; `None` when it was not read.
    pub env_check: Option<(crate::etcd::flags::Binary, crate::etcd::flags::Verdict)>,
}

/// The node to replace, as the restore plan sees it.
#[derive(Clone, Debug)]
pub struct NodeSeen {
    pub hostname: String,
    /// Entries that exist on the node and differ from the backup.
    pub differing: usize,
}

/// Everything the plan is decided from.
#[derive(Clone, Debug)]
pub struct Observed {
    pub node: String,
    pub backup: String,
    pub backup_has_node: bool,
    /// `etcd_deployment_type` of the node, if the inventory sets it.
    pub deployment_type: Option<String>,
    /// The node over ssh, or why it could not be reached.
    pub target: Result<NodeSeen, String>,
    /// `Some` when the node is in the inventory's etcd group.
    pub etcd: Option<EtcdSeen>,
    pub force: bool,
    /// The hosts of `kube_control_plane` in the inventory's order.
    pub control_plane: Vec<String>,
}

/// A reason not to go ahead. Nothing has been changed when one is found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    NotInBackup {
        node: String,
        backup: String,
    },
    Unreachable {
        node: String,
        why: String,
    },
    NotTheNode {
        node: String,
        hostname: String,
    },
    FilesDiffer {
        node: String,
        count: usize,
    },
    KubeadmEtcd {
        node: String,
    },
    NoRecordedMember {
        node: String,
        why: String,
    },
    NameMismatch {
        node: String,
        recorded: String,
        inventory: String,
        explicit: bool,
    },
    NoMemberAnswers {
        node: String,
        why: String,
    },
    AmbiguousMember {
        name: String,
        by_name: String,
        by_peer: String,
    },
    QuorumLost {
        node: String,
        voters: usize,
        healthy: usize,
        needed: usize,
        down: Vec<String>,
    },
    /// The node's etcd would not start on the `etcd.env` the replacement
    /// writes (the sentence names the settings).
    EtcdWillNotStart {
        why: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotInBackup { node, backup } => write!(
                f,
                "backup {backup} holds no state for node {node}; give --at a backup that has it (`sprayvault log`)"
            ),
            Refusal::Unreachable { node, why } => write!(
                f,
                "node {node} cannot be reached ({why}); install the new machine with the node's address and ssh access first"
            ),
            Refusal::NotTheNode { node, hostname } => write!(
                f,
                "the machine at node {node}'s address calls itself {hostname:?}; check it is the machine you mean, set its hostname, or give --force"
            ),
            Refusal::FilesDiffer { node, count } => write!(
                f,
                "{count} entries on node {node} exist and differ from the backup; a replacement is for a freshly installed machine: check them (`sprayvault restore {node} --dry-run`), or give --force to overwrite them"
            ),
            Refusal::KubeadmEtcd { node } => write!(
                f,
                "node {node} has etcd_deployment_type: kubeadm; sprayvault replaces etcd members that kubespray runs as a host service (etcd_deployment_type: host), kubeadm manages its own"
            ),
            Refusal::NoRecordedMember { node, why } => write!(
                f,
                "node {node} is in the inventory's etcd group but {why}"
            ),
            Refusal::NameMismatch { node, recorded, inventory, explicit } => write!(
                f,
                "node {node}: the vault's /etc/etcd.env names the member {recorded:?}, the inventory {inventory:?} ({}); a member that comes back under another name fails with \"ID mismatch\": set etcd_member_name: {recorded} for {node} in the inventory, or put it back in its place in the etcd group",
                if *explicit { "its etcd_member_name" } else { "kubespray's default by its position in the etcd group, as etcd_member_name is not set" }
            ),
            Refusal::NoMemberAnswers { node, why } => write!(
                f,
                "no other etcd member is healthy ({why}), so the membership cannot be changed to replace {node}; bring the members back, or if the cluster has lost quorum, restore it with `sprayvault etcd restore`"
            ),
            Refusal::AmbiguousMember { name, by_name, by_peer } => write!(
                f,
                "etcd member {by_name} is named {name:?} but member {by_peer} has the node's peer URL; two members claim the node: remove the wrong one by hand (`etcdctl member remove ID`) and re-run"
            ),
            Refusal::QuorumLost { node, voters, healthy, needed, down } => write!(
                f,
                "replacing node {node} changes the membership of a {voters}-member cluster, which needs {needed} healthy voting members besides it, and {healthy} are ({} not healthy); removing it would lose quorum: bring those members back first, or restore the whole cluster with `sprayvault etcd restore`",
                down.join(", ")
            ),
            Refusal::EtcdWillNotStart { why } => write!(f, "{why}"),
        }
    }
}

/// What happens to the node's etcd member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum EtcdAction {
    /// Remove the old member (if any), add a learner, write etcd.env, move
    /// the data aside, start etcd, promote, check health.
    Replace { remove: Option<Member> },
    /// A learner of an earlier run is running: promote it, check health.
    Promote { id: String },
    /// The node's member is a healthy voter already: check health only.
    Done { id: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct EtcdPlan {
    pub member: String,
    pub peer_urls: Vec<String>,
    pub data_dir: String,
    /// The healthy member through which the membership is changed.
    pub via: String,
    pub action: EtcdAction,
    /// Voting members now, and healthy ones besides the node.
    pub voters: usize,
    pub healthy: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplacePlan {
    pub node: String,
    pub backup: String,
    pub etcd: Option<EtcdPlan>,
    pub refusals: Vec<Refusal>,
    pub warnings: Vec<String>,
    /// What kubespray needs besides `cluster.yml --limit NODE` when the
    /// node is its first control-plane host.
    pub first_control_plane: Vec<String>,
}

/// What kubespray needs when `node` is the first host of
/// `kube_control_plane` (kubespray's docs, "Replacing a first control plane
/// node"): its first host is the one that initialises the control plane,
/// and joining nodes find it through the `cluster-info` ConfigMap.
pub fn first_control_plane(node: &str, control_plane: &[String]) -> Vec<String> {
    if control_plane.first().map(String::as_str) != Some(node) {
        return vec![];
    }
    let mut out = Vec::new();
    if let Some(other) = control_plane.get(1) {
        out.push(format!(
            "{node} is first in kube_control_plane: for this run, list it after {} in the inventory's kube_control_plane (and etcd) groups, so that kubespray does not treat the new machine as the one that initialises the control plane",
            control_plane[1..].join(", ")
        ));
        out.push(format!(
            "kubectl -n kube-public get configmap cluster-info -o yaml   # its server must be a live control-plane host ({other}), its certificate-authority-data the CA in /etc/kubernetes/ssl/ca.crt (restored unchanged)"
        ));
    } else {
        out.push(format!(
            "{node} is the only host of kube_control_plane: run cluster.yml without --limit once the node is back"
        ));
    }
    out
}

/// Majority of `n` voters.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// Decides the plan from what was observed.
pub fn decide(o: &Observed) -> ReplacePlan {
    let node = &o.node;
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    if !o.backup_has_node {
        refusals.push(Refusal::NotInBackup {
            node: node.clone(),
            backup: o.backup.clone(),
        });
    }
    match &o.target {
        Err(why) => refusals.push(Refusal::Unreachable {
            node: node.clone(),
            why: why.clone(),
        }),
        Ok(t) => {
            let short = |s: &str| s.split('.').next().unwrap_or("").to_ascii_lowercase();
            if short(&t.hostname) != short(node) {
                if o.force {
                    warnings.push(format!(
                        "the machine calls itself {:?}, not {node:?} (--force: replacing anyway)",
                        t.hostname
                    ));
                } else {
                    refusals.push(Refusal::NotTheNode {
                        node: node.clone(),
                        hostname: t.hostname.clone(),
                    });
                }
            }
            if t.differing > 0 {
                if o.force {
                    warnings.push(format!(
                        "{} entries on the node differ from the backup and are overwritten (--force)",
                        t.differing
                    ));
                } else {
                    refusals.push(Refusal::FilesDiffer {
                        node: node.clone(),
                        count: t.differing,
                    });
                }
            }
        }
    }
    let etcd = o
        .etcd
        .as_ref()
        .and_then(|e| decide_etcd(o, e, &mut refusals, &mut warnings));
    ReplacePlan {
        node: node.clone(),
        backup: o.backup.clone(),
        etcd,
        refusals,
        warnings,
        first_control_plane: first_control_plane(node, &o.control_plane),
    }
}

fn decide_etcd(
    o: &Observed,
    e: &EtcdSeen,
    refusals: &mut Vec<Refusal>,
    warnings: &mut Vec<String>,
) -> Option<EtcdPlan> {
    let node = &o.node;
    if o.deployment_type.as_deref() == Some("kubeadm") {
        refusals.push(Refusal::KubeadmEtcd { node: node.clone() });
        return None;
    }
    if let Some((bin, v)) = &e.env_check {
        let path = "/etc/etcd.env";
        if let Some(why) = crate::etcd::flags::sentence(node, path, bin, v) {
            match v {
                crate::etcd::flags::Verdict::Ignored(_) => warnings.push(why),
                _ => refusals.push(Refusal::EtcdWillNotStart { why }),
            }
        }
    }
    let rec = match &e.recorded {
        Ok(r) => r,
        Err(why) => {
            refusals.push(Refusal::NoRecordedMember {
                node: node.clone(),
                why: why.clone(),
            });
            return None;
        }
    };
    let (inv_name, explicit) = &e.inventory_name;
    if &rec.name != inv_name {
        refusals.push(Refusal::NameMismatch {
            node: node.clone(),
            recorded: rec.name.clone(),
            inventory: inv_name.clone(),
            explicit: *explicit,
        });
    }
    let Some(via) = e
        .others
        .iter()
        .find(|m| m.health.is_ok() && m.members.is_some())
    else {
        let why = if e.others.is_empty() {
            "the inventory's etcd group has no other host".to_string()
        } else {
            e.others
                .iter()
                .map(|m| match &m.health {
                    Err(w) => format!("{}: {w}", m.node),
                    Ok(()) => format!("{}: cannot list members", m.node),
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        refusals.push(Refusal::NoMemberAnswers {
            node: node.clone(),
            why,
        });
        return None;
    };
    let members = via.members.as_deref().unwrap_or_default();
    let old = match member::find(members, &rec.name, &rec.peer_urls) {
        Ok(m) => m,
        Err((a, b)) => {
            refusals.push(Refusal::AmbiguousMember {
                name: rec.name.clone(),
                by_name: a.id.clone(),
                by_peer: b.id.clone(),
            });
            return None;
        }
    };
    let voters: Vec<&Member> = members.iter().filter(|m| !m.learner).collect();
    let healthy_name = |m: &Member| {
        e.others
            .iter()
            .any(|x| x.health.is_ok() && x.name.as_deref() == Some(m.name.as_str()))
    };
    let mut down = Vec::new();
    let mut healthy = 0;
    for m in &voters {
        if old.is_some_and(|o| o.id == m.id) {
            continue;
        }
        if healthy_name(m) {
            healthy += 1;
        } else {
            down.push(if m.name.is_empty() {
                m.id.clone()
            } else {
                m.name.clone()
            });
        }
    }
    for x in e.others.iter().filter(|x| x.health.is_err()) {
        warnings.push(format!(
            "etcd on {} does not answer: {}",
            x.node,
            x.health.as_ref().err().map(String::as_str).unwrap_or("")
        ));
    }
    let action = match old {
        Some(m) if !m.learner && m.started() && e.own_healthy => {
            EtcdAction::Done { id: m.id.clone() }
        }
        Some(m) if m.learner && e.own_healthy => EtcdAction::Promote { id: m.id.clone() },
        other => EtcdAction::Replace {
            remove: other.cloned(),
        },
    };
    if !matches!(action, EtcdAction::Done { .. }) {
        let needed = quorum(voters.len());
        if healthy < needed {
            refusals.push(Refusal::QuorumLost {
                node: node.clone(),
                voters: voters.len(),
                healthy,
                needed,
                down,
            });
        }
    }
    Some(EtcdPlan {
        member: rec.name.clone(),
        peer_urls: rec.peer_urls.clone(),
        data_dir: rec.data_dir.clone(),
        via: via.node.clone(),
        action,
        voters: voters.len(),
        healthy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, name: &str, peer: &str, learner: bool) -> Member {
        Member {
            id: id.into(),
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: vec![],
            learner,
        }
    }

    fn cluster() -> Vec<Member> {
        vec![
            m("a1", "etcd1", "https://10.0.0.1:2380", false),
            m("b2", "etcd2", "https://10.0.0.2:2380", false),
            m("c3", "etcd3", "https://10.0.0.3:2380", false),
        ]
    }

    fn other(node: &str, name: &str, healthy: bool, members: &[Member]) -> OtherMember {
        OtherMember {
            node: node.into(),
            name: Some(name.into()),
            health: if healthy {
                Ok(())
            } else {
                Err("connection refused".into())
            },
            members: healthy.then(|| members.to_vec()),
        }
    }

    /// node3 (etcd3) reinstalled: reachable, empty, both others healthy.
    fn seen() -> Observed {
        let c = cluster();
        Observed {
            node: "node3".into(),
            backup: "1a2b3c4d5e".into(),
            backup_has_node: true,
            deployment_type: None,
            target: Ok(NodeSeen {
                hostname: "node3".into(),
                differing: 0,
            }),
            etcd: Some(EtcdSeen {
                inventory_name: ("etcd3".into(), false),
                recorded: Ok(RecordedMember {
                    name: "etcd3".into(),
                    peer_urls: vec!["https://10.0.0.3:2380".into()],
                    data_dir: "/var/lib/etcd".into(),
                }),
                others: vec![
                    other("node1", "etcd1", true, &c),
                    other("node2", "etcd2", true, &c),
                ],
                own_healthy: false,
                env_check: None,
            }),
            force: false,
            control_plane: vec!["node1".into(), "node2".into(), "node3".into()],
        }
    }

    fn etcd(o: &mut Observed) -> &mut EtcdSeen {
        o.etcd.as_mut().unwrap()
    }

    #[test]
    fn an_etcd_that_would_not_start_on_the_recorded_etcd_env_is_refused_by_name() {
        use crate::etcd::flags::{Binary, Verdict};
        let mut o = seen();
        let bin = Binary {
            version: Some("3.7.0".into()),
            flags: ["name".to_string()].into_iter().collect(),
        };
        etcd(&mut o).env_check = Some((
            bin.clone(),
            Verdict::Refused(vec!["ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK".into()]),
        ));
        let p = decide(&o);
        assert!(
            matches!(&p.refusals[..], [Refusal::EtcdWillNotStart { why }] if why.contains("ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK which etcd 3.7.0 does not have")),
            "{:?}",
            p.refusals
        );
        // Settings an older etcd only logs are a warning.
        etcd(&mut o).env_check = Some((
            Binary {
                version: Some("3.5.16".into()),
                ..bin
            },
            Verdict::Ignored(vec!["ETCD_PROXY".into()]),
        ));
        let p = decide(&o);
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        assert!(
            p.warnings.iter().any(|w| w.contains("ETCD_PROXY")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn the_first_control_plane_host_gets_kubesprays_extra_steps_and_the_others_none() {
        let cp: Vec<String> = ["node1", "node2", "node3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(first_control_plane("node3", &cp).is_empty());
        let steps = first_control_plane("node1", &cp);
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(steps[0].contains("list it after node2, node3"), "{steps:?}");
        assert!(steps[1].contains("cluster-info"), "{steps:?}");
        let mut o = seen();
        o.node = "node1".into();
        assert_eq!(decide(&o).first_control_plane, steps);
        assert!(first_control_plane("node1", &cp[..1]).len() == 1);
    }

    #[test]
    fn a_dead_member_is_removed_and_added_back() {
        let p = decide(&seen());
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        let e = p.etcd.unwrap();
        assert_eq!(e.via, "node1");
        assert_eq!((e.voters, e.healthy), (3, 2));
        assert_eq!(
            e.action,
            EtcdAction::Replace {
                remove: Some(cluster()[2].clone())
            }
        );
    }

    #[test]
    fn a_worker_has_no_etcd_step() {
        let mut o = seen();
        o.etcd = None;
        let p = decide(&o);
        assert!(p.refusals.is_empty() && p.etcd.is_none());
    }

    #[test]
    fn refused_when_the_backup_lacks_the_node() {
        let mut o = seen();
        o.backup_has_node = false;
        assert!(matches!(
            decide(&o).refusals[..],
            [Refusal::NotInBackup { .. }]
        ));
    }

    #[test]
    fn refused_when_the_node_is_unreachable() {
        let mut o = seen();
        o.target = Err("connection refused".into());
        let r = decide(&o).refusals;
        assert!(matches!(r[..], [Refusal::Unreachable { .. }]), "{r:?}");
        assert!(r[0].to_string().contains("connection refused"));
    }

    #[test]
    fn refused_when_the_hostname_is_another_unless_forced() {
        let mut o = seen();
        o.target = Ok(NodeSeen {
            hostname: "debian".into(),
            differing: 0,
        });
        let r = decide(&o).refusals;
        assert!(matches!(r[..], [Refusal::NotTheNode { .. }]), "{r:?}");
        assert!(r[0].to_string().contains("--force"));
        o.force = true;
        let p = decide(&o);
        assert!(p.refusals.is_empty() && p.warnings[0].contains("debian"));
        // A fully qualified hostname is the node.
        o.force = false;
        o.target = Ok(NodeSeen {
            hostname: "node3.cluster.example".into(),
            differing: 0,
        });
        assert!(decide(&o).refusals.is_empty());
    }

    #[test]
    fn refused_when_files_on_the_node_differ_unless_forced() {
        let mut o = seen();
        o.target = Ok(NodeSeen {
            hostname: "node3".into(),
            differing: 4,
        });
        assert!(matches!(
            decide(&o).refusals[..],
            [Refusal::FilesDiffer { count: 4, .. }]
        ));
        o.force = true;
        assert!(decide(&o).refusals.is_empty());
    }

    #[test]
    fn refused_for_kubeadm_managed_etcd() {
        let mut o = seen();
        o.deployment_type = Some("kubeadm".into());
        assert!(matches!(
            decide(&o).refusals[..],
            [Refusal::KubeadmEtcd { .. }]
        ));
        o.deployment_type = Some("host".into());
        assert!(decide(&o).refusals.is_empty());
    }

    #[test]
    fn refused_when_the_vault_has_no_etcd_env_for_a_member() {
        let mut o = seen();
        etcd(&mut o).recorded = Err("backup 1a2b3c4d5e holds no /etc/etcd.env for it".into());
        let r = decide(&o).refusals;
        assert!(matches!(r[..], [Refusal::NoRecordedMember { .. }]));
        assert!(r[0].to_string().contains("no /etc/etcd.env"));
    }

    #[test]
    fn refused_when_the_member_name_differs_from_the_inventorys_etcd_member_name() {
        let mut o = seen();
        etcd(&mut o).inventory_name = ("etcd-c".into(), true);
        let r = decide(&o).refusals;
        assert!(
            matches!(&r[..], [Refusal::NameMismatch { recorded, inventory, explicit: true, .. }] if recorded == "etcd3" && inventory == "etcd-c"),
            "{r:?}"
        );
        assert!(r[0].to_string().contains("ID mismatch"));
        // kubespray's default name by position: node3 listed second.
        etcd(&mut o).inventory_name = ("etcd2".into(), false);
        let r = decide(&o).refusals;
        assert!(
            r[0].to_string().contains("position in the etcd group"),
            "{r:?}"
        );
    }

    #[test]
    fn refused_with_two_members_down_quorum_would_be_lost() {
        let mut o = seen();
        let c = cluster();
        etcd(&mut o).others[1] = other("node2", "etcd2", false, &c);
        let r = decide(&o).refusals;
        assert!(
            matches!(&r[..], [Refusal::QuorumLost { voters: 3, healthy: 1, needed: 2, down, .. }] if down == &vec!["etcd2".to_string()]),
            "{r:?}"
        );
        assert!(r[0].to_string().contains("sprayvault etcd restore"));
    }

    #[test]
    fn refused_when_no_other_member_answers() {
        let mut o = seen();
        let c = cluster();
        etcd(&mut o).others = vec![
            other("node1", "etcd1", false, &c),
            other("node2", "etcd2", false, &c),
        ];
        let r = decide(&o).refusals;
        assert!(matches!(r[..], [Refusal::NoMemberAnswers { .. }]), "{r:?}");
        assert!(r[0].to_string().contains("etcd restore"));
        etcd(&mut o).others.clear();
        assert!(decide(&o).refusals[0].to_string().contains("no other host"));
    }

    #[test]
    fn refused_when_name_and_peer_url_belong_to_two_members() {
        let mut o = seen();
        let mut c = cluster();
        c[2].name = "etcd9".into();
        c.push(m("d4", "etcd3", "https://10.0.0.9:2380", false));
        etcd(&mut o).others = vec![
            other("node1", "etcd1", true, &c),
            other("node2", "etcd2", true, &c),
        ];
        assert!(matches!(
            decide(&o).refusals[..],
            [Refusal::AmbiguousMember { .. }]
        ));
    }

    #[test]
    fn a_learner_left_by_an_interrupted_run_is_removed_and_added_again() {
        let mut o = seen();
        let mut c = cluster();
        c.pop();
        let learner = m("e5", "", "https://10.0.0.3:2380", true);
        c.push(learner.clone());
        etcd(&mut o).others = vec![
            other("node1", "etcd1", true, &c),
            other("node2", "etcd2", true, &c),
        ];
        let p = decide(&o);
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        let e = p.etcd.unwrap();
        assert_eq!((e.voters, e.healthy), (2, 2));
        assert_eq!(
            e.action,
            EtcdAction::Replace {
                remove: Some(learner)
            }
        );
        // Once that learner runs, it is only promoted.
        etcd(&mut o).own_healthy = true;
        assert_eq!(
            decide(&o).etcd.unwrap().action,
            EtcdAction::Promote { id: "e5".into() }
        );
    }

    #[test]
    fn a_member_already_removed_is_only_added() {
        let mut o = seen();
        let mut c = cluster();
        c.pop();
        etcd(&mut o).others = vec![
            other("node1", "etcd1", true, &c),
            other("node2", "etcd2", true, &c),
        ];
        let e = decide(&o).etcd.unwrap();
        assert_eq!(e.action, EtcdAction::Replace { remove: None });
    }

    #[test]
    fn a_healthy_voter_is_left_alone_even_without_quorum_to_spare() {
        let mut o = seen();
        let c = cluster();
        etcd(&mut o).own_healthy = true;
        etcd(&mut o).others[1] = other("node2", "etcd2", false, &c);
        let p = decide(&o);
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        assert_eq!(p.etcd.unwrap().action, EtcdAction::Done { id: "c3".into() });
    }

    #[test]
    fn kubespray_default_member_name_is_etcd_n_by_position_in_the_etcd_group() {
        let inv = crate::inventory::from_text(
            std::path::Path::new("hosts.ini"),
            "[etcd]\nnode10\nnode2 etcd_member_name=etcd-b\nnode3\n[kube_node]\nnode4\n",
        )
        .unwrap();
        assert_eq!(
            inv.etcd_member_name("node10"),
            Some(("etcd1".into(), false))
        );
        assert_eq!(inv.etcd_member_name("node2"), Some(("etcd-b".into(), true)));
        assert_eq!(inv.etcd_member_name("node3"), Some(("etcd3".into(), false)));
        assert_eq!(inv.etcd_member_name("node4"), None);
    }

    #[test]
    fn quorum_is_a_majority() {
        assert_eq!([1, 2, 3, 4, 5].map(quorum), [1, 2, 2, 3, 3]);
    }
}
