//! Replication and retention under one lock, through a real bare repository
//! behind a real sshd (as in lab_unattended): `prune` records what it
//! removes and frees only objects older than its grace period, `push
//! --prune` deletes exactly those refs on the remote, `pull` never brings
//! them back; and `pull`, `prune`, `backup` and `push --prune` started at
//! once, 20 times, queue on the lock without losing a backup or a snapshot.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

const ETCD: &str = "refs/sprayvault/etcd/";

fn git_at(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("git").arg("--git-dir").arg(dir).args(args))
}

/// Snapshot ref name to commit, in any repository.
fn snapshots(dir: &Path) -> BTreeMap<String, String> {
    git_at(
        dir,
        &["for-each-ref", "--format=%(refname) %(objectname)", ETCD],
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(n, o)| (n.to_string(), o.to_string()))
    .collect()
}

fn has_object(dir: &Path, oid: &str) -> bool {
    run(Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(["cat-file", "-e", oid]))
    .status
    .success()
}

/// Every blob of a snapshot commit (index, page map, packs).
fn snapshot_blobs(dir: &Path, commit: &str) -> BTreeSet<String> {
    git_at(dir, &["ls-tree", "-r", "--format=%(objectname)", commit])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Makes every object file of a repository look 30 days old.
fn backdate(dir: &Path) {
    ok(Command::new("find").arg(dir.join("objects")).args([
        "-type",
        "f",
        "-exec",
        "touch",
        "-d",
        "30 days ago",
        "{}",
        "+",
    ]));
}

fn fsck(dir: &Path) {
    git_at(dir, &["fsck", "--full", "--strict"]);
}

/// A new etcd key, so the next snapshot differs from every earlier one.
fn change_etcd(lab: &Lab, i: usize) {
    lab.etcdctl(
        "node1",
        &[
            "put",
            &format!("/registry/test/rep-{i}"),
            &format!("{i}").repeat(3000),
        ],
    );
}

/// `push --prune`, which must say it deleted `n` refs on the remote.
fn push_prune(v: &TestVault, cfg: &str, n: usize) -> Sv {
    let p = sv_run(&["push", "--prune", "--vault", v.path(), "--ssh-config", cfg]).expect(0);
    assert!(
        p.out.contains(&format!("{n} pruned snapshot refs deleted")),
        "{}",
        p.out
    );
    p
}

struct Remote {
    dir: std::path::PathBuf,
    url: String,
}

fn remote(lab_net: u8, v: &TestVault) -> Remote {
    let dir = v.tmp.path().join("offsite.git");
    ok(Command::new("git").args(["init", "--bare", "-q"]).arg(&dir));
    let url = format!("ssh://root@127.0.{lab_net}.11{}", dir.display());
    sv_run(&["remote", &url, "--vault", v.path()]).expect(0);
    Remote { dir, url }
}

#[test]
fn pruned_snapshots_are_deleted_on_the_remote_and_never_pulled_back() {
    let lab = Lab::up("rep-prune", 120, 1);
    let cfg = lab.ssh_config();
    let v = TestVault::new();
    let r = remote(120, &v);
    for i in 0..3 {
        change_etcd(&lab, i);
        v.backup(&lab, &[]).expect(0);
        if i == 0 {
            // The first snapshot's objects are past the grace period.
            backdate(&v.dir);
        }
    }
    let snaps = snapshots(&v.dir);
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    let names: Vec<&String> = snaps.keys().collect();
    let (s1, s2, s3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let (c1, c2, c3) = (snaps[&s1].clone(), snaps[&s2].clone(), snaps[&s3].clone());
    // Snapshots share the packs of pages that did not change: what only
    // the first has (old, backdated) and what only the second has (young).
    let (b1, b2, b3) = (
        snapshot_blobs(&v.dir, &c1),
        snapshot_blobs(&v.dir, &c2),
        snapshot_blobs(&v.dir, &c3),
    );
    let only = |a: &BTreeSet<String>, x: &BTreeSet<String>, y: &BTreeSet<String>| {
        a.iter()
            .filter(|b| !x.contains(*b) && !y.contains(*b))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (old_chunks, young_chunks) = (only(&b1, &b2, &b3), only(&b2, &b1, &b3));
    assert!(!old_chunks.is_empty() && !young_chunks.is_empty());
    sv_run(&["push", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    assert_eq!(snapshots(&r.dir), snaps);
    // On the remote only: a ref this vault never had (at the kept snapshot).
    let elsewhere = format!("{ETCD}19990101T000000Z-elsewhere");
    git_at(&r.dir, &["update-ref", &elsewhere, &c3]);

    // prune: records, removes, frees the old objects and keeps the young ones.
    let p = sv_run(&["prune", "--vault", v.path(), "--keep-last", "1"]).expect(0);
    assert!(p.out.contains("removed 2 snapshots, kept 1"), "{}", p.out);
    assert!(p.out.contains("push --prune"), "{}", p.out);
    assert_eq!(
        snapshots(&v.dir).into_keys().collect::<Vec<_>>(),
        std::slice::from_ref(&s3)
    );
    let record = std::fs::read_to_string(v.dir.join("sprayvault/pruned")).unwrap();
    let lines: Vec<&str> = record.lines().collect();
    assert_eq!(lines[0], "sprayvault-pruned 1", "{record}");
    assert_eq!(lines.len(), 3, "{record}");
    for (name, commit) in [(&s1, &c1), (&s2, &c2)] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{commit} {name} "))),
            "{name} missing from\n{record}"
        );
    }
    // The backup host's page lists: only of the packs the kept snapshot
    // lists.
    let lists: BTreeSet<String> = std::fs::read_dir(v.dir.join("sprayvault/pages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let kept: BTreeSet<String> = git_at(
        &v.dir,
        &["ls-tree", "-r", "--name-only", &format!("{c3}:packs")],
    )
    .lines()
    .map(|l| l.rsplit('/').next().unwrap().to_string())
    .collect();
    assert!(!kept.is_empty());
    assert_eq!(lists, kept);
    let blobs = v.blobs();
    assert!(
        old_chunks.iter().all(|b| !blobs.contains(b)),
        "a blob unreachable for 30 days survived the 2-week grace"
    );
    assert!(
        young_chunks.iter().all(|b| blobs.contains(b)),
        "a blob unreachable for seconds was collected despite the grace"
    );
    v.fsck();
    // Nothing is in git's tree of the vault or pushed: the record is local.
    assert!(!v
        .git(&["ls-tree", "-r", "--name-only", "main"])
        .contains("pruned"));

    // push --prune: exactly the two pruned refs go; the remote-only one stays.
    let p = push_prune(&v, &cfg, 2);
    for s in [&s1, &s2] {
        assert!(
            p.out.contains(&format!("deleted on the remote: {s} ")),
            "{}",
            p.out
        );
    }
    let on_remote: BTreeSet<String> = snapshots(&r.dir).into_keys().collect();
    assert_eq!(on_remote, BTreeSet::from([s3.clone(), elsewhere.clone()]));
    assert_eq!(
        git_at(&r.dir, &["rev-parse", "main"]),
        v.git(&["rev-parse", "main"])
    );
    push_prune(&v, &cfg, 0);
    // The record stays, for the pulls below.
    assert_eq!(
        std::fs::read_to_string(v.dir.join("sprayvault/pruned")).unwrap(),
        record
    );

    // A second clone pulled from the remote: pruned there too, remote-only ref kept.
    let clone = v.tmp.path().join("clone");
    let c = clone.to_str().unwrap();
    sv_run(&["pull", "--vault", c, "--from", &r.url, "--ssh-config", &cfg]).expect(0);
    let cloned: BTreeSet<String> = snapshots(&clone).into_keys().collect();
    assert_eq!(cloned, BTreeSet::from([s3.clone(), elsewhere.clone()]));
    assert!(!has_object(&clone, &c1) && !has_object(&clone, &c2));
    fsck(&clone);
    sv_run(&["pull", "--vault", c, "--ssh-config", &cfg]).expect(0);
    assert_eq!(
        snapshots(&clone).into_keys().collect::<BTreeSet<_>>(),
        cloned
    );
    sv_run(&[
        "etcd",
        "export",
        "--vault",
        c,
        "-o",
        v.tmp.path().join("kept.db").to_str().unwrap(),
        "--identity",
        v.key.identity.to_str().unwrap(),
    ])
    .expect(0);

    // The git host gives the pruned snapshots back, one under a new name:
    // the vault's pull brings none of them back, and says so.
    let alias = format!("{ETCD}20000101T000000Z-alias");
    git_at(&r.dir, &["update-ref", &s1, &c1]);
    git_at(&r.dir, &["update-ref", &s2, &c2]);
    git_at(&r.dir, &["update-ref", &alias, &c2]);
    let p = sv_run(&["pull", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    for s in [&s1, &s2, &alias] {
        assert!(p.out.contains(&format!("not pulled: {s} ")), "{}", p.out);
    }
    assert!(
        p.out.contains("3 pruned snapshot refs not pulled"),
        "{}",
        p.out
    );
    assert_eq!(
        snapshots(&v.dir).into_keys().collect::<BTreeSet<_>>(),
        BTreeSet::from([s3.clone(), elsewhere.clone()])
    );
    // The old snapshot was not even transferred (its objects were collected).
    assert!(!has_object(&v.dir, &c1));
    v.fsck();
    // push --prune deletes the two it pruned again; the alias (a name this
    // vault never had) and the remote-only ref stay.
    push_prune(&v, &cfg, 2);
    assert_eq!(
        snapshots(&r.dir).into_keys().collect::<BTreeSet<_>>(),
        BTreeSet::from([s3.clone(), elsewhere.clone(), alias.clone()])
    );
    fsck(&r.dir);

    // A zero grace frees at once what the default grace kept.
    sv_run(&[
        "prune",
        "--vault",
        v.path(),
        "--keep-last",
        "1",
        "--gc-grace",
        "0",
    ])
    .expect(0);
    let blobs = v.blobs();
    assert!(young_chunks.iter().all(|b| !blobs.contains(b)));
    v.fsck();
}

struct Done {
    what: &'static str,
    code: i32,
    out: String,
    err: String,
}

fn spawn(args: &[&str]) -> std::process::Child {
    sv().args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sprayvault starts")
}

fn finish(what: &'static str, c: std::process::Child) -> Done {
    let o = c.wait_with_output().unwrap();
    Done {
        what,
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).to_string(),
        err: String::from_utf8_lossy(&o.stderr).to_string(),
    }
}

#[test]
fn pull_prune_backup_and_push_at_once_lose_nothing() {
    let lab = Lab::up("rep-race", 121, 1);
    let cfg = lab.ssh_config();
    let inv = lab.inventory();
    let v = TestVault::new();
    let r = remote(121, &v);
    change_etcd(&lab, 0);
    v.backup(&lab, &[]).expect(0);
    sv_run(&["push", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    let mut created: BTreeSet<String> = snapshots(&v.dir).into_keys().collect();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut commits = vec![v.git(&["rev-parse", "main"]).trim().to_string()];
    let wait = "600";
    let (mut skipped, mut ahead) = (0, 0);
    for i in 1..=20 {
        change_etcd(&lab, i);
        // All four at once: they queue on the vault lock.
        let common = ["--vault", v.path(), "--lock-wait", wait];
        let ssh = ["--ssh-config", cfg.as_str()];
        let children = [
            (
                "backup",
                spawn(&[&["backup", "-i", &inv, "--json", "-q"][..], &ssh, &common].concat()),
            ),
            (
                "prune",
                spawn(&[&["prune", "--keep-last", "2"][..], &common].concat()),
            ),
            ("pull", spawn(&[&["pull"][..], &ssh, &common].concat())),
            (
                "push",
                spawn(&[&["push", "--prune"][..], &ssh, &common].concat()),
            ),
        ];
        let done: Vec<Done> = children.into_iter().map(|(w, c)| finish(w, c)).collect();
        for d in &done {
            assert!(
                d.code == 0 || (d.what == "backup" && d.code == 3),
                "iteration {i}: {} exited {}\n{}\n{}",
                d.what,
                d.code,
                d.out,
                d.err
            );
            match d.what {
                "backup" => {
                    let report: Value = serde_json::from_str(&d.out)
                        .unwrap_or_else(|e| panic!("iteration {i}: backup --json: {e}\n{}", d.out));
                    commits.push(report["commit"].as_str().unwrap().to_string());
                    if let Some(s) = report["etcd"]["Ok"]["reference"].as_str() {
                        created.insert(s.to_string());
                    }
                }
                "pull" => {
                    skipped += d.out.matches("not pulled: ").count();
                    ahead += d.out.contains("main is ahead") as usize;
                }
                "prune" => removed.extend(
                    d.out
                        .lines()
                        .filter_map(|l| l.strip_prefix("remove "))
                        .filter_map(|l| l.split(' ').next())
                        .map(|n| format!("{ETCD}{n}")),
                ),
                _ => {}
            }
        }
        v.fsck();
    }
    eprintln!(
        "{} backups, {} snapshots pruned; pulls left out {skipped} pruned refs and found main ahead {ahead} times",
        commits.len() - 1,
        removed.len()
    );
    let main = v.git(&["rev-parse", "main"]).trim().to_string();
    for c in &commits {
        let reachable = run(Command::new("git").arg("--git-dir").arg(&v.dir).args([
            "merge-base",
            "--is-ancestor",
            c,
            &main,
        ]))
        .status
        .success();
        assert!(reachable, "backup commit {c} is not reachable from main");
    }
    assert_eq!(
        v.git(&["rev-list", "--count", "main"]).trim(),
        (commits.len() + 1).to_string(),
        "one commit per backup after init"
    );
    assert!(removed.len() >= 10, "prune removed only {removed:?}");
    let have: BTreeSet<String> = snapshots(&v.dir).into_keys().collect();
    assert_eq!(
        have,
        created.difference(&removed).cloned().collect(),
        "snapshots lost or resurrected"
    );
    let record = std::fs::read_to_string(v.dir.join("sprayvault/pruned")).unwrap();
    let recorded: BTreeSet<String> = record
        .lines()
        .skip(1)
        .filter_map(|l| l.split(' ').nth(1))
        .map(str::to_string)
        .collect();
    assert_eq!(recorded, removed);
    // After a last push --prune the remote holds exactly what the vault does.
    sv_run(&["push", "--prune", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    assert_eq!(snapshots(&r.dir).into_keys().collect::<BTreeSet<_>>(), have);
    fsck(&r.dir);
    sv_run(&[
        "verify",
        "--vault",
        v.path(),
        "--full",
        "--identity",
        v.key.identity.to_str().unwrap(),
    ])
    .expect(0);
}

/// What a git host can do to a machine that trusts the vault: serve `main`
/// rolled back to an older, validly signed backup, or drop the newest
/// snapshot ref. A new directory is pulled only for the signer the operator
/// names, and leaves nothing behind when refused; a machine that has read
/// the newer backup refuses the rolled-back copy on a fresh clone; and
/// `latest` never silently means an older snapshot.
#[test]
fn a_rolled_back_or_trimmed_offsite_copy_is_refused_on_a_fresh_clone() {
    let lab = Lab::up("rep-rollback", 113, 1);
    let cfg = lab.ssh_config();
    let v = TestVault::new();
    let r = remote(113, &v);
    for i in 0..2 {
        change_etcd(&lab, i);
        v.backup(&lab, &[]).expect(0);
    }
    sv_run(&["push", "--vault", v.path(), "--ssh-config", &cfg]).expect(0);
    let signer = v.signer();
    let (new, old) = (
        git_at(&v.dir, &["rev-parse", "main"]),
        git_at(&v.dir, &["rev-parse", "main~1"]),
    );
    let snaps = snapshots(&r.dir);
    let (newest_ref, newest_commit) = snaps.iter().next_back().expect("two snapshots");
    let older_name = snaps
        .keys()
        .next()
        .unwrap()
        .trim_start_matches(ETCD)
        .to_string();
    // A machine that has never read the vault: its own pin file.
    let machine = tempfile::tempdir().unwrap();
    let pins = machine.path().join("pins");
    let on_machine = |args: &[&str], extra_env: Option<(&str, &str)>| {
        let mut c = sv();
        c.env("SPRAYVAULT_PINS", &pins).args(args);
        if let Some((k, val)) = extra_env {
            c.env(k, val);
        }
        let out = run(&mut c);
        Sv {
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
            code: out.status.code().unwrap_or(-1),
        }
    };
    let pull = |name: &str, env: Option<(&str, &str)>| {
        let dir = machine.path().join(name);
        let d = dir.to_str().unwrap().to_string();
        (
            on_machine(
                &[
                    "pull",
                    "--vault",
                    &d,
                    "--from",
                    &r.url,
                    "--ssh-config",
                    &cfg,
                ],
                env,
            ),
            dir,
        )
    };
    let (p, a) = pull("a", None);
    let p = p.expect(11);
    assert!(p.err.contains("does not trust yet"), "{}", p.err);
    assert!(!a.exists(), "a refused pull left {}", a.display());
    let (p, a) = pull("a", Some(("SPRAYVAULT_EXPECT_SIGNER", &signer)));
    p.expect(0);
    assert_eq!(git_at(&a, &["rev-parse", "main"]), new);

    // The git host rolls main back to the older signed backup.
    git_at(&r.dir, &["update-ref", "refs/heads/main", old.trim()]);
    let (p, b) = pull("b", None);
    let p = p.expect(11);
    assert!(
        p.err.contains("does not descend from backup") && p.err.contains(&new.trim()[..10]),
        "{}",
        p.err
    );
    assert!(!b.exists(), "a refused pull left {}", b.display());

    // main is back, but the newest snapshot ref is gone: `latest` refuses,
    // a snapshot named by the operator still exports.
    git_at(&r.dir, &["update-ref", "refs/heads/main", new.trim()]);
    git_at(
        &r.dir,
        &["update-ref", "-d", newest_ref, newest_commit.trim()],
    );
    let (p, c) = pull("c", None);
    p.expect(0);
    let (cd, id) = (
        c.to_str().unwrap().to_string(),
        v.key.identity.display().to_string(),
    );
    let out = machine.path().join("snap.db");
    let export = |at: Option<&str>| {
        let mut args = vec![
            "etcd",
            "export",
            "--vault",
            &cd,
            "--identity",
            &id,
            "-o",
            out.to_str().unwrap(),
        ];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        on_machine(&args, None)
    };
    let e = export(None).expect(11);
    assert!(e.err.contains("which this copy does not have"), "{}", e.err);
    assert!(!out.exists());
    export(Some(&older_name)).expect(0);
    assert!(out.exists());
}
