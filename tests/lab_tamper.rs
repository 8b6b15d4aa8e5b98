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

    /// Commits the index on top of main, signed by the vault's own key
    /// (so that only the content checks are left to catch it), and moves
    /// main there.
    fn commit(&self) -> String {
        let key = self.v.dir.join("sprayvault/signing-key");
        self.commit_signed(Some(&key))
    }

    /// Commits the index on top of main, signed with `key` (an OpenSSH
    /// private key file) or unsigned, and moves main there.
    fn commit_signed(&self, key: Option<&Path>) -> String {
        let tree = self.git(&["write-tree"], None);
        let mut args = vec![];
        let k;
        if let Some(key) = key {
            k = format!("user.signingkey={}", key.display());
            args.extend(["-c", "gpg.format=ssh", "-c", k.as_str()]);
        }
        args.extend([
            "commit-tree",
            tree.as_str(),
            "-p",
            "main",
            "-m",
            "backup: 1/1 nodes",
        ]);
        if key.is_some() {
            args.push("-S");
        }
        let c = self.git(&args, None);
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
    type Case<'f> = (&'f str, Box<dyn Fn(&Forge) + 'f>, &'f str, &'f str);
    let cases: Vec<Case> = vec![
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

        // Back to the honest history for the next case: a deliberate
        // rollback, which the operator's machine accepts only re-pinned.
        v.git(&["update-ref", "refs/heads/main", &honest]);
        sv_run(&["trust", "--pin", &v.signer()]).expect(0);
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
    signed_history_is_checked(&lab, &v);
}

/// Authenticated history: what a git host can append or replace is refused
/// by every reading command with exit 11 and writes nothing; stock git
/// verifies the real history with the allowed-signers line sprayvault prints.
fn signed_history_is_checked(lab: &Lab, v: &TestVault) {
    need("ssh-keygen");
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let id = v.key.identity.display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let pins = tmp.path().join("pins");
    let pins_s = pins.to_str().unwrap().to_string();
    let sv_pinned = |args: &[&str]| {
        let out = run(sv().env("SPRAYVAULT_PINS", &pins_s).args(args));
        Sv {
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
            code: out.status.code().unwrap_or(-1),
        }
    };
    // A machine that has never read the vault (a fresh pin file) trusts
    // nothing it is not told to: first use is refused, a wrong name is
    // refused, and the signer the backup host printed is accepted and pinned.
    let own = sv_pinned(&["trust", "--vault", v.path(), "--backup-host"]).expect(0);
    assert!(own.out.starts_with("signer SHA256:"), "{}", own.out);
    let signer = v.signer();
    let unnamed = sv_pinned(&["trust", "--vault", v.path()]).expect(11);
    assert!(
        unnamed
            .err
            .contains("which this machine does not trust yet")
            && unnamed.err.contains(&format!("--expect-signer {signer}")),
        "{}",
        unnamed.err
    );
    assert!(!pins.exists(), "a refused first use wrote a pin");
    let wrong = format!("SHA256:{}", "A".repeat(43));
    let misnamed = sv_pinned(&["trust", "--vault", v.path(), "--expect-signer", &wrong]).expect(11);
    assert!(
        misnamed.err.contains(&format!("not by {wrong}")),
        "{}",
        misnamed.err
    );
    let first = sv_pinned(&["trust", "--vault", v.path(), "--expect-signer", &signer]).expect(0);
    assert_eq!(
        first.out, own.out,
        "pinned fingerprint is not the backup host's"
    );
    assert!(first.err.contains("pinned vault"), "{}", first.err);
    sv_pinned(&["trust", "--vault", v.path()]).expect(0);

    // Stock git verifies every commit of the real history and a snapshot.
    let allowed = tmp.path().join("allowed_signers");
    let line = sv_pinned(&["trust", "--vault", v.path(), "--allowed-signers"]).expect(0);
    std::fs::write(&allowed, &line.out).unwrap();
    let verify = |rev: &str| {
        run(Command::new("git")
            .arg("--git-dir")
            .arg(&v.dir)
            .args([
                "-c",
                &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
            ])
            .args(["verify-commit", rev]))
    };
    for rev in v.git(&["rev-list", "main"]).lines() {
        let out = verify(rev);
        assert!(
            out.status.success(),
            "git verify-commit {rev}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let snaps = v.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/sprayvault/",
    ]);
    // The newest snapshot (names are times): the one `etcd export` picks.
    let (snap_ref, snap_commit) = snaps
        .lines()
        .last()
        .and_then(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .expect("a snapshot ref");
    assert!(
        verify(&snap_commit).status.success(),
        "snapshot commit not verified"
    );

    let honest = v.git(&["rev-parse", "main"]).trim().to_string();
    let before = node_state(lab);
    let other_key = tmp.path().join("mallory");
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key));
    let own_key = v.dir.join("sprayvault/signing-key");
    let reads = |why: &str| {
        let r = sv_pinned(&[
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
        .expect(11);
        assert!(r.err.contains(why), "restore: {}", r.err);
        assert_eq!(
            node_state(lab),
            before,
            "a refused restore wrote to the node"
        );
        let tar = tmp.path().join("x.tar");
        let r = sv_pinned(&[
            "export",
            "node1",
            "--vault",
            v.path(),
            "--identity",
            &id,
            "-o",
            tar.to_str().unwrap(),
        ])
        .expect(11);
        assert!(r.err.contains(why), "export: {}", r.err);
        assert!(!tar.exists());
        let r = sv_pinned(&[
            "etcd",
            "export",
            "--vault",
            v.path(),
            "--identity",
            &id,
            "-o",
            tmp.path().join("snap.db").to_str().unwrap(),
        ])
        .expect(11);
        assert!(r.err.contains(why), "etcd export: {}", r.err);
        let r = sv_pinned(&[
            "replace",
            "node1",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--identity",
            &id,
            "--yes",
        ])
        .expect(11);
        assert!(r.err.contains(why), "replace: {}", r.err);
        assert_eq!(
            node_state(lab),
            before,
            "a refused replace wrote to the node"
        );
    };
    // The backup host never builds on history it did not sign.
    let backup_refused = || {
        let r = v.backup(lab, &[]).expect(11);
        assert!(
            r.err.contains("was not written by this backup host"),
            "backup: {}",
            r.err
        );
    };

    // An unsigned commit appended on top.
    Forge::new(v).commit_signed(None);
    reads("is not signed");
    backup_refused();
    v.git(&["update-ref", "refs/heads/main", &honest]);

    // A commit signed by another key: the git host serving a vault of its
    // own, with a CA key of its choosing encrypted to the public recipient.
    Forge::new(v).commit_signed(Some(&other_key));
    reads("which this machine does not trust yet");
    // On a machine that has never seen the vault (a fresh pin file), the
    // forged vault is refused whether or not the operator names a signer.
    let fresh = tmp.path().join("fresh-pins");
    let restore_fresh = |extra: &[&str]| {
        let mut args = vec![
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
        ];
        args.extend_from_slice(extra);
        let out = run(sv().env("SPRAYVAULT_PINS", &fresh).args(&args));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = restore_fresh(&[]);
    assert_eq!(code, Some(11), "{err}");
    assert!(err.contains("does not trust yet"), "{err}");
    let (code, err) = restore_fresh(&["--expect-signer", &signer]);
    assert_eq!(code, Some(11), "{err}");
    assert!(err.contains(&format!("not by {signer}")), "{err}");
    assert!(!fresh.exists(), "a refused vault was pinned");
    assert_eq!(node_state(lab), before, "a forged vault wrote to the node");
    backup_refused();
    assert!(
        !verify("main").status.success(),
        "git accepted a foreign signature"
    );
    v.git(&["update-ref", "refs/heads/main", &honest]);

    // A replaced mac-key.age (even signed by the vault's key: re-keyed).
    let f = Forge::new(v);
    let mut k = [0u8; 32];
    k[0] = 1;
    let fake_key = format!(
        "{}\n",
        k.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    f.put(
        "mac-key.age",
        &age_encrypt(&v.key.recipient, fake_key.as_bytes()),
    );
    f.commit_signed(Some(&own_key));
    reads("another mac-key.age");
    // An explicit option accepts it (and pins it).
    let tar = tmp.path().join("accepted.tar");
    sv_pinned(&[
        "export",
        "node1",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "--accept-new-key",
        "-o",
        tar.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&pins)
        .unwrap()
        .contains(&v.git(&["rev-parse", "main:mac-key.age"]).trim().to_string()));
    v.git(&["update-ref", "refs/heads/main", &honest]);
    // The accepted commit is now the newest this machine has seen: the
    // honest main, its parent, reads as rolled back until re-pinned.
    let back = sv_pinned(&["trust", "--vault", v.path(), "--accept-new-key"]).expect(11);
    assert!(
        back.err.contains("does not descend from backup"),
        "{}",
        back.err
    );
    sv_pinned(&["trust", "--pin", &signer]).expect(0);
    sv_pinned(&["trust", "--vault", v.path()]).expect(0);

    // A forged snapshot ref: the same snapshot tree in an unsigned commit.
    let tree = v
        .git(&["rev-parse", &format!("{snap_commit}^{{tree}}")])
        .trim()
        .to_string();
    let forged = Forge::new(v).git(&["commit-tree", &tree, "-m", "etcd snapshot"], None);
    v.git(&["update-ref", &snap_ref, &forged]);
    let r = sv_pinned(&[
        "etcd",
        "export",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "-o",
        tmp.path().join("snap.db").to_str().unwrap(),
    ]);
    if r.code != 11 {
        // `etcd export` picks the newest snapshot; make sure it is the forged one.
        panic!(
            "forged snapshot ref {snap_ref} not refused (exit {}): {}",
            r.code, r.err
        );
    }
    assert!(r.err.contains("is not signed"), "{}", r.err);
    // etcd restore refuses it before touching any member.
    let r = sv_pinned(&[
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
        "--yes",
    ])
    .expect(11);
    assert!(r.err.contains("is not signed"), "etcd restore: {}", r.err);
    assert_eq!(
        node_state(lab),
        before,
        "a refused etcd restore wrote to the node"
    );
    v.git(&["update-ref", &snap_ref, &snap_commit]);

    // A pack swapped for other content of its size, in a snapshot commit
    // signed by the vault's own key: only the pack's keyed hash catches it.
    let f = Forge::new(v);
    f.git(&["read-tree", &snap_commit], None);
    let pack = v.git(&[
        "ls-tree",
        "-r",
        "--name-only",
        &format!("{snap_commit}:packs"),
    ]);
    let pack = pack.lines().next().expect("a pack").trim().to_string();
    let size: usize = ok(Command::new("sh").arg("-c").arg(format!(
        "git --git-dir {} cat-file blob {snap_commit}:packs/{pack} | age -d -i {id} | gzip -dc | wc -c",
        v.path()
    )))
    .trim()
    .parse()
    .expect("the pack's size");
    let mut gz = Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    {
        use std::io::Write;
        gz.stdin
            .take()
            .unwrap()
            .write_all(&vec![b'x'; size])
            .unwrap();
    }
    let packed = gz.wait_with_output().unwrap().stdout;
    f.put(
        &format!("packs/{pack}"),
        &age_encrypt(&v.key.recipient, &packed),
    );
    let tree = f.git(&["write-tree"], None);
    let k = format!("user.signingkey={}", own_key.display());
    let swapped = f.git(
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &k,
            "commit-tree",
            &tree,
            "-S",
            "-m",
            "etcd snapshot",
        ],
        None,
    );
    v.git(&["update-ref", &snap_ref, &swapped]);
    let name = snap_ref.trim_start_matches("refs/sprayvault/etcd/");
    let r = sv_pinned(&[
        "etcd",
        "export",
        "--vault",
        v.path(),
        "--identity",
        &id,
        "--at",
        name,
        "-o",
        tmp.path().join("swapped.db").to_str().unwrap(),
    ])
    .expect(10);
    assert!(r.err.contains("keyed hash"), "swapped pack: {}", r.err);
    assert!(!tmp.path().join("swapped.db").exists());
    v.git(&["update-ref", &snap_ref, &snap_commit]);

    // pull refuses unsigned history from the remote and leaves its copy as it was.
    let copy = tmp.path().join("copy");
    let copy_s = copy.to_str().unwrap();
    sv_pinned(&["pull", "--vault", copy_s, "--from", v.path()]).expect(0);
    Forge::new(v).commit_signed(None);
    let r = sv_pinned(&["pull", "--vault", copy_s]).expect(11);
    assert!(r.err.contains("is not signed"), "{}", r.err);
    assert_eq!(
        ok(Command::new("git")
            .arg("--git-dir")
            .arg(&copy)
            .args(["rev-parse", "main"]))
        .trim(),
        honest,
        "a refused pull moved the branch"
    );
    v.git(&["update-ref", "refs/heads/main", &honest]);

    // A stale main.lock (left by a killed run) is removed by the next lock
    // holder instead of failing every backup after reading all nodes.
    std::fs::write(v.dir.join("refs/heads/main.lock"), format!("{honest}\n")).unwrap();
    v.backup(lab, &[]).expect(0);
    assert!(!v.dir.join("refs/heads/main.lock").exists());
    assert_ne!(
        v.git(&["rev-parse", "main"]).trim(),
        honest,
        "the backup committed nothing"
    );
    v.fsck();

    // A snapshot ref that cannot be read: skipped and named, the run is
    // partial (exit 3), and the nodes and a new snapshot are committed.
    let blob = v
        .git(&["rev-parse", "main:sprayvault.json"])
        .trim()
        .to_string();
    v.git(&[
        "update-ref",
        "refs/sprayvault/etcd/20990101T000000Z-bogus",
        &blob,
    ]);
    let before = v.git(&["rev-parse", "main"]).trim().to_string();
    let snaps_before = v.git(&["for-each-ref", "refs/sprayvault/"]).lines().count();
    let r = v.backup(lab, &[]).expect(3);
    let msg = v.git(&["log", "-1", "--format=%B", "main"]);
    assert!(msg.contains("20990101T000000Z-bogus"), "{msg}\n{}", r.err);
    assert_ne!(
        v.git(&["rev-parse", "main"]).trim(),
        before,
        "nothing committed"
    );
    assert!(!v.git(&["ls-tree", "main", "nodes/node1"]).trim().is_empty());
    assert_eq!(
        v.git(&["for-each-ref", "refs/sprayvault/"]).lines().count(),
        snaps_before + 1,
        "no new snapshot"
    );
    let r = sv_run(&["etcd", "ls", "--vault", v.path()]).expect(3);
    assert!(r.err.contains("20990101T000000Z-bogus"), "{}", r.err);
    v.git(&[
        "update-ref",
        "-d",
        "refs/sprayvault/etcd/20990101T000000Z-bogus",
    ]);
}

/// Rewrites the vault as a version 1 writer left it: every commit of main and
/// every snapshot ref unsigned, `sprayvault.json` saying format 1 with a
/// recipient comment, no signing key and no bindings on the backup host.
fn downgrade_to_version_1(v: &TestVault) {
    let f = Forge::new(v);
    let mut parent: Option<String> = None;
    for c in v
        .git(&["rev-list", "--reverse", "--first-parent", "main"])
        .lines()
    {
        f.git(&["read-tree", c], None);
        let cfg = v.git(&["cat-file", "blob", &format!("{c}:sprayvault.json")]);
        let old = cfg.replace("\"format\": 2", "\"format\": 1");
        f.put(
            "sprayvault.json",
            format!("{}\n", old.trim_end()).as_bytes(),
        );
        let tree = f.git(&["write-tree"], None);
        let msg = v
            .git(&["log", "-1", "--format=%B", c])
            .replace("Sprayvault-Format: 2", "Sprayvault-Format: 1");
        let mut args = vec!["commit-tree", tree.as_str(), "-m", msg.as_str()];
        let p;
        if let Some(pp) = &parent {
            p = pp.clone();
            args.extend(["-p", p.as_str()]);
        }
        parent = Some(f.git(&args, None));
    }
    f.git(
        &["update-ref", "refs/heads/main", parent.as_deref().unwrap()],
        None,
    );
    for line in v
        .git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/sprayvault/etcd/",
        ])
        .lines()
    {
        let (name, c) = line.split_once(' ').unwrap();
        let tree = v.git(&["rev-parse", &format!("{c}^{{tree}}")]);
        let msg = v.git(&["log", "-1", "--format=%B", c]);
        let unsigned = f.git(&["commit-tree", tree.trim(), "-m", msg.trim()], None);
        f.git(&["update-ref", name, &unsigned], None);
    }
    for local in ["signing-key", "bindings"] {
        let _ = std::fs::remove_file(v.dir.join("sprayvault").join(local));
    }
    assert!(v
        .git(&["log", "--format=%G?", "main"])
        .lines()
        .all(|l| l == "N"));
}

/// A vault written by a version 1 sprayvault (unsigned, format 1) is refused
/// by reads until its next backup, which signs it and its old snapshots;
/// afterwards everything reads, stock git verifies, recover.sh checks the
/// signature when given the allowed signers, and the plaintext carries
/// generic failure reasons while the encrypted details keep ssh's text.
#[test]
fn a_version_1_vault_is_upgraded_by_its_next_backup() {
    need("age");
    need("git");
    need("ssh-keygen");
    let lab = Lab::up("vlt-legacy", 101, 1);
    let v = TestVault::new();
    v.backup(&lab, &[]).expect(0);
    let old_snap = v.git(&[
        "for-each-ref",
        "--format=%(refname:lstrip=3)",
        "refs/sprayvault/etcd/",
    ]);
    let old_snap = old_snap.trim().to_string();
    assert!(!old_snap.is_empty());
    downgrade_to_version_1(&v);
    let id = v.key.identity.display().to_string();
    let pins = tempfile::tempdir().unwrap();
    let pins_file = pins.path().join("pins");
    let pinned = |args: &[&str]| {
        let out = run(sv().env("SPRAYVAULT_PINS", &pins_file).args(args));
        Sv {
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
            code: out.status.code().unwrap_or(-1),
        }
    };
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("n.tar");
    let export = |what: &[&str]| {
        let mut a = vec![
            "--vault",
            v.path(),
            "--identity",
            id.as_str(),
            "-o",
            tar.to_str().unwrap(),
        ];
        a.splice(0..0, what.iter().copied());
        pinned(&a)
    };
    let refused = export(&["export", "node1"]).expect(11);
    assert!(
        refused.err.contains("is signed by its next backup"),
        "{}",
        refused.err
    );

    // The next backup upgrades it: format 2, signed, old snapshot signed.
    let b = v.backup(&lab, &["--no-etcd-snapshot"]).expect(0);
    assert!(
        b.err.contains("signed 1 snapshot(s) written before"),
        "{}",
        b.err
    );
    let cfg = v.git(&["cat-file", "blob", "main:sprayvault.json"]);
    assert!(cfg.contains("\"format\": 2"), "{cfg}");
    // The operator pins the signer the upgraded backup host prints.
    pinned(&["trust", "--pin", &v.signer()]).expect(0);
    export(&["export", "node1"]).expect(0);
    export(&["etcd", "export", "--at", &old_snap]).expect(0);
    let msg = v.git(&[
        "log",
        "-1",
        "--format=%B",
        &format!("refs/sprayvault/etcd/{old_snap}"),
    ]);
    assert!(msg.contains("Sprayvault-Signed-Later: "), "{msg}");

    // Stock git and recover.sh check the signatures.
    let allowed = out.path().join("allowed_signers");
    let line = pinned(&["trust", "--vault", v.path(), "--allowed-signers"]).expect(0);
    std::fs::write(&allowed, &line.out).unwrap();
    let recover = |rev: &str| {
        let dest = tempfile::tempdir().unwrap();
        run(Command::new("sh")
            .arg(root().join("vault-layout/recover.sh"))
            .arg(&v.dir)
            .arg(&v.key.identity)
            .arg(dest.path().join("out"))
            .arg(rev)
            .env("SPRAYVAULT_ALLOWED_SIGNERS", &allowed))
    };
    let good = recover("main");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = recover("main~1");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not signed by the vault's signer"));

    // A failed node: its plaintext reason is generic, its details encrypted.
    let inv = std::fs::read_to_string(lab.inventory()).unwrap();
    let broken = out.path().join("inventory.ini");
    std::fs::write(
        &broken,
        format!("{inv}\n[kube_node]\nghost ansible_host=127.0.101.99\n"),
    )
    .unwrap();
    let cfg = lab.ssh_config();
    sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        broken.to_str().unwrap(),
        "--ssh-config",
        &cfg,
        "--no-etcd-snapshot",
        "--connect-timeout",
        "3s",
    ])
    .expect(3);
    let msg = v.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        msg.contains("Sprayvault-Node: ghost failed unreachable\n"),
        "{msg}"
    );
    assert!(
        !msg.contains("127.0.101.99"),
        "an address in the plaintext:\n{msg}"
    );
    let details = run(Command::new("git").arg("--git-dir").arg(&v.dir).args([
        "cat-file",
        "blob",
        "main:details.age",
    ]));
    assert!(details.status.success() && details.stdout.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&details.stdout).contains("127.0.101.99"));
    let log = sv_run(&["log", "--vault", v.path(), "--identity", &id]).expect(0);
    assert!(
        log.out.contains("ghost: ") && log.out.contains("127.0.101.99"),
        "{}",
        log.out
    );
    let plain = sv_run(&["log", "--vault", v.path()]).expect(0);
    assert!(
        plain.out.contains("ghost: unreachable") && !plain.out.contains("127.0.101.99"),
        "{}",
        plain.out
    );
}
