//! Disaster recovery against the lab's real 3-member TLS etcd cluster:
//! write keys, back up (with a snapshot), write more, lose quorum (two
//! members' data destroyed, the third still running on its old data), then
//! `sprayvault etcd restore` brings every member back from the snapshot and
//! the keys are read back with all members healthy. On etcd 3.4 (Debian's)
//! and 3.5 (Debian trixie's, in /usr/local/bin as kubespray installs it),
//! whose etcdutl bumps the revision: proven here by the revision and by a
//! watcher told its old revision was compacted.

mod common;

use common::*;
use serde_json::Value;

/// The revision `node` serves now (`endpoint status`).
fn revision(lab: &Lab, node: &str) -> u64 {
    let out = lab.etcdctl(node, &["endpoint", "status", "-w", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0]["Status"]["header"]["revision"]
        .as_u64()
        .unwrap_or_else(|| panic!("no revision in {out}"))
}

fn sprayvault_files(lab: &Lab, node: &str) -> String {
    lab.exec(
        node,
        &[
            "sh",
            "-c",
            "ls -a /var/lib/etcd; ls /var/tmp | grep sprayvault || true",
        ],
    )
}

#[test]
fn restore_brings_every_member_back_from_a_snapshot() {
    restore_brings_every_member_back("etcd-restore", 53, EtcdVersion::V34, &[]);
}

#[test]
fn restore_brings_every_member_back_from_a_snapshot_on_etcd_3_5() {
    // kubespray's etcd_cert_dir moved too: snapshot, plan and health checks
    // take the certificate paths from each member's etcd.env.
    restore_brings_every_member_back(
        "e35-etcd-restore",
        87,
        EtcdVersion::V35,
        &["--etcd-cert-dir", "/etc/etcd/ssl"],
    );
}

fn restore_brings_every_member_back(name: &str, net: u8, version: EtcdVersion, lab_args: &[&str]) {
    let lab = Lab::up_args(name, net, 3, version, lab_args);
    for i in 0..30 {
        lab.etcdctl(
            "node1",
            &["put", &format!("/registry/keep/k{i:02}"), &format!("v{i}")],
        );
    }
    let v = TestVault::new();
    let r = v.backup(&lab, &["--no-facts"]).expect(0);
    assert!(r.out.contains("etcd snapshot: "), "{}", r.out);
    lab.etcdctl("node1", &["put", "/registry/after-backup", "lost"]);
    // The newest revision the lost cluster served.
    let lost_rev = revision(&lab, "node1");

    // Quorum is lost: node1 and node2 stopped with their data destroyed,
    // node3 still running alone on its old data.
    for n in ["node1", "node2"] {
        lab.lab(&["etcd-stop", n]);
        lab.exec(n, &["rm", "-rf", "/var/lib/etcd/member"]);
    }
    let before = sprayvault_files(&lab, "node3");
    assert!(before.contains("member"), "{before}");

    let labcmd = format!(
        "{} --dir {} ",
        root().join("scripts/lab").display(),
        lab.dir.display()
    );
    let stop = format!("{labcmd}etcd-stop \"$(uname -n)\"");
    let start = format!("{labcmd}etcd-start \"$(uname -n)\"");
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let id = v.key.identity.to_str().unwrap().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "etcd",
            "restore",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--identity",
            &id,
            "--stop-command",
            &stop,
            "--start-command",
            &start,
            "--timeout",
            "90",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        sv_run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // A member whose etcd.env no longer matches the vault's is refused,
    // by name, and nothing changes.
    lab.exec(
        "node2",
        &[
            "sed",
            "-i",
            "s/^ETCD_NAME=.*/ETCD_NAME=other/",
            "/etc/etcd.env",
        ],
    );
    let refused = run(&["--yes"]).expect(7);
    assert!(
        refused
            .err
            .contains("node node2: /etc/etcd.env says ETCD_NAME=other, backup"),
        "{}",
        refused.err
    );
    lab.exec(
        "node2",
        &[
            "sed",
            "-i",
            "s/^ETCD_NAME=.*/ETCD_NAME=etcd2/",
            "/etc/etcd.env",
        ],
    );

    // kubeadm's etcd (a static pod) is refused by name, before anything.
    let kubeadm = v.tmp.path().join("kubeadm.ini");
    std::fs::write(
        &kubeadm,
        std::fs::read_to_string(&inv).unwrap() + "\n[all:vars]\netcd_deployment_type=kubeadm\n",
    )
    .unwrap();
    let refused = sv_run(
        &args(&["--yes"])
            .iter()
            .map(|a| {
                if *a == inv {
                    kubeadm.to_str().unwrap()
                } else {
                    a.as_str()
                }
            })
            .collect::<Vec<_>>(),
    )
    .expect(7);
    assert!(
        refused
            .err
            .contains("host node1 has etcd_deployment_type: kubeadm")
            && refused.err.contains("nothing was changed"),
        "{}",
        refused.err
    );

    // Without --yes: the plan, and nothing changes.
    let plan = run(&[]).expect(7);
    golden::check(
        &format!("plans/etcd-restore-{}.txt", version.as_str()),
        &golden::mask(&plan.out, None),
    );
    for m in ["etcd1", "etcd2", "etcd3"] {
        assert!(plan.out.contains(m), "{}", plan.out);
    }
    assert!(
        plan.out.contains(&format!(
            "initial cluster etcd1=https://127.0.{net}.11:2380"
        )),
        "{}",
        plan.out
    );
    // The tool each member restores with: etcdctl 3.4 cannot bump the
    // revision (the plan says so), Debian's etcdutl 3.5 does (the plan names
    // the bump).
    match version {
        EtcdVersion::V34 => {
            assert!(plan.out.contains("etcdctl 3.4.23"), "{}", plan.out);
            assert!(
                plan.out.contains(
                    "warning: etcdctl 3.4.23 on node1, node2, node3 is too old for `snapshot restore --bump-revision 1000000000 --mark-compacted`"
                ),
                "{}",
                plan.out
            );
        }
        EtcdVersion::V35 => {
            assert_eq!(
                plan.out.matches("(bumps revision)").count(),
                3,
                "{}",
                plan.out
            );
            assert!(plan.out.contains("etcdutl 3.5."), "{}", plan.out);
            assert!(!plan.out.contains("too old"), "{}", plan.out);
        }
    }
    assert!(plan.err.contains("re-run with --yes"), "{}", plan.err);
    assert_eq!(sprayvault_files(&lab, "node3"), before);
    for n in ["node1", "node2"] {
        assert!(!sprayvault_files(&lab, n).contains("sprayvault"));
    }

    // A stop command that fails: nothing is restored, the snapshot files and
    // restore directories are cleaned up, node3 keeps its data.
    let failed = {
        let mut a = args(&["--yes"]);
        let i = a.iter().position(|x| x == "--stop-command").unwrap();
        a[i + 1] = "echo no service manager here >&2; false".into();
        sv_run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }
    .expect(1);
    assert!(
        failed
            .err
            .contains("stopping etcd failed, so nothing was restored")
            && failed.err.contains("no service manager here"),
        "{}",
        failed.err
    );
    assert_eq!(sprayvault_files(&lab, "node3"), before);
    for n in ["node1", "node2"] {
        assert!(!sprayvault_files(&lab, n).contains("sprayvault"));
    }

    let done = run(&["--yes"]).expect(0);
    assert!(
        done.out.contains("all healthy"),
        "{}\n{}",
        done.out,
        done.err
    );

    // Every member is healthy, the keys of the snapshot are back, the key
    // written after the backup is not.
    lab.lab(&["wait-healthy", "--timeout", "30"]);
    let health = lab.etcdctl("node2", &["endpoint", "health", "--cluster", "-w", "json"]);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health.as_array().unwrap().len(), 3, "{health}");
    assert!(
        health
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["health"] == true),
        "{health}"
    );
    for n in ["node1", "node2", "node3"] {
        let keys = lab.etcdctl(n, &["get", "--prefix", "/registry/keep/", "--keys-only"]);
        assert_eq!(
            keys.lines().filter(|l| !l.is_empty()).count(),
            30,
            "{n}: {keys}"
        );
        assert_eq!(
            lab.etcdctl(n, &["get", "/registry/after-backup"]).trim(),
            ""
        );
    }
    let members = lab.etcdctl("node1", &["member", "list"]);
    assert_eq!(members.lines().count(), 3, "{members}");
    if version == EtcdVersion::V35 {
        // The bump: the revision is far above anything the lost cluster
        // served, and a watcher resuming from the lost cluster's last
        // revision (as every kube-apiserver watch cache would) is told
        // that it was compacted, so it lists again instead of missing
        // changes.
        let now_rev = revision(&lab, "node1");
        eprintln!("revision before the loss {lost_rev}, after the restore {now_rev}");
        assert!(
            now_rev >= lost_rev + 999_000_000,
            "before the loss {lost_rev}, after the restore {now_rev}"
        );
        let watch = std::process::Command::new("timeout")
            .arg("20")
            .arg(root().join("scripts/lab"))
            .args([
                "--dir",
                lab.dir.to_str().unwrap(),
                "etcdctl",
                "node2",
                "watch",
            ])
            .arg(format!("--rev={lost_rev}"))
            .arg("/registry/keep/")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&watch.stdout),
            String::from_utf8_lossy(&watch.stderr)
        );
        assert!(said.contains("compacted"), "{said}");
    }
    // The cluster takes writes again.
    lab.etcdctl("node1", &["put", "/registry/after-restore", "yes"]);
    assert!(lab
        .etcdctl("node3", &["get", "/registry/after-restore"])
        .contains("yes"));

    // node3's old data was moved aside, not deleted; the uploaded snapshot
    // files are gone from every member.
    let after3 = sprayvault_files(&lab, "node3");
    let aside = after3
        .lines()
        .find(|l| l.starts_with(".sprayvault-before-"))
        .unwrap_or_else(|| panic!("no old data kept on node3: {after3}"));
    lab.exec(
        "node3",
        &["test", "-d", &format!("/var/lib/etcd/{aside}/member/wal")],
    );
    for n in ["node1", "node2", "node3"] {
        let files = sprayvault_files(&lab, n);
        assert!(!files.contains("sprayvault-etcd-restore"), "{n}: {files}");
        assert!(!files.contains(".sprayvault-restore-"), "{n}: {files}");
    }
}
