//! `sprayvault replace` against the lab's real sshd and TLS etcd cluster, on
//! etcd 3.4 and 3.5: a wiped etcd member comes back as the same member name
//! with a new id, holding every file of /etc/kubernetes and /etc/ssl/etcd as
//! before and the cluster CAs in its trust store; a run cut off after the
//! learner was added finishes when run again; a kubespray-style `--limit`
//! run that needs the cached facts of every host outside the limit (real
//! ansible-playbook, kubespray's rule) fails before and passes after. The
//! first control-plane and etcd node is replaced too (on Debian's etcd 3.5),
//! and a worker, and a replacement that would lose quorum is refused with
//! nothing changed.

mod common;

use common::kubespray::Kubespray;
use common::*;
use serde_json::Value;

/// Every entry below /etc/kubernetes and /etc/ssl/etcd on `node`: path,
/// type, mode, owner and group by name, link target, content hash.
fn kube_files(lab: &Lab, node: &str) -> String {
    lab.exec(
        node,
        &[
            "sh",
            "-c",
            "find /etc/kubernetes /etc/ssl/etcd -printf '%p %y %m %u %g %l\\n' | sort; \
             find /etc/kubernetes /etc/ssl/etcd -type f -exec sha256sum {} + | sort",
        ],
    )
}

/// How many of the backup's keys `node` serves from its own data (a
/// serializable read through its own endpoint).
fn keys_through(lab: &Lab, node: &str) -> usize {
    lab.etcdctl(
        node,
        &[
            "get",
            "--prefix",
            "/registry/keep/",
            "--keys-only",
            "--consistency=s",
        ],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .count()
}

fn members(lab: &Lab, via: &str) -> Vec<Value> {
    let out = lab.etcdctl(via, &["member", "list", "-w", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["members"].as_array().unwrap().clone()
}

fn etcd3_id(lab: &Lab) -> u64 {
    members(lab, "node1")
        .iter()
        .find(|m| m["name"] == "etcd3")
        .and_then(|m| m["ID"].as_u64())
        .expect("etcd3 is a member")
}

/// The lab has no systemd: etcd is stopped and started by the lab script,
/// run on the node over ssh.
fn replace_args(lab: &Lab, v: &TestVault, node: &str, start: Option<&str>) -> Vec<String> {
    let labcmd = format!(
        "{} --dir {} ",
        root().join("scripts/lab").display(),
        lab.dir.display()
    );
    let mut a: Vec<String> = [
        "replace",
        node,
        "--vault",
        v.path(),
        "-i",
        &lab.inventory(),
        "--ssh-config",
        &lab.ssh_config(),
        "--identity",
        v.key.identity.to_str().unwrap(),
        "--timeout",
        "90",
        "--stop-command",
        &format!("{labcmd}etcd-stop \"$(uname -n)\""),
        "--start-command",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(
        start
            .map(str::to_string)
            .unwrap_or_else(|| format!("{labcmd}etcd-start \"$(uname -n)\"")),
    );
    a
}

fn sv_args(a: &[String], extra: &[&str]) -> Sv {
    let mut all: Vec<&str> = a.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    sv_run(&all)
}

/// kubespray's fact cache of `lab` filled
/// (real `ansible -m setup`), 20 keys written through `via`, and a backup
/// with the facts: the vault, the kubespray directory and its path.
fn backed_up(lab: &Lab, via: &str) -> (TestVault, Kubespray, String) {
    let v = TestVault::new();
    let kube = Kubespray::new(v.tmp.path(), lab);
    let inv = lab.inventory();
    let (ok_setup, out) = kube.run(&["ansible", "-i", &inv, "all", "-m", "setup"]);
    assert!(ok_setup, "{out}");
    for i in 0..20 {
        lab.etcdctl(
            via,
            &["put", &format!("/registry/keep/k{i:02}"), &format!("v{i}")],
        );
    }
    let k = kube.dir.to_str().unwrap().to_string();
    let b = v.backup(lab, &["--ansible-dir", &k]).expect(0);
    assert!(b.out.contains(" stored"), "{}", b.out);
    (v, kube, k)
}

fn replace_etcd_member(version: EtcdVersion, name: &str, net: u8) {
    let lab = Lab::up_with(name, net, 4, version);
    let (v, kube, k) = backed_up(&lab, "node1");
    let inv = lab.inventory();
    let before = kube_files(&lab, "node3");
    assert!(
        before.contains("/etc/ssl/etcd/ssl d 700 etcd root"),
        "{before}"
    );
    let old_id = etcd3_id(&lab);

    // node3 is reinstalled; the control host lost its fact cache but for a
    // stale copy of node3's facts.
    lab.lab(&["wipe", "node3"]);
    let stale = kube.cache.join("node3");
    let mut facts: Value = serde_json::from_slice(&std::fs::read(&stale).unwrap()).unwrap();
    facts["ansible_hostname"] = "node3-stale".into();
    for entry in std::fs::read_dir(&kube.cache).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::write(&stale, serde_json::to_vec(&facts).unwrap()).unwrap();
    let limit = [
        "ansible-playbook",
        "-i",
        &inv,
        "assert-facts.yml",
        "--limit",
        "node3",
    ];
    let (passed, out) = kube.run(&limit);
    assert!(
        !passed,
        "the --limit run should fail without the others' facts: {out}"
    );
    assert!(
        out.contains("Kubespray does not support '--limit'"),
        "{out}"
    );

    let args = replace_args(&lab, &v, "node3", None);
    // The plan, and nothing changes.
    let plan = sv_args(&args, &[]).expect(7);
    assert!(
        plan.out
            .contains(&format!("member remove {old_id:x} (etcd3)"))
            && plan
                .out
                .contains("member add etcd3 --peer-urls https://127.0.")
            && plan.err.contains("re-run with --yes"),
        "{}\n{}",
        plan.out,
        plan.err
    );
    lab.exec(
        "node3",
        &[
            "sh",
            "-c",
            "test ! -e /etc/etcd.env && test -z \"$(ls -A /etc/ssl/etcd)\"",
        ],
    );
    assert_eq!(etcd3_id(&lab), old_id);

    // Cut off after the member was added: etcd does not start. The cluster
    // stays healthy, with a learner that has no vote.
    let failing = replace_args(
        &lab,
        &v,
        "node3",
        Some("echo no service manager here >&2; false"),
    );
    let cut = sv_args(&failing, &["--yes"]).expect(1);
    assert!(
        cut.out.contains("FAILED: etcd did not start on node3")
            && cut.out.contains("no service manager here")
            && cut.out.contains("without a vote"),
        "{}\n{}",
        cut.out,
        cut.err
    );
    let learners: Vec<Value> = members(&lab, "node1")
        .into_iter()
        .filter(|m| m["isLearner"] == true)
        .collect();
    assert_eq!(learners.len(), 1, "{learners:?}");
    for n in ["node1", "node2"] {
        lab.etcdctl(n, &["endpoint", "health"]);
    }

    // Run again: it finishes.
    let done = sv_args(&args, &["--yes", "--ansible-dir", &k]).expect(0);
    assert!(
        done.out.contains("never started, a learner") && done.out.contains("replaced node3"),
        "{}\n{}",
        done.out,
        done.err
    );
    lab.lab(&["wait-healthy", "--timeout", "30"]);
    let health = lab.etcdctl("node1", &["endpoint", "health", "--cluster", "-w", "json"]);
    let health: Value = serde_json::from_str(&health).unwrap();
    let health = health.as_array().unwrap();
    assert_eq!(health.len(), 3, "{health:?}");
    assert!(health.iter().all(|h| h["health"] == true), "{health:?}");
    let now = members(&lab, "node2");
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(now.iter().all(|m| m["isLearner"] != true), "{now:?}");
    let new_id = etcd3_id(&lab);
    assert_ne!(new_id, old_id, "the member should be a new one");
    assert!(
        done.out.contains(&format!("etcd member {new_id:x}")),
        "{}",
        done.out
    );

    // The data is served by node3 itself; what it takes reaches the others.
    assert_eq!(keys_through(&lab, "node3"), 20);
    lab.etcdctl("node3", &["put", "/registry/through-node3", "yes"]);
    for n in ["node1", "node2"] {
        assert!(lab
            .etcdctl(n, &["get", "/registry/through-node3"])
            .contains("yes"));
    }

    // Every file and directory as the original had it, owners by name.
    assert_eq!(kube_files(&lab, "node3"), before);
    let env = lab.exec("node3", &["cat", "/etc/etcd.env"]);
    assert!(env.contains("ETCD_INITIAL_CLUSTER_STATE=existing"), "{env}");
    assert!(env.contains("ETCD_NAME=etcd3"), "{env}");
    // The trust store holds the etcd CA again (kubespray puts only that one
    // into /usr/local/share/ca-certificates).
    let bundle = lab.exec("node3", &["cat", "/etc/ssl/certs/ca-certificates.crt"]);
    let pem = std::fs::read_to_string(lab.dir.join("pki/etcd-ca.pem")).unwrap();
    assert!(
        bundle.contains(pem.trim()),
        "etcd-ca.pem is not in node3's trust store"
    );

    // The fact cache: the others' facts are back, node3's stale ones gone,
    // and the --limit run passes, gathering node3's facts afresh.
    assert!(!stale.exists(), "node3's stale facts were kept");
    for n in ["node1", "node2", "node4"] {
        assert!(kube.cache.join(n).is_file(), "no facts of {n} restored");
    }
    let (passed, out) = kube.run(&limit);
    assert!(passed, "{out}");
    let fresh: Value = serde_json::from_slice(&std::fs::read(&stale).unwrap()).unwrap();
    assert_eq!(fresh["ansible_hostname"], "node3");

    // Run again once done: nothing to do but check.
    let again = sv_args(&args, &["--yes"]).expect(0);
    assert!(
        again.out.contains("healthy voting member already")
            && again.out.contains("0 created, 0 replaced, 0 updated"),
        "{}",
        again.out
    );
    assert_eq!(etcd3_id(&lab), new_id);
}

#[test]
fn replace_brings_a_wiped_etcd_member_back_on_etcd_3_4() {
    replace_etcd_member(EtcdVersion::V34, "rpl-member34", 93);
}

#[test]
fn replace_brings_a_wiped_etcd_member_back_on_etcd_3_5() {
    replace_etcd_member(EtcdVersion::V35, "rpl-member35", 94);
}

#[test]
fn replace_refuses_to_lose_quorum_and_replaces_a_worker() {
    quorum_and_worker(EtcdVersion::V34, "rpl-worker", 95);
}

#[test]
fn replace_refuses_to_lose_quorum_and_replaces_a_worker_on_etcd_3_5() {
    quorum_and_worker(EtcdVersion::V35, "rpl-worker35", 97);
}

fn quorum_and_worker(version: EtcdVersion, name: &str, net: u8) {
    let lab = Lab::up_with(name, net, 4, version);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts"]).expect(0);
    let worker_before = kube_files(&lab, "node4");
    let old_id = etcd3_id(&lab);

    // node3 reinstalled and node2's etcd down: two of three members gone.
    lab.lab(&["wipe", "node3"]);
    lab.lab(&["etcd-stop", "node2"]);
    let refused = sv_args(&replace_args(&lab, &v, "node3", None), &["--yes"]).expect(7);
    assert!(
        refused.err.contains("sprayvault etcd restore")
            && refused.err.contains("nothing was changed"),
        "{}\n{}",
        refused.out,
        refused.err
    );
    lab.exec(
        "node3",
        &[
            "sh",
            "-c",
            "test ! -e /etc/etcd.env && test -z \"$(ls -A /etc/ssl/etcd)$(ls -A /etc/kubernetes)\"",
        ],
    );
    lab.lab(&["etcd-start", "node2"]);
    // node1 and node2 have quorum again (node3 is still the wiped machine).
    let t = std::time::Instant::now();
    while !run(lab.cmd().args(["etcdctl", "node1", "endpoint", "health"]))
        .status
        .success()
    {
        assert!(
            t.elapsed().as_secs() < 30,
            "node1 and node2 do not become healthy"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let m = members(&lab, "node1");
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(etcd3_id(&lab), old_id, "the membership changed");

    // A worker: files back (kube's /etc/kubernetes and manifests/ with
    // them), no etcd step; kubespray gives workers no etcd CA, so there is
    // no trust store to update.
    lab.lab(&["wipe", "node4"]);
    let w = sv_args(&replace_args(&lab, &v, "node4", None), &["--yes"]).expect(0);
    assert!(
        w.out.contains("3. etcd: not a member (a worker)")
            && !w.out.contains("etcd: add")
            && w.out
                .lines()
                .any(|l| l.starts_with("restore the node's files") && !l.contains("trust store"))
            && w.out.contains("cluster.yml --limit node4"),
        "{}\n{}",
        w.out,
        w.err
    );
    assert_eq!(kube_files(&lab, "node4"), worker_before);
    assert!(
        worker_before.contains("/etc/kubernetes/manifests d 755 kube root"),
        "{worker_before}"
    );
    let bundle = lab.exec("node4", &["cat", "/etc/ssl/certs/ca-certificates.crt"]);
    let pem = std::fs::read_to_string(lab.dir.join("pki/etcd-ca.pem")).unwrap();
    assert!(!bundle.contains(pem.trim()));
}

#[test]
fn replace_brings_back_the_first_control_plane_and_etcd_node_on_etcd_3_5() {
    // node1 is first in kube_control_plane and in etcd, and its admin
    // certificate is the one the lab's own etcdctl uses.
    let lab = Lab::up_with("rpl-first", 96, 3, EtcdVersion::V35);
    let (v, kube, k) = backed_up(&lab, "node2");
    let inv = lab.inventory();
    let before = kube_files(&lab, "node1");
    assert!(
        before.contains("/etc/kubernetes d 755 kube root")
            && before.contains("/etc/ssl/etcd/ssl/ca-key.pem f 600 root root"),
        "{before}"
    );
    let etcd1 = |via: &str| {
        members(&lab, via)
            .iter()
            .find(|m| m["name"] == "etcd1")
            .and_then(|m| m["ID"].as_u64())
    };
    let old_id = etcd1("node2").expect("etcd1 is a member");

    // node1 is reinstalled and the control host lost its fact cache.
    lab.lab(&["wipe", "node1"]);
    for entry in std::fs::read_dir(&kube.cache).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let limit = [
        "ansible-playbook",
        "-i",
        &inv,
        "assert-facts.yml",
        "--limit",
        "node1",
    ];
    let (passed, out) = kube.run(&limit);
    assert!(!passed, "the --limit run should fail: {out}");
    assert!(
        out.contains("Kubespray does not support '--limit'"),
        "{out}"
    );

    let args = replace_args(&lab, &v, "node1", None);
    let plan = sv_args(&args, &["--ansible-dir", &k]).expect(7);
    assert!(
        plan.out
            .contains(&format!("member remove {old_id:x} (etcd1)"))
            && plan
                .out
                .contains("first control-plane host: node1 is first in kube_control_plane"),
        "{}\n{}",
        plan.out,
        plan.err
    );
    let done = sv_args(&args, &["--yes", "--ansible-dir", &k]).expect(0);
    assert!(
        done.out.contains("replaced node1")
            && done.out.contains("list it after node2, node3")
            && done.out.contains("cluster-info"),
        "{}\n{}",
        done.out,
        done.err
    );
    lab.lab(&["wait-healthy", "--timeout", "30"]);
    // The lab's etcdctl for node1 uses node1's restored admin certificate.
    let now = members(&lab, "node1");
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(now.iter().all(|m| m["isLearner"] != true), "{now:?}");
    let new_id = etcd1("node1").expect("etcd1 is a member again");
    assert_ne!(new_id, old_id);
    assert_eq!(keys_through(&lab, "node1"), 20);
    assert_eq!(kube_files(&lab, "node1"), before);

    // kubespray's --limit rule holds again: the others' facts are back.
    let (passed, out) = kube.run(&limit);
    assert!(passed, "{out}");
}
