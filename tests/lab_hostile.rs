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
        said.contains("/etc/passwd") && said.contains("is larger than 4096 KiB"),
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
