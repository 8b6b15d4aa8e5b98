//! Memory with nodes that serve large files, against a real lab: several
//! files just under the per-file limit on every node, read at once, are
//! streamed into the vault (never held whole), and a next night that finds
//! them unchanged only hashes them.

mod common;
use common::*;
use std::process::Command;

/// The per-file limit of this test, and the size of each large file.
const LIMIT: &str = "48M";
const SIZE_MIB: u64 = 47;
const NODES: usize = 3;
const FILES: usize = 4;

fn backup(v: &TestVault, lab: &Lab) -> (String, u64) {
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let (out, peak_kib) = run_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_sprayvault")).args([
            "backup",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--no-facts",
            "--no-etcd-snapshot",
            "--max-file-size",
            LIMIT,
        ]),
        |_| {},
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(peak_kib > 0);
    (said, peak_kib)
}

/// `N new objects` of a backup's summary.
fn new_objects(said: &str) -> u64 {
    said.split(" new objects")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of new objects in:\n{said}"))
}

#[test]
fn large_files_on_every_node_are_streamed_in_bounded_memory_and_hashed_only_when_unchanged() {
    let lab = Lab::up("memory", 111, NODES);
    let v = TestVault::new();
    for n in 1..=NODES {
        let node = format!("node{n}");
        let script = format!(
            "mkdir -p /etc/kubernetes/big && for i in $(seq 1 {FILES}); do \
             head -c {}M /dev/urandom > /etc/kubernetes/big/f$i; done",
            SIZE_MIB
        );
        lab.exec(&node, &["sh", "-c", &script]);
    }
    let total_mib = SIZE_MIB * (NODES * FILES) as u64;

    let (said, first_kib) = backup(&v, &lab);
    let first = new_objects(&said);
    assert!(
        first >= (NODES * FILES) as u64,
        "every large file is a new object: {said}"
    );
    assert!(
        first_kib < 128 << 10,
        "first night, {total_mib} MiB of large files: peak RSS {first_kib} KiB"
    );
    v.fsck();

    // What was stored is what the node has, byte for byte.
    let tar = v.tmp.path().join("node2.tar");
    sv_run(&[
        "export",
        "node2",
        "--vault",
        v.path(),
        "--identity",
        v.key.identity.to_str().unwrap(),
        "-o",
        tar.to_str().unwrap(),
    ])
    .expect(0);
    let from_vault = ok(Command::new("sh").arg("-c").arg(format!(
        "tar -xOf {} etc/kubernetes/big/f3 | sha256sum",
        tar.display()
    )));
    let on_node = lab.exec("node2", &["sh", "-c", "sha256sum < /etc/kubernetes/big/f3"]);
    assert_eq!(from_vault.trim(), on_node.trim());

    // Unchanged: hashed, never stored again.
    let (said, second_kib) = backup(&v, &lab);
    assert_eq!(new_objects(&said), 0, "{said}");
    assert!(
        second_kib < 128 << 10,
        "unchanged night: peak RSS {second_kib} KiB"
    );

    // One file changed on one node: one new object.
    lab.exec(
        "node3",
        &[
            "sh",
            "-c",
            "printf x | dd of=/etc/kubernetes/big/f2 bs=1 seek=1000 conv=notrunc 2>/dev/null",
        ],
    );
    let (said, third_kib) = backup(&v, &lab);
    assert_eq!(new_objects(&said), 1, "{said}");
    assert!(third_kib < 128 << 10, "peak RSS {third_kib} KiB");
    v.fsck();
    println!(
        "{NODES} nodes x {FILES} files of {SIZE_MIB} MiB ({total_mib} MiB): peak RSS {first_kib} KiB first night, {second_kib} KiB unchanged, {third_kib} KiB one file changed"
    );
}
