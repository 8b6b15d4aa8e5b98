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
}
