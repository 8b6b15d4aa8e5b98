//! etcd snapshots against the lab's real TLS etcd cluster: taken during
//! backup with kubespray's admin certificate, verified, listed, exported to
//! a file that `etcdctl snapshot restore` accepts, failing over to another
//! member, and pruned with the space freed and `git fsck` clean. On etcd
//! 3.4 (Debian's) and 3.5 (kubespray's: etcdutl in /usr/local/bin).

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

#[test]
fn snapshots_are_taken_verified_exported_and_pruned() {
    snapshots_taken_verified_exported_and_pruned("etcd", 52, EtcdVersion::V34);
}

#[test]
fn snapshots_are_taken_verified_exported_and_pruned_on_etcd_3_5() {
    snapshots_taken_verified_exported_and_pruned("e35-etcd", 86, EtcdVersion::V35);
}

/// etcd's own offline snapshot tool of `version`, on this machine:
/// `etcdctl` (API 3) for 3.4, `etcdutl` for 3.5.
fn snapshot_tool(version: EtcdVersion) -> Command {
    match version {
        EtcdVersion::V34 => {
            let mut c = Command::new("etcdctl");
            c.env("ETCDCTL_API", "3");
            c
        }
        EtcdVersion::V35 => Command::new(version.bin_dir().join("etcdutl")),
    }
}

fn snapshots_taken_verified_exported_and_pruned(name: &str, net: u8, version: EtcdVersion) {
    let lab = Lab::up_with(name, net, 3, version);
    for i in 0..50 {
        lab.etcdctl(
            "node1",
            &[
                "put",
                &format!("/registry/test/key{i:03}"),
                &format!("value-{i}-{}", "x".repeat(500)),
            ],
        );
    }
    let v = TestVault::new();
    let r = v.backup(&lab, &["--no-facts"]).expect(0);
    assert!(
        r.out.contains("etcd snapshot: ") && r.out.contains("from etcd1 (node1)"),
        "{}",
        r.out
    );
    let ls: Value = serde_json::from_str(
        &sv_run(&["etcd", "ls", "--vault", v.path(), "--json"])
            .expect(0)
            .out,
    )
    .unwrap();
    let snap = &ls[0];
    assert!(snap["keys"].as_u64().unwrap() >= 50, "{ls}");
    let status: Value =
        serde_json::from_str(&lab.etcdctl("node1", &["endpoint", "status", "-w", "json"])).unwrap();
    let live_rev = status[0]["Status"]["header"]["revision"].as_u64().unwrap();
    assert_eq!(snap["revision"].as_u64().unwrap(), live_rev, "{ls}");
    let msg = v.git(&["show", "-s", "--format=%B", "main"]);
    assert!(
        msg.contains(&format!(
            "Sprayvault-Etcd: ok refs/sprayvault/etcd/{}",
            snap["name"].as_str().unwrap()
        )),
        "{msg}"
    );
    // Nothing is left on the node.
    assert_eq!(
        lab.exec(
            "node1",
            &["sh", "-c", "ls /var/tmp | grep -c sprayvault-etcd || true"]
        )
        .trim(),
        "0"
    );

    // Export, and etcd's own tool restores it.
    let out = v.tmp.path().join("snap.db");
    let id = v.key.identity.to_str().unwrap();
    let e = sv_run(&[
        "etcd",
        "export",
        "--vault",
        v.path(),
        "-o",
        out.to_str().unwrap(),
        "--identity",
        id,
    ])
    .expect(0);
    assert!(e.out.contains("sha256 trailer verified"), "{}", e.out);
    let st: Value = serde_json::from_str(&ok(snapshot_tool(version)
        .args(["snapshot", "status", "-w", "json"])
        .arg(&out)))
    .unwrap();
    assert_eq!(st["revision"].as_u64().unwrap(), live_rev);
    let data = v.tmp.path().join("restored.etcd");
    ok(snapshot_tool(version)
        .args(["snapshot", "restore"])
        .arg(&out)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--name",
            "etcd1",
            "--initial-cluster",
            "etcd1=https://127.0.52.11:2380",
            "--initial-advertise-peer-urls",
            "https://127.0.52.11:2380",
        ]));
    assert!(data.join("member/snap/db").is_file());
    // recover.sh reassembles it too, without sprayvault.
    let recovered = v.tmp.path().join("recovered");
    ok(Command::new("sh")
        .arg(root().join("vault-layout/recover.sh"))
        .arg(&v.dir)
        .arg(&v.key.identity)
        .arg(&recovered));
    let name = snap["name"].as_str().unwrap();
    assert_eq!(
        std::fs::read(recovered.join(format!("etcd/{name}.db"))).unwrap(),
        std::fs::read(&out).unwrap()
    );
    let other = age_key(v.tmp.path(), "other");
    sv_run(&[
        "etcd",
        "export",
        "--vault",
        v.path(),
        "-o",
        v.tmp.path().join("x.db").to_str().unwrap(),
        "--identity",
        other.identity.to_str().unwrap(),
    ])
    .expect(6);
    assert!(!v.tmp.path().join("x.db").exists());

    // node1 unreachable: the snapshot comes from the next member; the run is partial for node1.
    lab.lab(&["kill", "node1"]);
    // Each snapshot holds a key the others lack: members that applied the
    // same entries can write byte-identical databases, and then pruning
    // would rightly free nothing.
    lab.etcdctl(
        "node2",
        &["put", "/registry/test/while-node1-down", &"y".repeat(4000)],
    );
    let r = v
        .backup(&lab, &["--no-facts", "--connect-timeout", "3"])
        .expect(3);
    // (node2 as a rule; node3 when node2 was too slow to answer its health
    // check on a loaded machine)
    assert!(
        r.out.contains("from etcd2 (node2)") || r.out.contains("from etcd3 (node3)"),
        "{}",
        r.out
    );
    lab.lab(&["start", "node1"]);
    lab.lab(&["wait-healthy"]);
    lab.etcdctl(
        "node1",
        &["put", "/registry/test/node1-back", &"z".repeat(4000)],
    );
    v.backup(&lab, &["--no-facts"]).expect(0);

    // No member can give a snapshot: partial, and said why.
    for n in ["node1", "node2", "node3"] {
        lab.lab(&["etcd-stop", n]);
    }
    let r = v.backup(&lab, &["--no-facts"]).expect(3);
    assert!(
        r.out.contains("etcd snapshot FAILED") && r.out.contains("node node3"),
        "{}",
        r.out
    );
    assert!(v
        .git(&["show", "-s", "--format=%B", "main"])
        .contains("Sprayvault-Etcd: failed "));

    // Retention: keep the newest, free the rest, history of main untouched.
    let ls: Value = serde_json::from_str(
        &sv_run(&["etcd", "ls", "--vault", v.path(), "--json"])
            .expect(0)
            .out,
    )
    .unwrap();
    assert_eq!(ls.as_array().unwrap().len(), 3);
    let commits = v.git(&["rev-list", "--count", "main"]);
    let dry = sv_run(&[
        "prune",
        "--vault",
        v.path(),
        "--keep-last",
        "1",
        "--dry-run",
    ])
    .expect(0);
    assert!(
        dry.out.contains("2 snapshots would be removed"),
        "{}",
        dry.out
    );
    assert_eq!(
        serde_json::from_str::<Value>(
            &sv_run(&["etcd", "ls", "--vault", v.path(), "--json"])
                .expect(0)
                .out
        )
        .unwrap()
        .as_array()
        .unwrap()
        .len(),
        3
    );
    let chunk_blobs_before = v.blobs().len();
    // The snapshots are seconds old: only a zero grace frees them now
    // (lab_replicate_prune tests the default grace).
    let p = sv_run(&[
        "prune",
        "--vault",
        v.path(),
        "--keep-last",
        "1",
        "--gc-grace",
        "0",
    ])
    .expect(0);
    assert!(p.out.contains("removed 2 snapshots, kept 1"), "{}", p.out);
    let freed: i64 = p
        .out
        .rsplit("freed ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(freed > 0, "{}", p.out);
    assert!(v.blobs().len() < chunk_blobs_before);
    v.fsck();
    assert_eq!(v.git(&["rev-list", "--count", "main"]), commits);
    sv_run(&["verify", "--vault", v.path(), "--full", "--identity", id]).expect(0);
    sv_run(&[
        "etcd",
        "export",
        "--vault",
        v.path(),
        "-o",
        v.tmp.path().join("kept.db").to_str().unwrap(),
        "--identity",
        id,
    ])
    .expect(0);
    sv_run(&["prune", "--vault", v.path()]).expect(2);
}
