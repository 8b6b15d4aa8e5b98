//! The control host and node export against a real lab: a kubespray-shaped
//! checkout (a real git repository with release tags), the real binary,
//! git, age, GNU tar, recover.sh and /usr/bin/time.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=ops", "-c", "user.email=ops@example.org"])
        .args(args))
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every entry below `dir` (restricted to ansible.cfg and inventory/mycluster/):
/// path, type, mode, numeric owner and group, size, mtime in seconds, link
/// target, and the content's sha256.
fn tree_state(dir: &Path) -> String {
    ok(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find ansible.cfg inventory/mycluster -printf '%p %y %m %U %G %s %TY%Tm%Td%TH%TM %l\\n' | sort && \
         find ansible.cfg inventory/mycluster -type f -exec stat -c '%n %Y' {{}} + | sort && \
         find ansible.cfg inventory/mycluster -type f -exec sha256sum {{}} + | sort",
        dir.display()
    )))
}

fn inventory(node2: bool, lab: &Lab) -> String {
    let addr = |n: &str| lab.lab(&["addr", n]).trim().to_string();
    let mut s = format!(
        "[all]\nnode1 ansible_host={} ansible_user=root\n",
        addr("node1")
    );
    if node2 {
        s.push_str(&format!(
            "node2 ansible_host={} ansible_user=root\n",
            addr("node2")
        ));
    }
    s.push_str("\n[etcd]\nnode1\n\n[kube_control_plane]\nnode1\n\n[kube_node]\n");
    s.push_str(if node2 { "node2\n" } else { "node1\n" });
    s.push_str("\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n");
    s
}

/// What a node holds in the paths sprayvault backs up, as seen inside the
/// node (names from its own passwd), below `root`.
fn node_files(lab: &Lab, node: &str, root: &str) -> String {
    let script = format!(
        "cd {root} && for p in etc/ssl/etcd/ssl etc/kubernetes/ssl etc/kubernetes/pki usr/local/share/ca-certificates etc/etcd.env etc/kubernetes/*.conf; do \
         [ -e \"$p\" ] || [ -L \"$p\" ] || continue; \
         find \"$p\" -printf '%p %y %m %u %g %U %G %s %l\\n' -type f -exec stat -c '%n %Y' {{}} \\; -exec sha256sum {{}} \\; ; done | sort"
    );
    lab.exec(node, &["sh", "-c", &script])
}

#[test]
fn control_host_is_backed_up_diffed_restored_and_recovered_and_nodes_export_as_tar() {
    for t in ["tar", "git", "age", "sha256sum"] {
        need(t);
    }
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is missing: run scripts/install-deps"
    );
    let lab = Lab::up("ctl-control", 70, 2);
    let v = TestVault::new();
    let tmp = tempfile::tempdir().unwrap();
    let id = v.key.identity.display().to_string();

    // A kubespray checkout at v2.24.0 with its inventory.
    let k = tmp.path().join("kubespray");
    std::fs::create_dir_all(&k).unwrap();
    git(&k, &["init", "-q"]);
    write(&k.join("ansible.cfg"), "[defaults]\nforks = 20\n", 0o644);
    write(
        &k.join("cluster.yml"),
        "- import_playbook: playbooks/cluster.yml\n",
        0o644,
    );
    write(
        &k.join("roles/kubespray-defaults/defaults/main.yml"),
        "kube_version: v1.28.6\n",
        0o644,
    );
    let inv = k.join("inventory/mycluster");
    write(&inv.join("inventory.ini"), &inventory(false, &lab), 0o644);
    write(
        &inv.join("group_vars/all/all.yml"),
        "kube_version: v1.28.6\netcd_deployment_type: host\nregistry_password: hunter2-one\n",
        0o640,
    );
    write(
        &inv.join("group_vars/k8s_cluster/k8s-cluster.yml"),
        "kube_network_plugin: calico\n",
        0o644,
    );
    write(&inv.join("host_vars/node1.yml"), "ip: 10.0.0.11\n", 0o644);
    write(
        &inv.join("credentials/kubeadm_certificate_key.creds"),
        "certkey-one\n",
        0o600,
    );
    write(
        &inv.join("credentials/kube_encrypt_token.creds"),
        "enctoken-one\n",
        0o600,
    );
    std::fs::set_permissions(
        inv.join("credentials"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::os::unix::fs::symlink("../group_vars/all/all.yml", inv.join("host_vars/all.yml")).unwrap();
    git(&k, &["add", "."]);
    git(&k, &["commit", "-q", "-m", "v2.24.0"]);
    git(&k, &["tag", "v2.24.0"]);
    write(
        &k.join("roles/kubespray-defaults/defaults/main.yml"),
        "kube_version: v1.29.1\n",
        0o644,
    );
    git(&k, &["commit", "-q", "-am", "v2.25.0"]);
    git(&k, &["tag", "v2.25.0"]);
    git(&k, &["checkout", "-q", "v2.24.0"]);
    // Owners are recorded and restored by number when there is no name.
    ok(Command::new("chown")
        .arg("4321:4322")
        .arg(inv.join("credentials/kube_encrypt_token.creds")));
    let original = tree_state(&k);

    let inv_file = inv.join("inventory.ini").display().to_string();
    let cfg = lab.ssh_config();
    let backup = |extra: &[&str]| {
        let mut a = vec![
            "backup",
            "--vault",
            v.path(),
            "-i",
            &inv_file,
            "--ssh-config",
            &cfg,
            "--no-etcd-snapshot",
            "--no-facts",
        ];
        a.extend_from_slice(extra);
        sv_run(&a)
    };
    let first = backup(&[]).expect(0);
    assert!(
        first.out.contains(&format!(
            "control host: {} (found by the inventory's location), kubespray v2.24.0 (commit",
            k.display()
        )) && first.out.contains("unmodified), 7 files"),
        "{}",
        first.out
    );
    // Encrypted like node files: the age CLI decrypts it.
    let plain = ok(Command::new("sh").arg("-c").arg(format!(
        "git --git-dir {} cat-file blob main:control/files/inventory/mycluster/credentials/kube_encrypt_token.creds | age -d -i {id}",
        v.path()
    )));
    assert_eq!(plain, "enctoken-one\n");
    assert!(v
        .git(&["cat-file", "blob", "main:control/kubespray"])
        .contains("describe v2.24.0\n"));

    // Nothing changed: nothing new is encrypted (deduplicated like node files).
    let before = v.blobs();
    backup(&[]).expect(0);
    assert_eq!(v.blobs(), before, "an unchanged control host added blobs");

    // Not found is a note; a wrong --kubespray-dir makes the run partial.
    let (linv, lcfg) = (lab.inventory(), lab.ssh_config());
    let absent = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &linv,
        "--ssh-config",
        &lcfg,
        "--no-etcd-snapshot",
        "--no-facts",
    ])
    .expect(0);
    assert!(
        absent
            .out
            .contains("control host absent: no kubespray directory found"),
        "{}",
        absent.out
    );
    assert_eq!(
        v.git(&["rev-parse", "main:control"]),
        v.git(&["rev-parse", "main~1:control"]),
        "the previous control record was not kept"
    );
    let wrong = backup(&["--kubespray-dir", "/nonexistent/kubespray"]).expect(3);
    assert!(
        wrong
            .out
            .contains("control host failed: --kubespray-dir /nonexistent/kubespray"),
        "{}",
        wrong.out
    );

    // The operator adds a host (and moves node1 out of kube_node), changes a
    // variable and a secret, rotates a credential, and upgrades to v2.25.0.
    write(&inv.join("inventory.ini"), &inventory(true, &lab), 0o644);
    write(
        &inv.join("group_vars/all/all.yml"),
        "kube_version: v1.29.1\netcd_deployment_type: host\nregistry_password: hunter2-two\n",
        0o640,
    );
    std::fs::write(
        inv.join("credentials/kube_encrypt_token.creds"),
        "enctoken-two\n",
    )
    .unwrap();
    git(&k, &["checkout", "-q", "v2.25.0"]);
    let second = backup(&[]).expect(0);
    assert!(
        second.out.contains("kubespray v2.25.0 (commit"),
        "{}",
        second.out
    );

    // verify checks the control host's objects too, decrypting each.
    let verified = sv_run(&["verify", "--vault", v.path(), "--full", "--identity", &id]).expect(0);
    assert!(
        verified.out.contains(": 0 problems") && !verified.out.contains("DAMAGED"),
        "{}",
        verified.out
    );

    // diff names each change; secrets only by fingerprint.
    let d = sv_run(&[
        "diff",
        "--vault",
        v.path(),
        "latest~4",
        "latest",
        "--identity",
        &id,
    ])
    .expect(0);
    for want in [
        "~ kubespray v2.24.0 (commit",
        "-> v2.25.0 (commit",
        "host added: node2 (k8s_cluster, kube_node)",
        "host moved: node1: etcd, k8s_cluster, kube_control_plane, kube_node -> etcd, k8s_cluster, kube_control_plane",
        "variable changed: group_vars/all/all.yml: kube_version: \"v1.28.6\" -> \"v1.29.1\"",
        "variable changed: group_vars/all/all.yml: registry_password: sha256:",
        "credential changed: credentials/kube_encrypt_token.creds: sha256:",
        "~ /inventory/mycluster/credentials/kube_encrypt_token.creds  (content changed)",
    ] {
        assert!(d.out.contains(want), "diff lacks {want:?}:\n{}", d.out);
    }
    for secret in ["hunter2", "enctoken"] {
        assert!(!d.out.contains(secret), "diff shows a secret:\n{}", d.out);
    }
    assert!(
        !d.out.contains("kubeadm_certificate_key"),
        "an unchanged credential was listed:\n{}",
        d.out
    );
    let blind = sv_run(&["diff", "--vault", v.path(), "latest~4", "latest"]).expect(0);
    assert!(
        blind
            .out
            .contains("credential changed: credentials/kube_encrypt_token.creds"),
        "{}",
        blind.out
    );
    assert!(
        blind
            .err
            .contains("give --identity to see the control host's hosts and variables"),
        "{}",
        blind.err
    );

    // control show
    let show = sv_run(&["control", "show", "--vault", v.path(), "latest~4"]).expect(0);
    assert!(show.out.contains("version v2.24.0 (commit"), "{}", show.out);
    assert!(
        show.out.lines().any(|l| l.starts_with("f 0600  4321:4322")
            && l.ends_with("/inventory/mycluster/credentials/kube_encrypt_token.creds")),
        "{}",
        show.out
    );
    assert!(show
        .out
        .contains("/inventory/mycluster/host_vars/all.yml -> ../group_vars/all/all.yml"));

    // control restore of the first backup reproduces the directory exactly.
    let r = tmp.path().join("restored");
    let restore = |at: &str, extra: &[&str]| {
        let to = r.display().to_string();
        let mut a = vec![
            "control",
            "restore",
            "--vault",
            v.path(),
            "--identity",
            &id,
            "--to",
            &to,
            "--at",
            at,
        ];
        a.extend_from_slice(extra);
        sv_run(&a)
    };
    let done = restore("latest~4", &[]).expect(0);
    assert!(
        done.out
            .contains(&format!("git -C {} checkout v2.24.0", r.display())),
        "{}",
        done.out
    );
    assert_eq!(
        tree_state(&r),
        original,
        "control restore differs from the original"
    );
    // The newer backup differs: refused without --force, written with it.
    let refused = restore("latest", &[]).expect(7);
    assert!(
        refused.err.contains("re-run with --force"),
        "{}",
        refused.err
    );
    assert_eq!(tree_state(&r), original, "a refused restore wrote");
    restore("latest", &["--force"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(r.join("inventory/mycluster/credentials/kube_encrypt_token.creds"))
            .unwrap(),
        "enctoken-two\n"
    );

    // recover.sh reproduces it too, without sprayvault.
    let out = tmp.path().join("recovered");
    let rec = run(Command::new("sh")
        .arg(root().join("vault-layout/recover.sh"))
        .arg(&v.dir)
        .arg(&v.key.identity)
        .arg(&out)
        .arg("main~4"));
    let rec_err = String::from_utf8_lossy(&rec.stderr);
    assert!(rec.status.success(), "recover.sh failed:\n{rec_err}");
    assert!(rec_err.contains("kubespray was at v2.24.0"), "{rec_err}");
    assert_eq!(
        tree_state(&out.join("_control")),
        original,
        "recover.sh differs from the original"
    );

    // A 200 MiB file in an included path of node1, for export.
    lab.exec(
        "node1",
        &["sh", "-c", "head -c 209715200 /dev/urandom > /etc/kubernetes/ssl/big.bin && chmod 0640 /etc/kubernetes/ssl/big.bin"],
    );
    let t0 = std::time::Instant::now();
    // Above the default per-file limit (64M), which refuses it by name.
    let refused = backup(&[]).expect(3);
    assert!(
        refused
            .out
            .contains("big.bin: is 209715200 bytes, above the per-file limit"),
        "{}",
        refused.out
    );
    backup(&["--max-file-size", "256M"]).expect(0);
    eprintln!("backup of a 200 MiB file: {:?}", t0.elapsed());

    // export: GNU tar, as root inside the node, restores its files exactly,
    // and a 200 MiB file streams through in bounded memory.
    let tar = tmp.path().join("node1.tar");
    let timed = run(Command::new("/usr/bin/time")
        .env("SPRAYVAULT_EXPECT_SIGNER", v.signer())
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_sprayvault"))
        .args([
            "export",
            "node1",
            "--vault",
            v.path(),
            "--identity",
            &id,
            "-o",
        ])
        .arg(&tar));
    let err = String::from_utf8_lossy(&timed.stderr);
    assert!(timed.status.success(), "{err}");
    let rss_kib: u64 = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in:\n{err}"));
    eprintln!("export of node1 with a 200 MiB file: peak RSS {rss_kib} KiB");
    assert!(
        rss_kib < 64 * 1024,
        "export peaked at {rss_kib} KiB for a 200 MiB file"
    );
    let x = PathBuf::from(format!(
        "/tmp/sprayvault-test-ctl-control-x-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&x);
    std::fs::create_dir(&x).unwrap();
    lab.exec(
        "node1",
        &[
            "tar",
            "--same-owner",
            "-xpf",
            tar.to_str().unwrap(),
            "-C",
            x.to_str().unwrap(),
        ],
    );
    let want = node_files(&lab, "node1", "/");
    assert!(want.contains("etc/kubernetes/ssl/big.bin f 640"), "{want}");
    assert_eq!(
        node_files(&lab, "node1", x.to_str().unwrap()),
        want,
        "the extracted export differs"
    );
    std::fs::remove_dir_all(&x).unwrap();
    let listing = ok(Command::new("tar").arg("-tvf").arg(&tar));
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("lrwxrwxrwx root/root")
                && l.ends_with("etc/kubernetes/pki -> /etc/kubernetes/ssl")),
        "{listing}"
    );
    // kubespray's owners: the first etcd node's key root's as
    // make-ssl-etcd.sh made it, the directories kube's and etcd's.
    for (start, end) in [
        ("-rw------- root/root", "etc/ssl/etcd/ssl/ca-key.pem"),
        ("drwxr-xr-x kube/root", "etc/kubernetes"),
        ("drwxr-xr-x kube/root", "etc/kubernetes/manifests"),
        ("drwx------ etcd/root", "etc/ssl/etcd/ssl"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(start) && l.ends_with(end)),
            "{start} {end}\n{listing}"
        );
    }
    std::fs::remove_file(&tar).unwrap();

    // A wrong identity: exit 6, and nothing left behind.
    let other = age_key(tmp.path(), "other");
    let wrong_tar = tmp.path().join("wrong.tar");
    let denied = sv_run(&[
        "export",
        "node2",
        "--vault",
        v.path(),
        "--identity",
        other.identity.to_str().unwrap(),
        "-o",
        wrong_tar.to_str().unwrap(),
    ])
    .expect(6);
    assert!(denied.err.contains("cannot decrypt"), "{}", denied.err);
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("wrong.tar")),
        "a failed export left a file"
    );

    // gzip by name, `-` for stdout, and no overwriting.
    let tgz = tmp.path().join("node2.tar.gz");
    sv_run(&[
        "export",
        "node2",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "-o",
        tgz.to_str().unwrap(),
    ])
    .expect(0);
    let listed = ok(Command::new("tar").arg("-tzf").arg(&tgz));
    assert!(listed.lines().any(|l| l == "etc/etcd.env"), "{listed}");
    let again = sv_run(&[
        "export",
        "node2",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "-o",
        tgz.to_str().unwrap(),
    ])
    .expect(2);
    assert!(again.err.contains("already exists"), "{}", again.err);
    let piped = ok(Command::new("sh")
        .env("SPRAYVAULT_EXPECT_SIGNER", v.signer())
        .arg("-c")
        .arg(format!(
        "'{}' export node2 --vault '{}' --identity '{id}' --at latest~1 -o - | tar -tf - | sort",
        env!("CARGO_BIN_EXE_sprayvault"),
        v.path()
    )));
    assert!(
        piped.lines().any(|l| l == "etc/ssl/etcd/ssl/ca.pem"),
        "{piped}"
    );
}
