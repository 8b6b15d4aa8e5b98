//! A hostile node against the backup host, on the real lab: an account
//! whose name holds a TAB and an escape sequence, and an `/etc/passwd` of
//! several GiB with root's line first (the node still logs root in). Neither
//! may stop the backup of the other nodes, break the next night's parse, or
//! reach the operator's terminal raw.

mod common;

use common::*;

#[test]
fn an_account_name_with_a_tab_and_an_escape_is_recorded_by_id_and_breaks_nothing() {
    let lab = Lab::up("hostile-name", 102, 2);
    // node1 gets an account "ev<TAB>il<ESC>[2J" owning a file kubespray's
    // tree holds.
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "printf 'ev\\til\\033[2J:x:4242:4242::/nonexistent:/bin/false\\n' >> /etc/passwd && \
             printf 'gr\\tp\\033[31m:x:4242:\\n' >> /etc/group && \
             echo hostile > /etc/kubernetes/ssl/hostile.txt && chown 4242:4242 /etc/kubernetes/ssl/hostile.txt",
        ],
    );
    let v = TestVault::new();
    let first = v
        .backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    assert!(first.out.contains("2/2 nodes"), "{}", first.out);
    // A per-file note says so, escaped, on stderr and in the encrypted details.
    assert!(
        first.err.contains("node1: /etc/kubernetes/ssl/hostile.txt: owner 4242 and group 4242 have a name on the node that is not a plain account name"),
        "{}",
        first.err
    );
    let manifest = v.git(&["cat-file", "blob", "main:nodes/node1/manifest"]);
    let line = manifest
        .lines()
        .find(|l| l.ends_with("\t/etc/kubernetes/ssl/hostile.txt\t-"))
        .unwrap_or_else(|| panic!("hostile.txt not recorded:\n{manifest}"));
    // By id only: 11 fields, owner and group "-".
    let f: Vec<&str> = line.split('\t').collect();
    assert_eq!(f.len(), 11, "{line:?}");
    assert_eq!(&f[2..6], ["4242", "4242", "-", "-"], "{line:?}");
    assert!(!manifest.contains('\u{1b}'), "{manifest:?}");

    // The next night parses what this one wrote, and changes nothing.
    let second = v
        .backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    assert!(second.out.contains("0 changed"), "{}", second.out);
    // A restore at latest reads it; nothing shown carries the escape.
    let plan = v.restore(&lab, "node1", &["--dry-run"]).expect(0);
    let show = sv_run(&["show", "latest", "--vault", v.path(), "--node", "node1"]).expect(0);
    for out in [
        &first.out,
        &first.err,
        &second.out,
        &plan.out,
        &plan.err,
        &show.out,
    ] {
        assert!(
            !out.contains('\u{1b}'),
            "raw escape on the terminal: {out:?}"
        );
    }
    assert!(
        show.out.contains("/etc/kubernetes/ssl/hostile.txt"),
        "{}",
        show.out
    );
}

#[test]
fn a_node_serving_a_huge_passwd_is_refused_by_name_in_bounded_memory_and_the_others_are_backed_up()
{
    let lab = Lab::up("hostile-passwd", 110, 2);
    // root's line stays first, so the node still logs root in; the rest is
    // 3 GiB (sparse on the lab's disk).
    lab.exec("node2", &["truncate", "-s", "3G", "/etc/passwd"]);
    let v = TestVault::new();
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let (out, peak_kib) = run_peak_rss(
        sv().args([
            "backup",
            "--vault",
            v.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--no-facts",
            "--no-etcd-snapshot",
        ]),
        |_| {},
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("backup with a 3 GiB /etc/passwd on node2: peak RSS {peak_kib} KiB");
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("/etc/passwd") && said.contains("is larger than the 4194304 bytes"),
        "{said}"
    );
    assert!(said.contains("1/2 nodes"), "{said}");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB: {said}");
    let manifest = v.git(&["cat-file", "blob", "main:nodes/node1/manifest"]);
    assert!(
        manifest.contains("/etc/kubernetes/ssl/ca.crt"),
        "{manifest}"
    );
}

/// A node cannot make the backup host list without end: a directory of more
/// than 50,000 entries is a per-entry error naming it, and a node reporting
/// more than 100,000 entries in all is given up by name, the other files
/// and nodes unaffected.
#[test]
fn huge_listings_are_capped_per_directory_and_per_node() {
    let lab = Lab::up("hostile-many", 115, 1);
    lab.exec(
        "node1",
        &["sh", "-c", "mkdir /etc/kubernetes/ssl/many && cd /etc/kubernetes/ssl/many && seq 1 50001 | xargs touch"],
    );
    let v = TestVault::new();
    let r = v
        .backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(3);
    let said = format!("{}{}", r.out, r.err);
    assert!(
        said.contains("/etc/kubernetes/ssl/many") && said.contains("has more than 50000 entries"),
        "{said}"
    );
    let manifest = v.git(&["cat-file", "blob", "main:nodes/node1/manifest"]);
    assert!(
        manifest.contains("\t/etc/kubernetes/ssl/ca.crt\t"),
        "{manifest}"
    );
    lab.exec(
        "node1",
        &["sh", "-c", "rm -rf /etc/kubernetes/ssl/many && for d in a b c; do mkdir /etc/kubernetes/ssl/$d && (cd /etc/kubernetes/ssl/$d && seq 1 40000 | xargs touch); done"],
    );
    let r = v
        .backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(1);
    let said = format!("{}{}", r.out, r.err);
    assert!(
        said.contains("node1") && said.contains("more than 100000 entries"),
        "{said}"
    );
}

/// Restore reads a target's file only when it has the recorded size, and
/// then no further than that size, from the opened handle: a node serving a
/// 3 GiB file where a certificate was recorded gets a plan that says the
/// content differs, in bounded memory.
#[test]
fn restore_reads_of_the_target_are_bounded_by_the_recorded_size() {
    let lab = Lab::up("hostile-restore", 117, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    lab.exec(
        "node1",
        &["truncate", "-s", "3G", "/etc/kubernetes/ssl/ca.crt"],
    );
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let id = v.key.identity.display().to_string();
    let (out, peak_kib) = run_peak_rss(
        sv().args([
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
            "--dry-run",
        ]),
        |_| {},
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("restore plan against a 3 GiB ca.crt: peak RSS {peak_kib} KiB");
    // Refused without --force: the entry differs and would be replaced.
    assert_eq!(out.status.code(), Some(7), "{said}");
    let line = said
        .lines()
        .find(|l| l.contains("/etc/kubernetes/ssl/ca.crt"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("content differs"), "{line}");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB: {said}");
}
