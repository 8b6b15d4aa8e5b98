//! The core against a real lab: sshd and etcd members in namespaces
//! (scripts/lab), the real binary, git, and the age CLI.

mod common;

use common::*;
use std::process::Command;

/// What a node holds in the paths sprayvault backs up: type, mode, owner and
/// group by name, size, link target, and content hash, one line per entry.
fn node_state(lab: &Lab, node: &str) -> String {
    let script = "cd / && for p in etc/ssl/etcd/ssl etc/kubernetes/ssl etc/kubernetes/pki usr/local/share/ca-certificates etc/etcd.env etc/kubernetes/*.conf etc/kubernetes/kubeadm-config.yaml; do \
        [ -e \"$p\" ] || [ -L \"$p\" ] || continue; \
        find \"$p\" -printf '%p %y %m %u %g %s %l\\n' -type f -exec sha256sum {} \\; ; done | sort";
    lab.exec(node, &["sh", "-c", script])
}

#[test]
fn backup_dedups_then_wiped_node_is_restored_and_rejoins_etcd() {
    backup_dedups_then_wiped_node_is_restored("core", 41, EtcdVersion::V34);
}

#[test]
fn backup_dedups_then_wiped_node_is_restored_and_rejoins_etcd_3_5() {
    backup_dedups_then_wiped_node_is_restored("e35-core", 85, EtcdVersion::V35);
}

fn backup_dedups_then_wiped_node_is_restored(name: &str, net: u8, version: EtcdVersion) {
    let lab = Lab::up_with(name, net, 3, version);
    let v = TestVault::new();

    let first = v.backup(&lab, &[]).expect(0);
    assert!(first.out.contains("3/3 nodes"), "{}", first.out);
    v.fsck();
    // kubespray's layout: the first etcd node's certificates are root's as
    // make-ssl-etcd.sh made them, the other members' copies etcd's 0640,
    // /etc/kubernetes kube's.
    let key_line = |node: &str| {
        v.git(&["cat-file", "blob", &format!("main:nodes/{node}/manifest")])
            .lines()
            .find(|l| l.ends_with("\t/etc/ssl/etcd/ssl/ca-key.pem\t-"))
            .expect("ca-key.pem recorded")
            .to_string()
    };
    let first_key = key_line("node1");
    assert!(first_key.starts_with("f\t0600\t"), "{first_key}");
    assert!(first_key.contains("\troot\troot\t"), "{first_key}");
    let copy = key_line("node2");
    assert!(copy.starts_with("f\t0640\t"), "{copy}");
    assert!(
        copy.contains("\tetcd\troot\t"),
        "owner recorded by name: {copy}"
    );
    let manifest = v.git(&["cat-file", "blob", "main:nodes/node1/manifest"]);
    assert!(
        manifest.lines().any(|l| l.starts_with("d\t0755\t")
            && l.contains("\tkube\troot\t")
            && l.ends_with("\t/etc/kubernetes\t-")),
        "/etc/kubernetes is kube's:\n{manifest}"
    );
    assert!(
        manifest
            .lines()
            .any(|l| l.starts_with("l\t") && l.contains("\t/etc/kubernetes/pki\t")),
        "pki stays a symlink:\n{manifest}"
    );

    // The age CLI decrypts what sprayvault encrypted.
    let cipher = v.git(&["rev-parse", "main:nodes/node2/files/etc/etcd.env"]);
    let plain = ok(Command::new("sh").arg("-c").arg(format!(
        "git --git-dir {} cat-file blob {} | age -d -i {}",
        v.path(),
        cipher.trim(),
        v.key.identity.display()
    )));
    assert_eq!(
        plain.as_bytes(),
        std::fs::read(lab.node_root("node2").join("etc/etcd.env")).unwrap()
    );
    assert!(plain.contains("ETCD_NAME=etcd2"));

    // Nothing changed: no new blob at all (etcd snapshots, which change with
    // every raft tick, are checked in lab_etcd.rs).
    let before = v.blobs();
    let second = v.backup(&lab, &["--no-etcd-snapshot"]).expect(0);
    assert!(second.out.contains("0 changed"), "{}", second.out);
    assert_eq!(v.blobs(), before, "an unchanged backup added blobs");

    // One changed file: one new encrypted object (plus node1's new manifest).
    lab.exec(
        "node1",
        &["sh", "-c", "echo '# rotated' >> /etc/kubernetes/admin.conf"],
    );
    v.backup(&lab, &["--no-etcd-snapshot"]).expect(0);
    let added: Vec<String> = v.blobs().difference(&before).cloned().collect();
    assert_eq!(added.len(), 2, "{added:?}");
    let encrypted = added
        .iter()
        .filter(|b| {
            v.git(&["cat-file", "blob", b])
                .starts_with("age-encryption.org/v1")
        })
        .count();
    assert_eq!(encrypted, 1);
    v.fsck();

    // A fresh machine: restore node3 and rejoin its etcd member.
    let original = node_state(&lab, "node3");
    lab.lab(&["wipe", "node3"]);
    assert_ne!(node_state(&lab, "node3"), original);
    let inv = lab.inventory();
    let cfg = lab.ssh_config();
    let id = v.key.identity.display().to_string();
    let restore = |extra: &[&str]| {
        let mut a = vec![
            "restore",
            "node3",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--identity",
            &id,
        ];
        a.extend_from_slice(extra);
        sv_run(&a)
    };
    let dry = restore(&["--dry-run"]).expect(0);
    golden::check(
        &format!("plans/restore-wiped-node-{}.txt", version.as_str()),
        &golden::mask(&dry.out, None),
    );
    assert!(
        dry.out.lines().any(|l| l.starts_with("create")
            && l.contains(" file ")
            && l.contains("0640 etcd:root")
            && l.ends_with("/etc/ssl/etcd/ssl/member-node3-key.pem")),
        "{}",
        dry.out
    );
    assert!(dry.out.contains("dry run: nothing was changed"));
    assert!(
        !lab.node_root("node3").join("etc/etcd.env").exists(),
        "dry run wrote"
    );

    let done = restore(&[]).expect(0);
    assert!(done.out.contains("0 errors"), "{}", done.out);
    assert_eq!(
        node_state(&lab, "node3"),
        original,
        "restored state differs"
    );
    // Running it again finds nothing to do.
    let again = restore(&[]).expect(0);
    assert!(
        again.out.contains("0 to create, 0 to replace"),
        "{}",
        again.out
    );

    // A target whose files differ, or whose hostname is another node's, is refused without --force.
    lab.exec(
        "node3",
        &[
            "sh",
            "-c",
            "echo tampered > /etc/kubernetes/ssl/ca.crt && chmod 0600 /etc/ssl/etcd/ssl/ca.pem",
        ],
    );
    let refused = restore(&[]).expect(7);
    assert!(
        refused.err.contains("1 existing entries differ") && refused.err.contains("--force"),
        "{}",
        refused.err
    );
    assert!(
        refused.out.lines().any(|l| l.starts_with("replace")
            && l.contains("/etc/kubernetes/ssl/ca.crt")
            && l.contains("content differs")),
        "{}",
        refused.out
    );
    assert!(
        refused
            .out
            .lines()
            .any(|l| l.starts_with("update") && l.contains("/etc/ssl/etcd/ssl/ca.pem")),
        "{}",
        refused.out
    );
    assert_eq!(
        std::fs::read_to_string(lab.node_root("node3").join("etc/kubernetes/ssl/ca.crt")).unwrap(),
        "tampered\n",
        "a refused restore wrote"
    );
    let other_addr = format!("127.0.{net}.12");
    let other = restore(&["--to", &other_addr, "--dry-run"]).expect(7);
    assert!(
        other.err.contains("hostname is \"node2\", not \"node3\""),
        "{}",
        other.err
    );
    let forced = restore(&["--force"]).expect(0);
    assert!(
        forced.out.contains("1 replaced, 1 updated"),
        "{}",
        forced.out
    );
    assert_eq!(
        node_state(&lab, "node3"),
        original,
        "forced restore did not put the backup back"
    );

    lab.lab(&["etcd-rejoin", "node3"]);
    let health = ok(Command::new("sh").arg("-c").arg(format!(
        "{} --dir {} etcdctl node1 endpoint health --cluster 2>&1",
        root().join("scripts/lab").display(),
        lab.dir.display()
    )));
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
}

#[test]
fn recover_sh_restores_every_node_without_sprayvault() {
    let lab = Lab::up("recover", 42, 3);
    let v = TestVault::new();
    v.backup(&lab, &[]).expect(0);
    let out = v.tmp.path().join("out");
    ok(Command::new("sh")
        .arg(root().join("vault-layout/recover.sh"))
        .arg(&v.dir)
        .arg(&v.key.identity)
        .arg(&out));
    let mut files = 0;
    for node in ["node1", "node2", "node3"] {
        let manifest = v.git(&["cat-file", "blob", &format!("main:nodes/{node}/manifest")]);
        for line in manifest.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let (kind, mode, path) = (f[0], f[1], f[9]);
            let recovered = out.join(node).join(&path[1..]);
            let original = lab.node_root(node).join(&path[1..]);
            let rmeta = std::fs::symlink_metadata(&recovered)
                .unwrap_or_else(|e| panic!("{node}{path} not recovered: {e}"));
            let ometa = std::fs::symlink_metadata(&original).unwrap();
            let omode = std::os::unix::fs::PermissionsExt::mode(&ometa.permissions()) & 0o7777;
            // Run as root, recover.sh gives everything its recorded owner:
            // kubespray's (kube's /etc/kubernetes, etcd's /etc/ssl/etcd), by
            // name where this machine has the name, else by the recorded id.
            use std::os::unix::fs::MetadataExt;
            let here = |db: &str, name: &str, recorded: &str| -> u32 {
                let out = Command::new("getent").args([db, name]).output().unwrap();
                let line = String::from_utf8_lossy(&out.stdout).to_string();
                line.split(':')
                    .nth(2)
                    .unwrap_or(recorded)
                    .trim()
                    .parse()
                    .unwrap()
            };
            assert_eq!(
                (rmeta.uid(), rmeta.gid()),
                (here("passwd", f[4], f[2]), here("group", f[5], f[3])),
                "owner of {node}{path} ({} {})",
                f[4],
                f[5]
            );
            assert_eq!(
                (f[2].parse::<u32>().unwrap(), f[3].parse::<u32>().unwrap()),
                (ometa.uid(), ometa.gid())
            );
            match kind {
                "f" => {
                    files += 1;
                    assert_eq!(
                        std::fs::read(&recovered).unwrap(),
                        std::fs::read(&original).unwrap(),
                        "{node}{path}"
                    );
                    assert_eq!(format!("{omode:04o}"), mode);
                    assert_eq!(
                        std::os::unix::fs::PermissionsExt::mode(&rmeta.permissions()) & 0o7777,
                        omode,
                        "{node}{path}"
                    );
                }
                "l" => assert_eq!(
                    std::fs::read_link(&recovered).unwrap(),
                    std::fs::read_link(&original).unwrap()
                ),
                _ => assert!(rmeta.is_dir()),
            }
        }
    }
    assert!(files > 20, "only {files} files recovered");
}

#[test]
fn unreachable_node_makes_a_partial_backup_that_keeps_its_state() {
    let lab = Lab::up("partial", 43, 3);
    let v = TestVault::new();
    v.backup(&lab, &[]).expect(0);
    let node2_before = v.git(&["rev-parse", "main:nodes/node2"]);
    lab.lab(&["kill", "node2"]);
    let r = v.backup(&lab, &["--connect-timeout", "5"]).expect(3);
    assert!(
        r.out.contains("node2") && r.out.contains("failed"),
        "{}",
        r.out
    );
    assert!(
        r.err.contains("node node2"),
        "error names the node: {}",
        r.err
    );
    let msg = v.git(&["show", "-s", "--format=%B", "main"]);
    assert!(msg.contains("Sprayvault-Node: node2 failed "), "{msg}");
    assert!(msg.contains("Sprayvault-Node: node1 ok"), "{msg}");
    assert_eq!(
        v.git(&["rev-parse", "main:nodes/node2"]),
        node2_before,
        "node2's state was not kept"
    );
    v.fsck();
    lab.lab(&["start", "node2"]);
    v.backup(&lab, &[]).expect(0);
}

#[test]
fn non_root_user_reads_through_sudo_and_missing_sudo_is_a_clear_error() {
    let lab = Lab::up("sudo", 44, 2);
    let v = TestVault::new();
    let inv = v.tmp.path().join("deploy.ini");
    let nodes = std::fs::read_to_string(lab.inventory()).unwrap();
    let deploy = nodes.replace(
        "ansible_user=root",
        "ansible_user=deploy ansible_become=true",
    );
    std::fs::write(&inv, &deploy).unwrap();
    let cfg = lab.ssh_config();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        inv.to_str().unwrap(),
        "--ssh-config",
        &cfg,
    ])
    .expect(0);
    assert!(r.out.contains("2/2 nodes"), "{}", r.out);
    let manifest = v.git(&["cat-file", "blob", "main:nodes/node1/manifest"]);
    assert!(
        manifest.contains("\t/etc/ssl/etcd/ssl/ca-key.pem\t"),
        "root-only key not read through sudo:\n{manifest}"
    );

    let head = v.git(&["rev-parse", "main"]);
    std::fs::write(
        &inv,
        nodes.replace(
            "ansible_user=root",
            "ansible_user=nosudo ansible_become=true",
        ),
    )
    .unwrap();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        inv.to_str().unwrap(),
        "--ssh-config",
        &cfg,
    ])
    .expect(1);
    assert!(
        r.err
            .contains("node node1: user nosudo cannot run `sudo -n`"),
        "{}",
        r.err
    );
    assert_eq!(
        v.git(&["rev-parse", "main"]),
        head,
        "a failed run committed"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let lab = Lab::up("bad", 45, 2);
    let v = TestVault::new();
    v.backup(&lab, &[]).expect(0);
    let head = v.git(&["rev-parse", "main"]);
    let tmp = v.tmp.path();
    let cfg = lab.ssh_config();

    // Malformed inventory.
    let bad = tmp.join("bad.ini");
    std::fs::write(&bad, "[all]\nnode1 ansible_host='127.0.45.11\n").unwrap();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        bad.to_str().unwrap(),
        "--ssh-config",
        &cfg,
    ])
    .expect(1);
    assert!(r.err.contains("bad.ini"), "names the file: {}", r.err);

    // A hostile host name never reaches ssh.
    let hostile = tmp.join("hostile.ini");
    std::fs::write(
        &hostile,
        "[all]\n-oProxyCommand=touch${IFS}/tmp/sprayvault-pwned ansible_host=127.0.45.11\n",
    )
    .unwrap();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        hostile.to_str().unwrap(),
        "--ssh-config",
        &cfg,
    ]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(!std::path::Path::new("/tmp/sprayvault-pwned").exists());

    // Unknown host key: refused, never accepted silently.
    let strict = tmp.join("ssh_config_empty_known_hosts");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let empty = tmp.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let replaced: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("UserKnownHostsFile") {
                format!("  UserKnownHostsFile {}", empty.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&strict, replaced + "\n").unwrap();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &lab.inventory(),
        "--ssh-config",
        strict.to_str().unwrap(),
    ])
    .expect(1);
    assert!(r.err.contains("host key"), "{}", r.err);
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "a host key was added to known_hosts"
    );

    // Missing recipient.
    let nov = tmp.join("new-vault");
    let r = sv_run(&["init", "--vault", nov.to_str().unwrap()]).expect(2);
    assert!(r.err.contains("--recipient"), "{}", r.err);
    assert!(!nov.exists());
    let r = sv_run(&[
        "init",
        "--vault",
        nov.to_str().unwrap(),
        "--recipient",
        "age1notakey",
    ])
    .expect(1);
    assert!(r.err.contains("age1notakey"), "{}", r.err);
    assert!(!nov.exists());

    // No vault.
    let r = sv_run(&[
        "backup",
        "--vault",
        "/nonexistent/vault",
        "-i",
        &lab.inventory(),
        "--ssh-config",
        &cfg,
    ])
    .expect(4);
    assert!(r.err.contains("sprayvault init"), "{}", r.err);

    // Wrong identity.
    let other = age_key(tmp, "other");
    let inv = lab.inventory();
    let r = sv_run(&[
        "restore",
        "node1",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--identity",
        other.identity.to_str().unwrap(),
        "--dry-run",
    ])
    .expect(6);
    assert!(
        r.err.contains("cannot decrypt") && r.err.contains("node node1"),
        "{}",
        r.err
    );

    // Unknown node and unknown revision.
    let id = v.key.identity.to_str().unwrap();
    let r = sv_run(&[
        "restore",
        "node9",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--identity",
        id,
    ])
    .expect(1);
    assert!(r.err.contains("node node9 is not in backup"), "{}", r.err);
    let r = sv_run(&[
        "restore",
        "node1",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--identity",
        id,
        "--at",
        "nosuchrev",
    ])
    .expect(1);
    assert!(
        r.err.contains("\"nosuchrev\" does not name a backup"),
        "{}",
        r.err
    );

    // Locked vault.
    let lock = v.dir.join("sprayvault/lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = v.backup(&lab, &[]).expect(5);
    assert!(r.err.contains("locked"), "{}", r.err);
    let _ = holder.kill();
    let _ = holder.wait();

    // A symlink planted where the backup has a directory is never written through.
    let outside = format!("/tmp/sprayvault-test-outside-{}", std::process::id());
    lab.exec("node1", &["sh", "-c", &format!("mkdir -p {outside} && rm -rf /etc/ssl/etcd/ssl && ln -s {outside} /etc/ssl/etcd/ssl")]);
    let r = sv_run(&[
        "restore",
        "node1",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--identity",
        id,
        "--force",
    ])
    .expect(3);
    assert!(
        r.out.contains("FAILED /etc/ssl/etcd/ssl/ca-key.pem")
            && r.out.contains("refusing to write through it"),
        "{}",
        r.out
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "restore wrote outside the node's tree"
    );
    let _ = std::fs::remove_dir_all(&outside);

    // A corrupted object: restore refuses and names the file.
    let blob = v
        .git(&["rev-parse", "main:nodes/node1/files/etc/etcd.env"])
        .trim()
        .to_string();
    let obj = v.dir.join("objects").join(&blob[..2]).join(&blob[2..]);
    let mut bytes = std::fs::read(&obj).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let mut perm = std::fs::metadata(&obj).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
    std::fs::set_permissions(&obj, perm).unwrap();
    std::fs::write(&obj, bytes).unwrap();
    let r = sv_run(&[
        "restore",
        "node1",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--identity",
        id,
        "--dry-run",
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.err.contains("/etc/etcd.env") && r.err.contains("node1"),
        "{}",
        r.err
    );

    assert_eq!(
        v.git(&["rev-parse", "main"]),
        head,
        "bad input changed the vault"
    );
}
