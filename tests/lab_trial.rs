//! `verify --trial` against snapshots of the lab's real etcd: restored on
//! this machine with its own etcd of the same version into a private
//! directory, served by a throwaway etcd on loopback, and compared with what
//! the backup recorded. A vault whose snapshot does not restore to its
//! record (built with git's plumbing: a later, valid snapshot stored under
//! the earlier one's revision and key count) fails with exit 10, naming it.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn trial_restore_passes_on_a_good_vault_and_names_a_snapshot_that_disagrees() {
    trial_restore("e35-trial34", 88, EtcdVersion::V34);
}

#[test]
fn trial_restore_passes_on_a_good_vault_and_names_a_snapshot_that_disagrees_on_etcd_3_5() {
    trial_restore("e35-trial35", 89, EtcdVersion::V35);
}

/// `sprayvault verify --trial` with `path` as PATH (where it finds etcd).
fn verify_trial(path: &str, vault: &str, identity: &str, extra: &[&str]) -> Sv {
    let mut args = vec![
        "verify",
        "--vault",
        vault,
        "--trial",
        "--identity",
        identity,
    ];
    args.extend_from_slice(extra);
    let out = run(sv().env("PATH", path).args(&args));
    Sv {
        out: String::from_utf8_lossy(&out.stdout).to_string(),
        err: String::from_utf8_lossy(&out.stderr).to_string(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Another local user (`nobody`) tries to reach a running trial's etcd:
/// its directory cannot be entered, and etcd has no TCP listener at all.
fn probed_by_another_user(path: &str, vault: &str, identity: &str) {
    let mut child = sv()
        .env("PATH", path)
        .args([
            "verify",
            "--vault",
            vault,
            "--trial",
            "--identity",
            identity,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = std::path::PathBuf::from(
        std::env::var_os("XDG_RUNTIME_DIR").unwrap_or_else(|| "/dev/shm".into()),
    );
    let started = std::time::Instant::now();
    let mut probed = false;
    while started.elapsed() < std::time::Duration::from_secs(60) && !probed {
        let dirs: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("sprayvault-trial-")
            })
            .map(|e| e.path())
            .collect();
        for d in dirs {
            let Some(sock) = std::fs::read_dir(&d).ok().and_then(|r| {
                r.filter_map(Result::ok)
                    .find(|e| e.file_name().to_string_lossy().starts_with("localhost:"))
            }) else {
                continue;
            };
            let probe = run(std::process::Command::new("setpriv")
                .args([
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                    "sh",
                    "-c",
                ])
                .arg(format!("cd {} && echo entered", d.display())));
            let said = String::from_utf8_lossy(&probe.stderr).to_string();
            // dash says "can't cd", bash "Permission denied".
            assert!(
                !probe.status.success()
                    && (said.contains("can't cd") || said.contains("ermission denied")),
                "{said}"
            );
            // (Another test's trial may have ended in between: look again.)
            let Ok(meta) = std::fs::metadata(&d) else {
                continue;
            };
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
            // No etcd of this machine's user listens on TCP for it.
            let tcp = ok(std::process::Command::new("ss").args(["-ltnpH"]));
            assert!(!tcp.contains(&format!("pid={},", child.id())), "{tcp}");
            println!(
                "probed {} ({}): refused",
                d.display(),
                sock.file_name().to_string_lossy()
            );
            probed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let st = child.wait().unwrap();
    assert!(probed, "no running trial was seen");
    assert_eq!(st.code(), Some(0));
}

fn snapshots(v: &TestVault) -> Vec<Value> {
    let ls: Value = serde_json::from_str(
        &sv_run(&["etcd", "ls", "--vault", v.path(), "--json"])
            .expect(0)
            .out,
    )
    .unwrap();
    ls.as_array().unwrap().clone()
}

fn trial_restore(name: &str, net: u8, version: EtcdVersion) {
    let lab = Lab::up_with(name, net, 3, version);
    // This version's local etcd first on PATH.
    let path = format!(
        "{}:/usr/sbin:/usr/bin:/sbin:/bin",
        version.bin_dir().display()
    );
    for i in 0..40 {
        lab.etcdctl(
            "node1",
            &["put", &format!("/registry/trial/k{i:02}"), &format!("v{i}")],
        );
    }
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts"]).expect(0);
    for i in 0..15 {
        lab.etcdctl("node2", &["put", &format!("/registry/later/k{i:02}"), "x"]);
    }
    v.backup(&lab, &["--no-facts"]).expect(0);
    let snaps = snapshots(&v);
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let (first, second) = (&snaps[0], &snaps[1]);
    let id = v.key.identity.to_str().unwrap();
    let trial = |extra: &[&str]| verify_trial(&path, v.path(), id, extra);

    // A good vault: the latest snapshot restores to what was recorded.
    let good = trial(&[]).expect(0);
    let second_name = second["name"].as_str().unwrap();
    let want = format!(
        "trial restore of etcd snapshot {second_name}: restores to what its backup recorded (revision {}, {} keys)",
        second["revision"], second["keys"]
    );
    assert!(good.out.contains(&want), "{}\n{}", good.out, good.err);
    let local = match version {
        EtcdVersion::V34 => "with local etcd 3.4.23 (etcdctl)",
        EtcdVersion::V35 => "with local etcd 3.5.",
    };
    assert!(good.out.contains(local), "{}", good.out);
    if version == EtcdVersion::V35 {
        assert!(good.out.contains(" (etcdutl)"), "{}", good.out);
    }
    // The throwaway etcd listens on unix sockets only, in a 0700 directory
    // in memory-backed storage.
    assert!(
        good.err.contains("starting a throwaway etcd")
            && good.err.contains(" on unix://localhost:"),
        "{}",
        good.err
    );
    assert!(
        good.out.contains(", in /dev/shm/sprayvault-trial-")
            || std::env::var_os("XDG_RUNTIME_DIR").is_some(),
        "{}",
        good.out
    );
    probed_by_another_user(&path, v.path(), id);
    // 55 keys were written; the sample was read back; the private directory is gone.
    let table = |out: &str, check: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(check))
            .unwrap_or_else(|| panic!("no {check} row: {out}"))
            .split_whitespace()
            .last()
            .unwrap()
            .to_string()
    };
    assert_eq!(table(&good.out, "served live keys"), "55", "{}", good.out);
    assert_eq!(
        table(&good.out, "sample keys read back"),
        "5/5",
        "{}",
        good.out
    );
    // The whole key space: the member's hashkv at backup, the throwaway
    // etcd's at the same revision.
    assert_eq!(
        table(&good.out, "hashkv at the revision"),
        "same",
        "{}",
        good.out
    );
    assert!(
        good.out.contains("compared: the whole key space"),
        "{}",
        good.out
    );
    let workdir = good
        .out
        .split(", in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("no work directory named: {}", good.out));
    assert!(workdir.contains("sprayvault-trial-"), "{workdir}");
    assert!(
        !std::path::Path::new(workdir).exists(),
        "{workdir} left behind"
    );

    // --at picks the earlier one, also good; --json says so too.
    let first_name = first["name"].as_str().unwrap();
    let j = trial(&["--at", first_name, "--json"]).expect(0);
    let j: Value = serde_json::from_str(&j.out).unwrap();
    assert_eq!(j["trial"]["snapshot"], first_name);
    assert_eq!(j["trial"]["mismatches"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(
        j["trial"]["observed"]["served_revision"], first["revision"],
        "{j}"
    );

    // A bad vault: the second snapshot's index is rewritten (git plumbing,
    // as anyone with write access to the vault could) to record the first
    // one's revision and key count; its map and packs stay a valid later snapshot.
    let full = format!("refs/sprayvault/etcd/{second_name}");
    let index = v.git(&["cat-file", "blob", &format!("{full}:snapshot")]);
    let forge = |edit: &dyn Fn(&str) -> String| {
        let forged: String = index.lines().map(edit).collect();
        assert_ne!(forged, index);
        let blob_file = v.tmp.path().join("forged-index");
        std::fs::write(&blob_file, &forged).unwrap();
        let blob = v.git(&["hash-object", "-w", blob_file.to_str().unwrap()]);
        let map = v.git(&["rev-parse", &format!("{full}:map")]);
        let packs = v.git(&["rev-parse", &format!("{full}:packs")]);
        let tree = ok(std::process::Command::new("sh").arg("-c").arg(format!(
            "printf '100644 blob %s\\tmap\\n040000 tree %s\\tpacks\\n100644 blob %s\\tsnapshot\\n' {} {} {} | git --git-dir {} mktree",
            map.trim(),
            packs.trim(),
            blob.trim(),
            v.path()
        )));
        let commit = v.git(&["commit-tree", tree.trim(), "-m", "forged index"]);
        v.git(&["update-ref", &full, commit.trim()]);
    };

    // Only the recorded hashkv differs: revision, keys and sample agree,
    // the whole key space does not.
    assert!(index.contains("\nhashkv "), "{index}");
    forge(&|l: &str| {
        if l.starts_with("hashkv ") {
            format!("hashkv {}\n", "0".repeat(64))
        } else {
            format!("{l}\n")
        }
    });
    let bad = trial(&[]).expect(10);
    let said: Vec<&str> = bad
        .out
        .lines()
        .filter(|l| l.starts_with("MISMATCH"))
        .collect();
    assert_eq!(
        said,
        [format!(
            "MISMATCH etcd snapshot {second_name}: the restored etcd's `endpoint hashkv` at revision {} differs from the member's at backup: the key space is not what was backed up",
            second["revision"]
        )],
        "{}",
        bad.out
    );

    forge(&|l: &str| {
        if l.starts_with("revision ") {
            format!("revision {}\n", first["revision"])
        } else if l.starts_with("keys ") {
            format!("keys {}\n", first["keys"])
        } else {
            format!("{l}\n")
        }
    });

    let bad = trial(&[]).expect(10);
    assert!(
        bad.out.contains(&format!(
            "MISMATCH etcd snapshot {second_name}: the restored etcd serves revision {}, the backup recorded {}",
            second["revision"], first["revision"]
        )),
        "{}\n{}",
        bad.out,
        bad.err
    );
    assert!(
        bad.out.contains(&format!(
            "MISMATCH etcd snapshot {second_name}: `snapshot status` reports {} keys, the backup recorded {}",
            second["keys"], first["keys"]
        )),
        "{}",
        bad.out
    );
    assert!(
        bad.out.contains(&format!(
            "trial restore of etcd snapshot {second_name}: does NOT restore to what its backup recorded"
        )),
        "{}",
        bad.out
    );
    // The earlier snapshot is still good.
    trial(&["--at", first_name]).expect(0);

    // Another identity cannot decrypt (6); no local etcd is a clear error (1).
    let other = age_key(v.tmp.path(), "other");
    verify_trial(&path, v.path(), other.identity.to_str().unwrap(), &[]).expect(6);
    let none = verify_trial("/nonexistent", v.path(), id, &[]);
    if !std::path::Path::new("/usr/local/bin/etcd").exists() {
        let none = none.expect(1);
        assert!(
            none.err.contains("no local etcd to restore into"),
            "{}",
            none.err
        );
    }
    sv_run(&["verify", "--vault", v.path(), "--trial"]).expect(2);
}
