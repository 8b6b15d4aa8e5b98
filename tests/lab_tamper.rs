//! A vault tampered with by whoever holds the git repository: commits made
//! with git plumbing (the way a hostile git host would make them) against a
//! real lab node, the real binary, git and age. Every read refuses them and
//! writes nothing to the node.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Plumbing on a bare vault, with a private index file.
struct Forge<'a> {
    v: &'a TestVault,
    index: std::path::PathBuf,
}

impl<'a> Forge<'a> {
    fn new(v: &'a TestVault) -> Forge<'a> {
        let index = v.tmp.path().join("forge-index");
        let _ = std::fs::remove_file(&index);
        let f = Forge { v, index };
        f.git(&["read-tree", "main"], None);
        f
    }

    fn git(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        use std::io::Write;
        let mut c = Command::new("git");
        c.arg("--git-dir")
            .arg(&self.v.dir)
            .env("GIT_INDEX_FILE", &self.index)
            .env("GIT_AUTHOR_NAME", "mallory")
            .env("GIT_AUTHOR_EMAIL", "mallory@example.org")
            .env("GIT_COMMITTER_NAME", "mallory")
            .env("GIT_COMMITTER_EMAIL", "mallory@example.org")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("git");
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Writes `data` as a blob and puts it at `path` of the tree.
    fn put(&self, path: &str, data: &[u8]) -> String {
        let oid = self.git(&["hash-object", "-w", "--stdin"], Some(data));
        self.put_oid(path, &oid);
        oid
    }

    fn put_oid(&self, path: &str, oid: &str) {
        self.git(
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{oid},{path}"),
            ],
            None,
        );
    }

    /// Commits the index on top of main and moves main there.
    fn commit(&self) -> String {
        let tree = self.git(&["write-tree"], None);
        let c = self.git(
            &[
                "commit-tree",
                tree.as_str(),
                "-p",
                "main",
                "-m",
                "backup: 1/1 nodes",
            ],
            None,
        );
        self.git(&["update-ref", "refs/heads/main", &c], None);
        c
    }
}

fn age_encrypt(recipient: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("age")
        .args(["-r", recipient])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("age");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Every path, type, size, mode and content hash below the node's backed-up
/// directories and /root: what a restore could have written.
fn node_state(lab: &Lab) -> String {
    let root = lab.node_root("node1");
    ok(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find etc/kubernetes etc/ssl etc/etcd.env root -printf '%p %y %s %m\\n' 2>/dev/null | sort; \
         find etc/kubernetes etc/ssl etc/etcd.env root -type f -exec sha256sum {{}} + 2>/dev/null | sort",
        root.display()
    )))
}

/// Replaces the manifest line of `path` using `edit` on its TAB fields,
/// or appends `add` as a new line (re-sorted).
fn edit_manifest(manifest: &str, path: &str, edit: impl Fn(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = manifest.lines().map(str::to_string).collect();
    for l in lines.iter_mut().skip(1) {
        let mut f: Vec<String> = l.split('\t').map(str::to_string).collect();
        if f[9] == path {
            edit(&mut f);
            *l = f.join("\t");
        }
    }
    lines.join("\n") + "\n"
}

fn add_manifest_line(manifest: &str, line: &str) -> String {
    let mut lines: Vec<String> = manifest.lines().map(str::to_string).collect();
    let header = lines.remove(0);
    lines.push(line.to_string());
    lines.sort_by(|a, b| a.split('\t').nth(9).cmp(&b.split('\t').nth(9)));
    lines.insert(0, header);
    lines.join("\n") + "\n"
}

#[test]
fn tampered_vaults_are_refused_by_every_read_and_a_swapped_blob_is_never_reused() {
    need("age");
    need("git");
    let lab = Lab::up("vlt-tamper", 100, 1);
    let v = TestVault::new();
    v.backup(&lab, &[]).expect(0);
    let honest = v.git(&["rev-parse", "main"]).trim().to_string();
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let id = v.key.identity.display().to_string();
    let out_dir = tempfile::tempdir().unwrap();

    // The honest backup restores and exports.
    let restore = || {
        sv_run(&[
            "restore",
            "node1",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--identity",
            &id,
            "--force",
        ])
    };
    restore().expect(0);
    let before = node_state(&lab);
    let tar = out_dir.path().join("honest.tar");
    sv_run(&[
        "export",
        "node1",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "-o",
        tar.to_str().unwrap(),
    ])
    .expect(0);

    let manifest = v.git(&["cat-file", "blob", "main:nodes/node1/manifest"]);
    let ca = "/etc/kubernetes/ssl/ca.crt";
    let ca_size: usize = manifest
        .lines()
        .find(|l| l.contains(&format!("\t{ca}\t")))
        .map(|l| l.split('\t').nth(6).unwrap().parse().unwrap())
        .expect("ca.crt in the manifest");
    let cases: Vec<(&str, Box<dyn Fn(&Forge)>, &str, &str)> = vec![
        (
            "swapped content blob",
            Box::new(|f: &Forge| {
                // Same length as the real certificate: only the mac can tell.
                let mut fake = b"attacker's CA".to_vec();
                fake.resize(ca_size, b'\n');
                let evil = age_encrypt(&v.key.recipient, &fake);
                f.put("nodes/node1/files/etc/kubernetes/ssl/ca.crt", &evil);
            }),
            ca,
            "does not have the mac",
        ),
        (
            "wrong size",
            Box::new(|f: &Forge| {
                let m = edit_manifest(&manifest, ca, |fields| {
                    let n: u64 = fields[6].parse().unwrap();
                    fields[6] = (n + 1).to_string();
                });
                f.put("nodes/node1/manifest", m.as_bytes());
            }),
            ca,
            "the size the manifest records",
        ),
        (
            "path outside the include set",
            Box::new(|f: &Forge| {
                let key = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMallory mallory\n";
                let oid = f.put(
                    "nodes/node1/files/root/.ssh/authorized_keys",
                    &age_encrypt(&v.key.recipient, key),
                );
                assert!(!oid.is_empty());
                let line = format!(
                    "f\t0600\t0\t0\troot\troot\t{}\t1764554400\t{}\t/root/.ssh/authorized_keys\t-",
                    key.len(),
                    "ab".repeat(32)
                );
                let m = add_manifest_line(&manifest, &line);
                f.put("nodes/node1/manifest", m.as_bytes());
            }),
            "/root/.ssh/authorized_keys",
            "outside the vault's include paths",
        ),
    ];
    for (name, tamper, path, why) in &cases {
        let f = Forge::new(&v);
        tamper(&f);
        let forged = f.commit();
        let rev = &forged[..10];
        let check = |what: &str, r: &Sv| {
            assert!(
                r.err.contains(&format!("backup {rev}"))
                    && r.err.contains("node node1")
                    && r.err.contains(path)
                    && r.err.contains(why),
                "{name}: {what} did not name backup, node, path and reason:\n{}",
                r.err
            );
        };
        let r = restore().expect(10);
        check("restore", &r);
        assert_eq!(
            node_state(&lab),
            before,
            "{name}: restore wrote to the node"
        );

        let tar = out_dir
            .path()
            .join(format!("{}.tar", name.replace(' ', "-")));
        let r = sv_run(&[
            "export",
            "node1",
            "--vault",
            v.path(),
            "--identity",
            &id,
            "-o",
            tar.to_str().unwrap(),
        ])
        .expect(10);
        check("export", &r);
        assert!(!tar.exists(), "{name}: export left {}", tar.display());
        let partial: Vec<_> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "honest.tar")
            .collect();
        assert!(partial.is_empty(), "{name}: export left {partial:?}");

        let r = sv_run(&[
            "show",
            "--vault",
            v.path(),
            "--node",
            "node1",
            "--identity",
            &id,
        ])
        .expect(10);
        check("show", &r);

        // Back to the honest history for the next case.
        v.git(&["update-ref", "refs/heads/main", &honest]);
    }
    assert!(Path::new(&lab.node_root("node1")).exists());

    // Deduplication after a swap: the parent pairs the real mac with the
    // attacker's blob; the next honest backup must not reuse that blob (nor
    // trust the pairing at all) but encrypt the node's content afresh.
    let blob_path = "nodes/node1/files/etc/kubernetes/ssl/ca.crt";
    let original = v
        .git(&["rev-parse", &format!("main:{blob_path}")])
        .trim()
        .to_string();
    let f = Forge::new(&v);
    let mut fake = b"attacker's CA".to_vec();
    fake.resize(ca_size, b'\n');
    let evil = f.put(blob_path, &age_encrypt(&v.key.recipient, &fake));
    f.commit();
    let r = v.backup(&lab, &[]).expect(0);
    let now = v
        .git(&["rev-parse", &format!("main:{blob_path}")])
        .trim()
        .to_string();
    assert_ne!(
        now, evil,
        "the swapped blob was committed again as current:\n{}",
        r.err
    );
    // The content is either encrypted afresh or taken from a blob the backup
    // host itself wrote for it (another path of the node has the same
    // certificate): never from the pairing the forged parent claims.
    let bindings = std::fs::read_to_string(v.dir.join("sprayvault/bindings")).unwrap();
    assert!(
        bindings.lines().any(|l| l.ends_with(&format!(" {now}"))),
        "{now} was reused without a binding; original {original}"
    );
    let tar = out_dir.path().join("after-swap.tar");
    sv_run(&[
        "export",
        "node1",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "-o",
        tar.to_str().unwrap(),
    ])
    .expect(0);
    let listing = ok(Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg("etc/kubernetes/ssl/ca.crt"));
    let real =
        std::fs::read_to_string(lab.node_root("node1").join("etc/kubernetes/ssl/ca.crt")).unwrap();
    assert_eq!(
        listing, real,
        "the backup after a swap does not hold the node's content"
    );
    // And content that did not change is still stored once: the next
    // honest backup reuses every blob of the node (its tree is unchanged).
    let node_tree = v.git(&["rev-parse", "main:nodes/node1"]);
    v.backup(&lab, &[]).expect(0);
    assert_eq!(
        v.git(&["rev-parse", "main:nodes/node1"]),
        node_tree,
        "an unchanged node was stored again"
    );
    v.fsck();
}
