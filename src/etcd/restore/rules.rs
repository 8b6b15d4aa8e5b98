//! Every rule of an etcd restore's plan, without a cluster: the pure
//! [`decide`] and [`recorded`] fed with what a three-member kubespray
//! cluster's backup holds and what its members have now.

use super::plan::{check_group, decide, recorded, Found, InBackup, MemberInput, RestorePlan};
use super::tool::ToolInfo;
use super::Commands;
use crate::etcd::env::EtcdEnv;
use crate::etcd::index::SnapshotIndex;
use crate::etcd::store::StoredSnapshot;

const CLUSTER: &str =
    "etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380,etcd3=https://10.0.0.3:2380";

fn env_text(i: u8) -> String {
    format!(
        "ETCD_DATA_DIR=/var/lib/etcd\n\
         ETCD_NAME=etcd{i}\n\
         ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.{i}:2380\n\
         ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.{i}:2379\n\
         ETCD_INITIAL_CLUSTER={CLUSTER}\n\
         ETCD_INITIAL_CLUSTER_STATE=existing\n\
         ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd\n"
    )
}

fn snap() -> StoredSnapshot {
    StoredSnapshot {
        name: "20261125T020004Z-node1".into(),
        commit: "0".repeat(40),
        index: SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1_764_036_004,
            revision: 812,
            keys: 30,
            size: 10 << 20,
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

/// Member `i` as the backup recorded it and as it is now: the same
/// etcd.env, certificates, tools, room, etcd down.
fn member(i: u8) -> MemberInput {
    let text = env_text(i);
    let node = format!("node{i}");
    MemberInput {
        recorded: recorded(&node, "abc1234567", &InBackup::Env(text.clone())).unwrap(),
        found: Found {
            live_env: Some(EtcdEnv::parse(&text)),
            admin: None,
            admin_cert: true,
            tool: ToolInfo {
                tool: "etcdutl".into(),
                version: Some("3.5.21".into()),
                bump: true,
            },
            has_data: true,
            data_avail_kib: Some(1 << 20),
            tmp_avail_kib: Some(1 << 20),
            answering: false,
            binary: None,
        },
        target: format!("root@10.0.0.{i}"),
        upload: format!("/var/tmp/sprayvault-etcd-restore-{i:032x}/snapshot.db"),
        node,
    }
}

pub(super) fn plan(members: Vec<MemberInput>, force: bool) -> RestorePlan {
    decide(
        &snap(),
        ("abc1234567".into(), 0),
        vec![],
        members,
        &Commands::default(),
        force,
        "20261202T060000Z",
    )
}

pub(super) fn three() -> Vec<MemberInput> {
    (1..=3).map(member).collect()
}

fn only_problem(p: &RestorePlan, needle: &str) {
    assert_eq!(p.problems.len(), 1, "{:#?}", p.problems);
    assert!(p.problems[0].contains(needle), "{:#?}", p.problems);
}

#[test]
fn a_whole_healthy_record_plans_every_member_with_no_problem() {
    let p = plan(three(), false);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.members.len(), 3);
    let m = &p.members[1];
    assert_eq!(
        (m.member.as_str(), m.data_dir.as_str()),
        ("etcd2", "/var/lib/etcd")
    );
    assert_eq!(m.aside, "/var/lib/etcd/.sprayvault-before-20261202T060000Z");
    assert_eq!(
        m.restore_dir,
        "/var/lib/etcd/.sprayvault-restore-20261202T060000Z"
    );
    assert_eq!(p.cluster_token.as_deref(), Some("k8s_etcd"));
}

#[test]
fn refused_when_the_backup_has_no_state_or_no_etcd_env_for_a_member() {
    let e = recorded("node4", "abc1234567", &InBackup::NoNode)
        .unwrap_err()
        .to_string();
    assert!(e.contains("backup abc1234567 has no state for it"), "{e}");
    let e = recorded("node4", "abc1234567", &InBackup::NoEnv)
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no /etc/etcd.env"), "{e}");
    let e = recorded("node4", "abc", &InBackup::Env("ETCD_NAME=x\n".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no ETCD_INITIAL_ADVERTISE_PEER_URLS"), "{e}");
}

#[test]
fn refused_when_a_member_of_the_initial_cluster_has_no_host_in_the_inventory() {
    let p = plan(vec![member(1), member(2)], false);
    only_problem(
        &p,
        "etcd member etcd3 (https://10.0.0.3:2380) is in ETCD_INITIAL_CLUSTER but no host",
    );
}

#[test]
fn refused_when_a_host_is_not_in_the_initial_cluster() {
    let mut m = three();
    let text = env_text(3).replace("10.0.0.3:2380\n", "10.0.0.9:2380\n");
    let text = text.replacen(
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.3:2380",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.9:2380",
        1,
    );
    m[2].recorded = recorded("node3", "abc", &InBackup::Env(text.clone())).unwrap();
    m[2].found.live_env = Some(EtcdEnv::parse(&text));
    let p = plan(m, false);
    assert!(
        p.problems.iter().any(|x| x
            .contains("node node3 (etcd3=https://10.0.0.9:2380) is not in ETCD_INITIAL_CLUSTER")),
        "{:#?}",
        p.problems
    );
}

#[test]
fn refused_unless_forced_when_the_name_peer_url_client_url_or_data_dir_changed() {
    for (key, from, to) in [
        ("ETCD_NAME", "etcd2", "etcd2-new"),
        (
            "ETCD_INITIAL_ADVERTISE_PEER_URLS",
            "https://10.0.0.2:2380",
            "https://10.0.0.22:2380",
        ),
        (
            "ETCD_ADVERTISE_CLIENT_URLS",
            "https://10.0.0.2:2379",
            "https://10.0.0.22:2379",
        ),
        ("ETCD_DATA_DIR", "/var/lib/etcd", "/srv/etcd"),
    ] {
        let mut m = three();
        let live = env_text(2).replace(&format!("{key}={from}\n"), &format!("{key}={to}\n"));
        assert_ne!(live, env_text(2), "{key}");
        m[1].found.live_env = Some(EtcdEnv::parse(&live));
        let p = plan(m, false);
        only_problem(
            &p,
            &format!("node node2: /etc/etcd.env says {key}={to}, backup abc1234567 says {from}"),
        );
        assert!(p.problems[0].contains("--force"));
        let mut m = three();
        m[1].found.live_env = Some(EtcdEnv::parse(&live));
        let p = plan(m, true);
        assert!(p.problems.is_empty(), "{key}: {:?}", p.problems);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("(--force: the backup's is used)")));
    }
}

#[test]
fn refused_when_a_member_has_no_current_etcd_env() {
    let mut m = three();
    m[0].found.live_env = None;
    let p = plan(m, false);
    only_problem(
        &p,
        "node node1 has no /etc/etcd.env, so etcd cannot start there",
    );
}

#[test]
fn refused_when_a_member_has_no_admin_certificate() {
    let mut m = three();
    m[2].found.admin_cert = false;
    let p = plan(m, false);
    only_problem(
        &p,
        "node node3 has no admin certificate /etc/ssl/etcd/ssl/admin-node3.pem",
    );
}

#[test]
fn refused_when_a_member_has_neither_etcdutl_nor_etcdctl() {
    let mut m = three();
    m[0].found.tool = ToolInfo::default();
    let p = plan(m, false);
    only_problem(&p, "node node1 has neither etcdutl nor etcdctl");
}

#[test]
fn refused_when_disk_space_is_short_or_unknown() {
    let mut m = three();
    m[0].found.data_avail_kib = Some(100);
    m[1].found.tmp_avail_kib = Some(100);
    m[2].found.data_avail_kib = None;
    let p = plan(m, false);
    assert_eq!(p.problems.len(), 3, "{:#?}", p.problems);
    assert!(p.problems[0].contains("node node1: the file system of /var/lib/etcd has 100 KiB free, the restored database needs 10240 KiB"));
    assert!(p.problems[1]
        .contains("node node2: /var/tmp has 100 KiB free, the snapshot needs 10240 KiB"));
    assert!(p.problems[2].contains("node node3: cannot tell the free space for /var/lib/etcd"));
}

#[test]
fn refused_when_the_data_dir_is_not_an_absolute_path() {
    let mut m = three();
    let text = env_text(1).replace("ETCD_DATA_DIR=/var/lib/etcd", "ETCD_DATA_DIR=var/lib/etcd");
    m[0].recorded = recorded("node1", "abc", &InBackup::Env(text.clone())).unwrap();
    m[0].found.live_env = Some(EtcdEnv::parse(&text));
    let p = plan(m, false);
    only_problem(&p, "node node1: ETCD_DATA_DIR \"var/lib/etcd\" in the vault's /etc/etcd.env is not an absolute path");
}

#[test]
fn refused_when_the_members_tokens_or_initial_clusters_differ() {
    let mut m = three();
    let text = env_text(3).replace("k8s_etcd", "other");
    m[2].recorded = recorded("node3", "abc", &InBackup::Env(text.clone())).unwrap();
    m[2].found.live_env = Some(EtcdEnv::parse(&text));
    only_problem(
        &plan(m, false),
        "the members' ETCD_INITIAL_CLUSTER_TOKEN differ in backup abc1234567",
    );

    let mut m = three();
    let text = env_text(3).replace(CLUSTER, "etcd3=https://10.0.0.3:2380");
    m[2].recorded = recorded("node3", "abc", &InBackup::Env(text.clone())).unwrap();
    m[2].found.live_env = Some(EtcdEnv::parse(&text));
    let p = plan(m, false);
    assert!(
        p.problems.iter().any(|x| x
            .contains("the members' ETCD_INITIAL_CLUSTER differ in backup abc1234567: node3 has")),
        "{:#?}",
        p.problems
    );
}

#[test]
fn refused_when_the_initial_cluster_is_not_a_list_of_name_url() {
    let mut m = vec![member(1)];
    let text = env_text(1).replace(CLUSTER, "etcd1");
    m[0].recorded = recorded("node1", "abc", &InBackup::Env(text.clone())).unwrap();
    m[0].found.live_env = Some(EtcdEnv::parse(&text));
    let p = plan(m, false);
    assert!(
        p.problems.iter().any(|x| x.contains(
            "ETCD_INITIAL_CLUSTER \"etcd1\" in backup abc1234567 is not a list of name=URL"
        )),
        "{:#?}",
        p.problems
    );
}

#[test]
fn refused_when_two_hosts_have_the_same_etcd_name() {
    let mut m = three();
    let text = env_text(3).replace("ETCD_NAME=etcd3", "ETCD_NAME=etcd2");
    m[2].recorded = recorded("node3", "abc", &InBackup::Env(text.clone())).unwrap();
    m[2].found.live_env = Some(EtcdEnv::parse(&text));
    let p = plan(m, false);
    assert!(
        p.problems
            .iter()
            .any(|x| x.contains("two hosts of the inventory's etcd group have the same ETCD_NAME")),
        "{:#?}",
        p.problems
    );
}

#[test]
fn problems_found_before_probing_are_kept_first() {
    let p = decide(
        &snap(),
        ("abc1234567".into(), 0),
        vec!["node node4: early".into()],
        three(),
        &Commands::default(),
        false,
        "20261202T060000Z",
    );
    assert_eq!(p.problems, ["node node4: early"]);
}

#[test]
fn a_member_that_answers_now_is_a_warning_naming_where_its_data_goes() {
    let mut m = three();
    m[1].found.answering = true;
    let p = plan(m, false);
    assert!(p.problems.is_empty());
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("etcd on node2 answers now")
                && w.contains("/var/lib/etcd/.sprayvault-before-20261202T060000Z")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_tool_too_old_to_bump_the_revision_is_a_warning() {
    let mut m = three();
    m[0].found.tool = ToolInfo {
        tool: "etcdutl".into(),
        version: Some("3.5.1".into()),
        bump: false,
    };
    let p = plan(m, false);
    assert!(p.problems.is_empty());
    assert!(!p.warnings.is_empty(), "no warning for etcdutl 3.5.1");
}

#[test]
fn refused_when_the_inventory_has_no_etcd_host() {
    let e = check_group(0).unwrap_err().to_string();
    assert!(e.contains("the inventory's etcd group has no hosts"), "{e}");
    assert!(check_group(3).is_ok());
}

#[test]
fn refused_when_the_free_space_in_var_tmp_is_unknown() {
    let mut m = three();
    m[2].found.tmp_avail_kib = None;
    only_problem(
        &plan(m, false),
        "node node3: cannot tell the free space in /var/tmp",
    );
}

#[test]
fn refused_when_the_data_dir_climbs_with_dot_dot() {
    let mut m = three();
    let text = env_text(1).replace("ETCD_DATA_DIR=/var/lib/etcd", "ETCD_DATA_DIR=/var/../etc");
    m[0].recorded = recorded("node1", "abc", &InBackup::Env(text.clone())).unwrap();
    m[0].found.live_env = Some(EtcdEnv::parse(&text));
    only_problem(
        &plan(m, false),
        "ETCD_DATA_DIR \"/var/../etc\" in the vault's /etc/etcd.env is not an absolute path",
    );
}

#[test]
fn refused_when_a_member_s_etcd_would_not_start_on_its_etcd_env() {
    use crate::etcd::flags::Binary;
    let mut m = three();
    let mut text = env_text(2);
    text.push_str("ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=True\n");
    m[1].found.live_env = Some(EtcdEnv::parse(&text));
    let bin = Binary::parse(&format!(
        "etcd Version: 3.7.0\n--help\n{}",
        include_str!("../../../tests/fixtures/etcd-help/etcd-3.7-style.txt")
    ));
    for x in m.iter_mut() {
        x.found.binary = Some(bin.clone());
    }
    only_problem(
        &plan(m, false),
        "node node2: /etc/etcd.env sets ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK which etcd 3.7.0 does not have, and it will not start",
    );
}

/// An etcd of `version` with the flags the members' etcd.env set.
fn etcd_binary(version: &str) -> crate::etcd::flags::Binary {
    crate::etcd::flags::Binary {
        version: Some(version.into()),
        flags: [
            "name",
            "data-dir",
            "initial-advertise-peer-urls",
            "advertise-client-urls",
            "initial-cluster",
            "initial-cluster-state",
            "initial-cluster-token",
        ]
        .iter()
        .map(|f| f.to_string())
        .collect(),
    }
}

#[test]
fn refused_when_the_snapshot_came_from_a_newer_etcd_than_a_member_runs() {
    let mut m = three();
    for (i, x) in m.iter_mut().enumerate() {
        x.found.binary = Some(etcd_binary(if i == 2 { "3.5.16" } else { "3.6.10" }));
    }
    let mut s = snap();
    s.index.etcd = Some("3.6.10".into());
    let p = decide(
        &s,
        ("abc1234567".into(), 0),
        vec![],
        m,
        &Commands::default(),
        false,
        "20261202T060000Z",
    );
    assert_eq!(p.problems.len(), 1, "{:#?}", p.problems);
    assert!(
        p.problems[0].contains("came from etcd 3.6.10 and node node3 runs etcd 3.5.16; an older etcd does not start on a newer data directory"),
        "{:#?}",
        p.problems
    );
    assert_eq!(p.etcd.as_deref(), Some("3.6.10"));
}

#[test]
fn refused_when_a_member_runs_etcd_3_6_without_etcdutl() {
    let mut m = three();
    m[0].found.tool = ToolInfo {
        tool: "etcdctl".into(),
        version: Some("3.6.10".into()),
        bump: false,
    };
    m[0].found.binary = Some(etcd_binary("3.6.10"));
    let p = plan(m, false);
    assert!(
        p.problems
            .iter()
            .any(|x| x.contains("node node1 runs etcd 3.6.10 but has no etcdutl")),
        "{:#?}",
        p.problems
    );
}
