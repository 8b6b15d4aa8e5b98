//! The restore's rules without a machine: plans decided from what an
//! in-memory node ([`FakeNode`]) has, and the executor carrying them out on
//! it. Every rule that refuses or chooses an action has a test here.

use super::apply::apply;
use super::plan::{decide, observe, Action, Owners, Plan, Recorded};
use crate::progress::Silent;
use crate::source::fake::FakeNode;
use crate::vault::manifest::{Entry, Kind};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn entry(kind: Kind, path: &str, mode: u32, owner: &str, group: &str) -> Entry {
    let id = |n: &str| match n {
        "kube" => 10998,
        "etcd" => 10997,
        "kube-cert" => 10996,
        _ => 0,
    };
    Entry {
        kind,
        mode,
        uid: id(owner),
        gid: id(group),
        owner: Some(owner.into()),
        group: Some(group.into()),
        size: 0,
        mtime: 1_700_000_000,
        mac: None,
        path: path.into(),
        target: None,
    }
}

/// A kubespray-shaped record: /etc/kubernetes/ssl (kube:kube-cert 0755) with
/// ca.crt and ca.key, /etc/etcd.env, and the pki link.
fn recorded() -> Recorded {
    let mut entries = vec![
        entry(Kind::Dir, "/etc/kubernetes/ssl", 0o755, "kube", "kube-cert"),
        entry(
            Kind::File,
            "/etc/kubernetes/ssl/ca.crt",
            0o644,
            "kube",
            "kube-cert",
        ),
        entry(
            Kind::File,
            "/etc/kubernetes/ssl/ca.key",
            0o600,
            "kube",
            "kube-cert",
        ),
        entry(Kind::File, "/etc/etcd.env", 0o640, "root", "etcd"),
    ];
    let mut link = entry(Kind::Symlink, "/etc/kubernetes/pki", 0o777, "root", "root");
    link.target = Some("/etc/kubernetes/ssl".into());
    entries.push(link);
    record(
        entries,
        &[
            ("/etc/kubernetes/ssl/ca.crt", "CERT"),
            ("/etc/kubernetes/ssl/ca.key", "KEY"),
            ("/etc/etcd.env", "ETCD_NAME=etcd1\n"),
        ],
    )
}

/// node1's record of `entries` (sorted here) with `contents`, sizes from them.
fn record(mut entries: Vec<Entry>, contents: &[(&str, &str)]) -> Recorded {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let contents: BTreeMap<String, Zeroizing<Vec<u8>>> = contents
        .iter()
        .map(|(p, c)| (p.to_string(), Zeroizing::new(c.as_bytes().to_vec())))
        .collect();
    for e in entries.iter_mut() {
        if let Some(c) = contents.get(&e.path) {
            e.size = c.len() as u64;
        }
    }
    Recorded {
        node: "node1".into(),
        commit: "0".repeat(40),
        backup_time: 0,
        entries,
        contents,
    }
}

/// The node as the backup saw it: every recorded entry in place, owners by
/// the fake's ids for the same names.
fn as_recorded(n: &FakeNode) {
    n.dir("/etc/kubernetes/ssl", 0o755, 998, 996);
    n.file("/etc/kubernetes/ssl/ca.crt", b"CERT", 0o644, 998, 996, 1);
    n.file("/etc/kubernetes/ssl/ca.key", b"KEY", 0o600, 998, 996, 1);
    n.file("/etc/etcd.env", b"ETCD_NAME=etcd1\n", 0o640, 0, 997, 1);
    n.link("/etc/kubernetes/pki", "/etc/kubernetes/ssl");
}

fn plan_for(n: &FakeNode) -> Plan {
    let r = recorded();
    let observed = block_on(observe(n, &r.entries)).expect("observe");
    decide(r, "fake".into(), &observed, &n.accounts, Owners::default())
}

fn action(p: &Plan, path: &str) -> (Action, Option<String>) {
    let i = p.items.iter().find(|i| i.path == path).expect(path);
    (i.action, i.detail.clone())
}

#[test]
fn every_path_absent_on_a_fresh_machine_is_created_and_needs_no_force() {
    let n = FakeNode::new("node1", "node1");
    let p = plan_for(&n);
    assert!(p.items.iter().all(|i| i.action == Action::Create));
    assert!(p.conflicts().is_empty());
    // Owners by name on the target (kube is 998 there, 10998 recorded).
    let i = p.items.iter().find(|i| i.path.ends_with("ca.key")).unwrap();
    assert_eq!(i.want, "0600 kube:kube-cert");
}

#[test]
fn identical_content_and_metadata_are_left_alone() {
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    let p = plan_for(&n);
    assert!(
        p.items.iter().all(|i| i.action == Action::Leave),
        "{:?}",
        p.items
    );
}

#[test]
fn refused_without_force_when_a_file_differs() {
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    n.file("/etc/kubernetes/ssl/ca.key", b"OTHER", 0o600, 998, 996, 1);
    let p = plan_for(&n);
    assert_eq!(
        action(&p, "/etc/kubernetes/ssl/ca.key"),
        (Action::Replace, Some("content differs".into()))
    );
    let c = p.conflicts();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].contains("1 existing entries differ"), "{c:?}");
}

#[test]
fn refused_without_force_when_the_target_has_another_hostname() {
    let n = FakeNode::new("node1", "worker-7");
    let p = plan_for(&n);
    let c = p.conflicts();
    assert!(p.hostname_mismatch);
    assert!(c[0].contains("\"worker-7\", not \"node1\""), "{c:?}");
    // A fully qualified name with the node's short name is the node.
    let n = FakeNode::new("node1", "NODE1.cluster.example");
    assert!(!plan_for(&n).hostname_mismatch);
}

#[test]
fn other_mode_or_owner_with_the_same_content_is_an_update_without_force() {
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    n.file("/etc/kubernetes/ssl/ca.key", b"KEY", 0o644, 0, 0, 1);
    n.dir("/etc/kubernetes/ssl", 0o700, 0, 0);
    let p = plan_for(&n);
    assert_eq!(
        action(&p, "/etc/kubernetes/ssl/ca.key"),
        (Action::Update, Some("is 0644 0:0 on the target".into()))
    );
    assert_eq!(action(&p, "/etc/kubernetes/ssl").0, Action::Update);
    assert!(p.conflicts().is_empty());
}

#[test]
fn another_kind_on_the_target_is_replaced() {
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    n.dir("/etc/etcd.env", 0o755, 0, 0);
    let p = plan_for(&n);
    assert_eq!(
        action(&p, "/etc/etcd.env"),
        (Action::Replace, Some("is a dir on the target".into()))
    );
    assert_eq!(p.conflicts().len(), 1);
}

#[test]
fn a_link_pointing_elsewhere_is_replaced() {
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    n.link("/etc/kubernetes/pki", "/root");
    let p = plan_for(&n);
    assert_eq!(
        action(&p, "/etc/kubernetes/pki"),
        (
            Action::Replace,
            Some("points to \"/root\" on the target".into())
        )
    );
}

#[test]
fn an_owner_name_missing_on_the_target_gets_root_and_says_so() {
    let mut n = FakeNode::new("node1", "node1");
    n.accounts =
        crate::source::accounts::Accounts::from_files("root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
    let p = plan_for(&n);
    let (a, note) = action(&p, "/etc/kubernetes/ssl/ca.key");
    assert_eq!(a, Action::Create);
    let note = note.unwrap();
    assert!(
        note.contains("user kube and group kube-cert are not on the target: root applied"),
        "{note}"
    );
    let i = p.items.iter().find(|i| i.path.ends_with("ca.key")).unwrap();
    assert_eq!(i.want, "0600 root:root");
}

#[test]
fn apply_writes_every_entry_with_its_metadata_and_reads_files_back() {
    let n = FakeNode::new("node1", "node1");
    let p = plan_for(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.created, r.verified), (5, 3));
    let key = n.get("/etc/kubernetes/ssl/ca.key").unwrap();
    assert_eq!(key.content, b"KEY");
    assert_eq!(
        (key.meta.mode, key.meta.uid, key.meta.gid, key.meta.mtime),
        (0o600, 998, 996, 1_700_000_000)
    );
    let dir = n.get("/etc/kubernetes/ssl").unwrap();
    assert_eq!(
        (dir.meta.mode, dir.meta.uid, dir.meta.gid),
        (0o755, 998, 996)
    );
    assert_eq!(
        n.get("/etc/kubernetes/pki").unwrap().link.as_deref(),
        Some("/etc/kubernetes/ssl")
    );
    // Parents it had to create: root 0755, never left at the 0700 of mkdir.
    let etc = n.get("/etc/kubernetes").unwrap();
    assert_eq!((etc.meta.mode, etc.meta.uid), (0o755, 0));
    // Applying the plan again to the result changes nothing.
    assert!(plan_for(&n).items.iter().all(|i| i.action == Action::Leave));
}

#[test]
fn apply_never_writes_below_a_link_where_the_backup_has_a_directory() {
    let n = FakeNode::new("node1", "node1");
    n.dir("/etc/kubernetes", 0o755, 0, 0);
    n.dir("/root/elsewhere", 0o700, 0, 0);
    n.link("/etc/kubernetes/ssl", "/root/elsewhere");
    let p = plan_for(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    let failed: Vec<&str> = r.errors.iter().map(|(p, _)| p.as_str()).collect();
    assert!(failed.contains(&"/etc/kubernetes/ssl/ca.key"), "{failed:?}");
    assert!(n.get("/root/elsewhere/ca.key").is_none());
    assert!(n
        .fs
        .lock()
        .unwrap()
        .keys()
        .all(|k| !k.starts_with("/root/elsewhere/")));
}

#[test]
fn an_update_rewrites_the_file_rather_than_changing_it_by_path() {
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    n.file("/etc/kubernetes/ssl/ca.key", b"KEY", 0o644, 0, 0, 1);
    let p = plan_for(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    assert_eq!((r.updated, r.errors.len()), (1, 0), "{:?}", r.errors);
    let key = n.get("/etc/kubernetes/ssl/ca.key").unwrap();
    assert_eq!((key.meta.mode, key.meta.uid), (0o600, 998));
}

#[test]
fn the_trust_store_is_updated_on_the_node_only_when_ca_certificates_change() {
    let n = FakeNode::new("node1", "node1");
    let mut r = recorded();
    r.entries.push(entry(
        Kind::File,
        "/usr/local/share/ca-certificates/etcd-ca.crt",
        0o644,
        "root",
        "root",
    ));
    r.contents.insert(
        "/usr/local/share/ca-certificates/etcd-ca.crt".into(),
        Zeroizing::new(b"CA".to_vec()),
    );
    let observed = block_on(observe(&n, &r.entries)).unwrap();
    let p = decide(r, "fake".into(), &observed, &n.accounts, Owners::default());
    block_on(apply(&p, &n, &Silent)).unwrap();
    let ran = n.commands.lock().unwrap().clone();
    assert!(
        ran.iter().any(|c| c.contains("update-ca-certificates")),
        "{ran:?}"
    );
    // Nothing under the CA directory changes: no command.
    let n2 = FakeNode::new("node1", "node1");
    as_recorded(&n2);
    let p = plan_for(&n2);
    block_on(apply(&p, &n2, &Silent)).unwrap();
    assert!(n2.commands.lock().unwrap().is_empty());
}

#[test]
fn the_fake_node_lists_a_directory_like_the_remote_and_refuses_a_file() {
    use crate::source::NodeFs;
    let n = FakeNode::new("node1", "node1");
    as_recorded(&n);
    let mut names: Vec<String> = block_on(n.list("/etc/kubernetes"))
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    assert_eq!(names, ["pki", "ssl"]);
    assert!(block_on(n.list("/etc/etcd.env")).is_err());
}

#[test]
fn refused_when_a_parent_on_the_target_is_a_file_not_a_directory() {
    let n = FakeNode::new("node1", "node1");
    n.file("/etc/kubernetes", b"not a dir", 0o644, 0, 0, 1);
    let p = plan_for(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    let (path, why) = r
        .errors
        .iter()
        .find(|(p, _)| p == "/etc/kubernetes/ssl/ca.key")
        .expect("ca.key refused");
    assert_eq!(path, "/etc/kubernetes/ssl/ca.key");
    assert!(
        why.contains("/etc/kubernetes") && why.contains("not a directory"),
        "{why}"
    );
    assert_eq!(n.get("/etc/kubernetes").unwrap().content, b"not a dir");
}

#[test]
fn a_file_that_reads_back_other_bytes_is_an_error_naming_it() {
    let n = FakeNode::new("node1", "node1");
    n.corrupt_reads
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut r = recorded();
    r.entries.retain(|e| e.path == "/etc/etcd.env");
    let observed = block_on(observe(&n, &r.entries)).unwrap();
    let p = decide(r, "fake".into(), &observed, &n.accounts, Owners::default());
    let rep = block_on(apply(&p, &n, &Silent)).expect("apply");
    assert_eq!(rep.verified, 0);
    let (path, why) = &rep.errors[0];
    assert_eq!(path, "/etc/etcd.env");
    assert!(why.contains("read back differs"), "{why}");
}

/// kubespray's own layout: `/etc/kubernetes` and `manifests/` kube:root
/// 0755, `/etc/ssl/etcd` and `ssl/` etcd:root 0700, root's files inside.
fn kubespray_recorded() -> Recorded {
    let entries = vec![
        entry(Kind::Dir, "/etc/kubernetes", 0o755, "kube", "root"),
        entry(
            Kind::Dir,
            "/etc/kubernetes/manifests",
            0o755,
            "kube",
            "root",
        ),
        entry(
            Kind::File,
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
            0o600,
            "root",
            "root",
        ),
        entry(Kind::Dir, "/etc/ssl/etcd", 0o700, "etcd", "root"),
        entry(Kind::Dir, "/etc/ssl/etcd/ssl", 0o700, "etcd", "root"),
        entry(
            Kind::File,
            "/etc/ssl/etcd/ssl/ca-key.pem",
            0o600,
            "root",
            "root",
        ),
    ];
    record(
        entries,
        &[
            ("/etc/kubernetes/manifests/kube-apiserver.yaml", "POD"),
            ("/etc/ssl/etcd/ssl/ca-key.pem", "KEY"),
        ],
    )
}

fn kubespray_plan(n: &FakeNode) -> Plan {
    let r = kubespray_recorded();
    let observed = block_on(observe(n, &r.entries)).expect("observe");
    decide(r, "fake".into(), &observed, &n.accounts, Owners::default())
}

/// (mode, uid, gid) of `path` on the fake.
fn meta_of(n: &FakeNode, path: &str) -> (u32, u32, u32) {
    let e = n.get(path).unwrap_or_else(|| panic!("{path} is missing"));
    (e.meta.mode, e.meta.uid, e.meta.gid)
}

fn kubespray_node(n: &FakeNode) {
    n.dir("/etc/kubernetes", 0o755, 998, 0);
    n.dir("/etc/kubernetes/manifests", 0o755, 998, 0);
    n.file(
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        b"POD",
        0o600,
        0,
        0,
        1,
    );
    n.dir("/etc/ssl/etcd", 0o700, 997, 0);
    n.dir("/etc/ssl/etcd/ssl", 0o700, 997, 0);
    n.file("/etc/ssl/etcd/ssl/ca-key.pem", b"KEY", 0o600, 0, 0, 1);
}

fn assert_kubespray_owners(n: &FakeNode) {
    assert_eq!(meta_of(n, "/etc/kubernetes"), (0o755, 998, 0));
    assert_eq!(meta_of(n, "/etc/kubernetes/manifests"), (0o755, 998, 0));
    assert_eq!(meta_of(n, "/etc/ssl/etcd"), (0o700, 997, 0));
    assert_eq!(meta_of(n, "/etc/ssl/etcd/ssl"), (0o700, 997, 0));
    assert_eq!(
        meta_of(n, "/etc/kubernetes/manifests/kube-apiserver.yaml"),
        (0o600, 0, 0)
    );
    assert_eq!(meta_of(n, "/etc/ssl/etcd/ssl/ca-key.pem"), (0o600, 0, 0));
}

#[test]
fn restore_onto_kubespray_owned_directories_of_a_live_node_writes_and_gives_them_back() {
    let n = FakeNode::new("node1", "node1");
    kubespray_node(&n);
    n.file(
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        b"BAD",
        0o600,
        0,
        0,
        1,
    );
    n.file("/etc/ssl/etcd/ssl/ca-key.pem", b"BAD", 0o600, 0, 0, 1);
    let p = kubespray_plan(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    assert_eq!((r.replaced, r.errors.len()), (2, 0), "{:?}", r.errors);
    assert_eq!(
        n.get("/etc/ssl/etcd/ssl/ca-key.pem").unwrap().content,
        b"KEY"
    );
    assert_kubespray_owners(&n);
}

#[test]
fn restore_onto_a_wiped_node_creates_kubespray_owned_directories_held_then_given_back() {
    let n = FakeNode::new("node1", "node1");
    let p = kubespray_plan(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    assert_eq!((r.created, r.errors.len()), (6, 0), "{:?}", r.errors);
    assert_kubespray_owners(&n);
    assert!(kubespray_plan(&n)
        .items
        .iter()
        .all(|i| i.action == Action::Leave));
}

#[test]
fn a_directory_owned_by_an_account_the_backup_did_not_record_is_still_refused() {
    let n = FakeNode::new("node1", "node1");
    kubespray_node(&n);
    // uid 10015 took /etc/kubernetes: not kube, whom the backup recorded.
    n.dir("/etc/kubernetes", 0o755, 10015, 0);
    n.file(
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        b"BAD",
        0o600,
        0,
        0,
        1,
    );
    let p = kubespray_plan(&n);
    let r = block_on(apply(&p, &n, &Silent)).expect("apply");
    let failed: Vec<&str> = r.errors.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        failed.contains(&"/etc/kubernetes/manifests/kube-apiserver.yaml"),
        "{failed:?}"
    );
    assert_eq!(
        n.get("/etc/kubernetes/manifests/kube-apiserver.yaml")
            .unwrap()
            .content,
        b"BAD"
    );
    let why = &r.errors[0].1;
    assert!(
        why.contains("/etc/kubernetes can be changed by an account other than root"),
        "{why}"
    );
    // Never taken; its recorded owner is set last, by path through /etc,
    // which only root can change, so the next run gets through.
    assert_eq!(meta_of(&n, "/etc/kubernetes"), (0o755, 998, 0));
}
