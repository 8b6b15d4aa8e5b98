//! Every rule of preflight, without a lab.

use super::*;

const FIX: &str = "sprayvault facts restore node1";

fn present(age: u64) -> Cached {
    Cached::Present {
        age,
        default_ipv4: true,
        addresses: vec!["10.0.0.1".into()],
    }
}

#[test]
fn a_host_outside_the_limit_needs_fresh_parseable_facts_with_a_default_ipv4() {
    assert_eq!(
        fact_check("node1", &present(3600), 86400, None, FIX).status,
        Status::Ok
    );
    for (cached, want) in [
        (Cached::Missing, "no cached facts"),
        (
            Cached::Unparseable("not JSON".into()),
            "cannot be read as facts",
        ),
        (present(90000), "past fact_caching_timeout (86400 s)"),
        (
            Cached::Present {
                age: 10,
                default_ipv4: false,
                addresses: vec![],
            },
            "no ansible_default_ipv4",
        ),
    ] {
        let c = fact_check("node1", &cached, 86400, None, FIX);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains(want), "{c:?}");
        assert_eq!(c.fix.as_deref(), Some(FIX));
    }
    // A timeout of 0 never expires, as in Ansible.
    assert_eq!(
        fact_check("node1", &present(10_000_000), 0, None, FIX).status,
        Status::Ok
    );
}

#[test]
fn the_cached_addresses_must_hold_the_inventorys_ip() {
    assert_eq!(
        fact_check("node1", &present(1), 86400, Some("10.0.0.1"), FIX).status,
        Status::Ok
    );
    let c = fact_check("node1", &present(1), 86400, Some("10.0.0.9"), FIX);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail
            .contains("do not report the inventory's ip 10.0.0.9 (they report 10.0.0.1)"),
        "{c:?}"
    );
}

#[test]
fn the_node_must_answer_as_itself_on_the_inventorys_address() {
    let fix = "sprayvault restore node3";
    let ok = NodeSeen {
        reached: Ok(()),
        hostname: Some("node3.cluster.local".into()),
        address: Some(("10.0.0.3".into(), Some(true))),
    };
    assert!(node_checks("node3", &ok, fix)
        .iter()
        .all(|c| c.status == Status::Ok));
    let wrong = NodeSeen {
        hostname: Some("node2".into()),
        ..ok.clone()
    };
    let c = node_checks("node3", &wrong, fix);
    assert!(
        c.iter()
            .any(|c| c.status == Status::Fail && c.detail.contains("calls itself \"node2\"")),
        "{c:?}"
    );
    let moved = NodeSeen {
        address: Some(("10.0.0.3".into(), Some(false))),
        ..ok.clone()
    };
    assert!(node_checks("node3", &moved, fix)
        .iter()
        .any(|c| c.status == Status::Fail
            && c.detail
                .contains("does not have the inventory's address 10.0.0.3")));
    let down = NodeSeen {
        reached: Err("connection refused".into()),
        ..Default::default()
    };
    let c = node_checks("node3", &down, fix);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, Status::Fail);
}

#[test]
fn missing_or_different_certificates_name_the_restore() {
    let fix = "sprayvault restore node3 (or sprayvault replace node3)";
    let seen = CertsSeen::Checked {
        backup: "1a2b3c4d5e".into(),
        missing: vec!["/etc/ssl/etcd/ssl/ca.pem".into()],
        differ: vec!["/etc/kubernetes/ssl/ca.crt".into()],
        expiring: vec![],
        compared: 20,
    };
    let c = cert_checks("node3", &seen, fix);
    assert_eq!(c.len(), 2);
    assert!(
        c[0].detail
            .contains("1 of the certificates and keys it had in backup 1a2b3c4d5e are missing"),
        "{c:?}"
    );
    assert_eq!(c[0].fix.as_deref(), Some(fix));
    assert!(
        c[1].detail.contains("/etc/kubernetes/ssl/ca.crt differ"),
        "{c:?}"
    );
    let good = CertsSeen::Checked {
        backup: "1a2b3c4d5e".into(),
        missing: vec![],
        differ: vec![],
        expiring: vec![],
        compared: 20,
    };
    assert_eq!(cert_checks("node3", &good, fix)[0].status, Status::Ok);
    // One expiring soon: a warning beside the ok, no failure.
    let soon = CertsSeen::Checked {
        backup: "1a2b3c4d5e".into(),
        missing: vec![],
        differ: vec![],
        expiring: vec![
            ("/etc/kubernetes/ssl/apiserver.crt".into(), 12),
            ("/etc/ssl/etcd/ssl/node-node3.pem".into(), -1),
        ],
        compared: 20,
    };
    let c = cert_checks("node3", &soon, fix);
    assert_eq!(
        c.iter().map(|c| c.status).collect::<Vec<_>>(),
        [Status::Warn, Status::Ok]
    );
    assert!(
        c[0].detail
            .contains("apiserver.crt (12 days), /etc/ssl/etcd/ssl/node-node3.pem (expired)"),
        "{c:?}"
    );
    assert_eq!(
        cert_checks("node3", &CertsSeen::NotChecked("no vault".into()), fix)[0].status,
        Status::Warn
    );
}

fn member(node: &str, name: &str, healthy: bool) -> MemberSeen {
    MemberSeen {
        node: node.into(),
        name: name.into(),
        health: if healthy {
            Ok(())
        } else {
            Err("connection refused".into())
        },
    }
}

fn listed(names: &[(&str, bool)]) -> Vec<Listed> {
    names
        .iter()
        .map(|(n, l)| Listed {
            name: n.to_string(),
            learner: *l,
        })
        .collect()
}

#[test]
fn an_unhealthy_member_outside_the_limit_fails_and_quorum_is_counted() {
    let m = [
        member("node1", "etcd1", true),
        member("node2", "etcd2", false),
        member("node3", "etcd3", true),
    ];
    let l = listed(&[("etcd1", false), ("etcd2", false), ("etcd3", false)]);
    let c = etcd_checks(&m, Some(&l), &["node4".into()]);
    let node2 = c.iter().find(|c| c.subject == "node2").unwrap();
    assert_eq!(node2.status, Status::Fail);
    assert!(
        node2
            .fix
            .as_deref()
            .unwrap()
            .contains("systemctl start etcd"),
        "{node2:?}"
    );
    let q = c.iter().find(|c| c.subject == "cluster").unwrap();
    assert_eq!(q.status, Status::Ok, "{q:?}");
    // Two down of three: quorum lost.
    let m = [
        member("node1", "etcd1", true),
        member("node2", "etcd2", false),
        member("node3", "etcd3", false),
    ];
    let c = etcd_checks(&m, Some(&l), &[]);
    let q = c.iter().find(|c| c.subject == "cluster").unwrap();
    assert_eq!(q.status, Status::Fail);
    assert!(q.fix.as_deref().unwrap().contains("etcd restore"));
}

#[test]
fn a_member_in_the_limit_that_is_missing_a_learner_or_down_names_replace() {
    let m = [
        member("node1", "etcd1", true),
        member("node2", "etcd2", true),
        member("node3", "etcd3", false),
    ];
    let limit = ["node3".to_string()];
    for (l, want) in [
        (
            listed(&[("etcd1", false), ("etcd2", false)]),
            "is not in the cluster",
        ),
        (
            listed(&[("etcd1", false), ("etcd2", false), ("etcd3", true)]),
            "is a learner",
        ),
        (
            listed(&[("etcd1", false), ("etcd2", false), ("etcd3", false)]),
            "does not answer",
        ),
    ] {
        let c = etcd_checks(&m, Some(&l), &limit);
        let f: Vec<&Check> = c.iter().filter(|c| c.status == Status::Fail).collect();
        assert_eq!(f.len(), 1, "{c:?}");
        assert!(f[0].detail.contains(want), "{f:?}");
        assert!(f[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("sprayvault replace node3"));
        // Its own health in the limit is only a warning: the run is to fix it.
        assert!(c
            .iter()
            .any(|c| c.subject == "node3" && c.status == Status::Warn));
    }
}

#[test]
fn the_first_control_plane_host_must_be_healthy_or_handled_first() {
    let cp: Vec<String> = ["node1", "node2", "node3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        first_control_plane_check(&cp, &["node3".into()], Some(true), Some(true))
            .unwrap()
            .status,
        Status::Ok
    );
    let down = first_control_plane_check(&cp, &["node3".into()], Some(false), None).unwrap();
    assert_eq!(down.status, Status::Fail);
    assert!(down.fix.unwrap().contains("reorder kube_control_plane"));
    let limited =
        first_control_plane_check(&cp, &["node1".into()], Some(true), Some(true)).unwrap();
    assert_eq!(limited.status, Status::Warn);
    assert!(limited
        .fix
        .unwrap()
        .contains("list node1 after node2, node3"));
    assert!(first_control_plane_check(&[], &[], None, None).is_none());
}

#[test]
fn a_kubespray_checkout_other_than_the_recorded_one_is_named() {
    let v = |d: &str, c: &str| Some((Some(d.to_string()), Some(c.to_string())));
    let same = control_check(v("v2.29.0", &"a".repeat(40)), v("v2.29.0", &"a".repeat(40)));
    assert_eq!(same.status, Status::Ok);
    let other = control_check(v("v2.29.0", &"a".repeat(40)), v("v2.30.0", &"b".repeat(40)));
    assert_eq!(other.status, Status::Warn);
    assert!(
        other
            .detail
            .contains("v2.30.0 (bbbbbbbbbb), the latest backup recorded v2.29.0 (aaaaaaaaaa)"),
        "{other:?}"
    );
    assert_eq!(control_check(None, None).status, Status::Warn);
}

#[test]
fn durations_read_as_people_say_them() {
    assert_eq!(human(45), "45s");
    assert_eq!(human(3 * 3600 + 20 * 60), "3h 20m");
    assert_eq!(human(2 * 86400 + 3600), "2d 1h");
}
