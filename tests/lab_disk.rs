//! A full disk on the backup host is an ordinary failure: the run says the
//! disk is full and names the vault, leaves main, every ref and the object
//! store as they were (the objects it wrote are removed), and the next run
//! succeeds once there is space, with no manual step.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Every file under the vault's object store.
fn object_files(dir: &Path) -> BTreeSet<String> {
    walk(&dir.join("objects"))
}

fn walk(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.insert(p.display().to_string());
        }
    }
    out
}

fn refs(v: &TestVault) -> String {
    v.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped.
struct Small(std::path::PathBuf);
impl Small {
    fn mount(dir: &Path, size: &str) -> Small {
        std::fs::create_dir_all(dir).unwrap();
        ok(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir));
        Small(dir.to_path_buf())
    }
    fn resize(&self, size: &str) {
        ok(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0));
    }
}
impl Drop for Small {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_vault_on_a_full_disk_fails_cleanly_and_the_next_backup_succeeds() {
    need("git");
    let lab = Lab::up("disk-full", 114, 1);
    let tmp = tempfile::tempdir().unwrap();
    let disk = Small::mount(&tmp.path().join("disk"), "8m");
    let key = age_key(tmp.path(), "operator");
    let dir = disk.0.join("vault");
    let v = TestVault::at(dir, key);
    v.backup(&lab, &["--no-etcd-snapshot"]).expect(0);
    // 12 MiB of new, incompressible node content cannot fit in 8 MiB.
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "head -c 12582912 /dev/urandom > /etc/kubernetes/ssl/big.bin",
        ],
    );
    let (main, all_refs, objects) = (
        v.git(&["rev-parse", "main"]),
        refs(&v),
        object_files(&v.dir),
    );
    let r = v.backup(&lab, &["--no-etcd-snapshot"]).expect(1);
    assert!(
        r.err.contains("disk is full") && r.err.contains(v.path()),
        "{}",
        r.err
    );
    assert_eq!(v.git(&["rev-parse", "main"]), main);
    assert_eq!(refs(&v), all_refs);
    assert_eq!(
        object_files(&v.dir),
        objects,
        "the failed run left objects behind"
    );
    v.fsck();
    sv_run(&["verify", "--vault", v.path()]).expect(0);
    // Space is back: the next backup needs nothing else.
    disk.resize("64m");
    let r = v.backup(&lab, &["--no-etcd-snapshot"]).expect(0);
    assert!(r.out.contains("1/1 nodes"), "{}", r.out);
    assert_ne!(v.git(&["rev-parse", "main"]), main);
    v.fsck();
    sv_run(&["verify", "--vault", v.path()]).expect(0);

    // pull, into a new directory on a disk too small: refused, nothing left.
    let remote = tmp.path().join("offsite.git");
    ok(Command::new("git")
        .args(["init", "--bare", "-q"])
        .arg(&remote));
    let url = format!("ssh://root@127.0.114.11{}", remote.display());
    let cfg = lab.ssh_config();
    sv_run(&["remote", &url, "--vault", v.path()]).expect(0);
    sv_run(&["push", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    let small = Small::mount(&tmp.path().join("small"), "2m");
    let clone = small.0.join("clone");
    let c = clone.to_str().unwrap();
    let p = sv_run(&["pull", "--vault", c, "--from", &url, "--ssh-config", &cfg]).expect(1);
    assert!(
        p.err.contains("disk is full") && p.err.contains(c),
        "{}",
        p.err
    );
    assert!(!clone.exists(), "a failed pull left {c}");
    // An existing clone whose disk fills during the pull keeps what it had.
    small.resize("64m");
    sv_run(&["pull", "--vault", c, "--from", &url, "--ssh-config", &cfg]).expect(0);
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "head -c 12582912 /dev/urandom > /etc/kubernetes/ssl/big2.bin",
        ],
    );
    v.backup(&lab, &["--no-etcd-snapshot"]).expect(0);
    sv_run(&["push", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    let cv = TestVault {
        tmp: tempfile::tempdir().unwrap(),
        dir: clone.clone(),
        key: age_key(tmp.path(), "unused"),
    };
    let (main, all_refs, objects) = (
        cv.git(&["rev-parse", "main"]),
        refs(&cv),
        object_files(&clone),
    );
    ok(Command::new("sh").arg("-c").arg(format!(
        "avail=$(df -k --output=avail '{0}' | tail -1); head -c $(( (avail - 1024) * 1024 )) /dev/zero > '{0}/filler'",
        small.0.display()
    )));
    let p = sv_run(&["pull", "--vault", c, "--ssh-config", &cfg]).expect(1);
    assert!(p.err.contains("disk is full"), "{}", p.err);
    assert_eq!(cv.git(&["rev-parse", "main"]), main);
    assert_eq!(refs(&cv), all_refs);
    assert_eq!(
        object_files(&clone),
        objects,
        "the failed pull left objects behind"
    );
    cv.fsck();
    std::fs::remove_file(small.0.join("filler")).unwrap();
    sv_run(&["pull", "--vault", c, "--ssh-config", &cfg]).expect(0);
    assert_eq!(
        cv.git(&["rev-parse", "main"]),
        v.git(&["rev-parse", "main"])
    );
    cv.fsck();
}

/// prune on a full disk: it says the disk is full and removes nothing; the
/// next prune, once there is space, removes and frees.
#[test]
fn a_prune_on_a_full_disk_says_so_and_the_next_one_frees_the_space() {
    need("git");
    let lab = Lab::up("disk-prune", 116, 1);
    let tmp = tempfile::tempdir().unwrap();
    let disk = Small::mount(&tmp.path().join("disk"), "64m");
    let key = age_key(tmp.path(), "operator");
    let v = TestVault::at(disk.0.join("vault"), key);
    for i in 0..3 {
        lab.etcdctl(
            "node1",
            &["put", &format!("/registry/disk/{i}"), &"x".repeat(100_000)],
        );
        v.backup(&lab, &[]).expect(0);
    }
    // Every byte of the disk taken.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat /dev/zero 2>/dev/null > '{}/filler'",
            disk.0.display()
        ))
        .status();
    let (main, all_refs) = (v.git(&["rev-parse", "main"]), refs(&v));
    let p = sv_run(&[
        "prune",
        "--vault",
        v.path(),
        "--keep-last",
        "1",
        "--gc-grace",
        "0",
    ])
    .expect(1);
    assert!(
        p.err.contains("disk is full") && p.err.contains(v.path()),
        "{}",
        p.err
    );
    assert_eq!(v.git(&["rev-parse", "main"]), main);
    assert_eq!(refs(&v), all_refs, "a prune on a full disk removed refs");
    v.fsck();
    std::fs::remove_file(disk.0.join("filler")).unwrap();
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
    v.fsck();
    sv_run(&["verify", "--vault", v.path()]).expect(0);
}
