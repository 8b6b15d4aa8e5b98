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

/// Every file of the vault's object store.
fn object_files(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    walkdir::WalkDir::new(dir.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect()
}

/// `etcd snapshot`, the etcd-only run an hourly timer calls: a signed
/// snapshot ref and nothing else (main, the nodes' files untouched), in
/// seconds; the next one stores little; its metrics carry
/// run="etcd-snapshot"; `prune --keep-hourly` keeps one per hour; with no
/// member answering it fails and leaves the object store as it was.
#[test]
fn an_etcd_only_run_stores_a_signed_snapshot_and_nothing_else() {
    let lab = Lab::up("etcd-hourly", 118, 3);
    // A few MiB of keys, so that a snapshot is several packs.
    for i in 0..40 {
        let value: String = (0..9000)
            .map(|j| format!("{:x}", (i * 7919 + j * 104729) % 65521))
            .collect();
        lab.etcdctl(
            "node1",
            &[
                "put",
                &format!("/registry/hourly/k{i}"),
                &value[..90_000.min(value.len())],
            ],
        );
    }
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts"]).expect(0);
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let main = v.git(&["rev-parse", "main"]);
    let refs = |v: &TestVault| {
        v.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/sprayvault/etcd/",
        ])
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let before = refs(&v);
    let tmp = tempfile::tempdir().unwrap();
    let prom = tmp.path().join("hourly.prom");
    let snap = |extra: &[&str]| {
        let mut a = vec![
            "etcd",
            "snapshot",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
        ];
        a.extend_from_slice(extra);
        sv_run(&a)
    };
    let started = std::time::Instant::now();
    let r = snap(&["--metrics-file", prom.to_str().unwrap()]).expect(0);
    println!(
        "etcd snapshot took {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        r.out.trim()
    );
    assert!(r.out.starts_with("etcd snapshot: "), "{}", r.out);
    assert_eq!(
        v.git(&["rev-parse", "main"]),
        main,
        "an etcd-only run moved main"
    );
    let after = refs(&v);
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let new_ref = after.iter().find(|r| !before.contains(r)).unwrap().clone();
    // Signed by the vault's key: the trusted `etcd export` takes it as latest.
    let out = tmp.path().join("snap.db");
    let id = v.key.identity.display().to_string();
    let e = sv_run(&[
        "etcd",
        "export",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "-o",
        out.to_str().unwrap(),
    ])
    .expect(0);
    let name = new_ref.trim_start_matches("refs/sprayvault/etcd/");
    assert!(e.err.contains(name), "{}", e.err);
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(
        metrics.contains(&format!(
            "sprayvault_last_run_success{{vault=\"{}\",run=\"etcd-snapshot\"}} 1",
            v.path()
        )),
        "{metrics}"
    );
    // A small change: the next snapshot refers to the packs of the last
    // one and stores the few pages bbolt rewrote (one pack and the map).
    lab.etcdctl("node1", &["put", "/registry/hourly/x", "y"]);
    let r = snap(&["--json"]).expect(0);
    let j: Value = serde_json::from_str(&r.out).unwrap();
    assert!(j["packs"].as_u64().unwrap() > 4, "{}", r.out);
    assert_eq!(j["new_blobs"].as_u64().unwrap(), 2, "{}", r.out);
    assert!(
        j["bytes_added"].as_u64().unwrap() * 20 < j["size"].as_u64().unwrap(),
        "{}",
        r.out
    );
    // A stream past the limit is stopped and nothing of it is kept.
    let (refs_before, objects) = (refs(&v), object_files(&v.dir));
    let r = snap(&["--etcd-snapshot-limit", "64K"]).expect(1);
    assert!(
        r.err.contains("the snapshot stream passed 65536 bytes"),
        "{}",
        r.err
    );
    assert_eq!(refs(&v), refs_before);
    assert_eq!(object_files(&v.dir), objects);
    // One per hour: all three snapshots fall in this hour.
    let p = sv_run(&[
        "prune",
        "--vault",
        v.path(),
        "--keep-hourly",
        "1",
        "--dry-run",
    ])
    .expect(0);
    assert!(p.out.contains("1 kept"), "{}", p.out);
    // No member answers: exit 1, nothing stored, the object store as it was.
    for n in ["node1", "node2", "node3"] {
        lab.lab(&["etcd-stop", n]);
    }
    let (refs_before, objects) = (refs(&v), object_files(&v.dir));
    let r = snap(&["--node-timeout", "60"]).expect(1);
    assert!(
        r.err.contains("no etcd member gave a snapshot"),
        "{}",
        r.err
    );
    assert_eq!(refs(&v), refs_before);
    assert_eq!(object_files(&v.dir), objects);
    assert_eq!(v.git(&["rev-parse", "main"]), main);
}
