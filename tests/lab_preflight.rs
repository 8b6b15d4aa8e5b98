//! `sprayvault preflight` against the real lab, real Ansible and real etcd:
//! all good; a host's cached facts deleted, then aged past the timeout;
//! an etcd member stopped; a wiped node; a node answering on another's
//! address. The fact-cache verdict is checked against a real
//! `ansible-playbook --limit` run of kubespray's rule, both ways.

mod common;

use common::kubespray::Kubespray;
use common::*;

struct Setup {
    lab: Lab,
    v: TestVault,
    kube: Kubespray,
}

impl Setup {
    fn preflight(&self, nodes: &[&str], inventory: &str) -> Sv {
        let k = self.kube.dir.to_str().unwrap().to_string();
        let cfg = self.lab.ssh_config();
        let id = self.v.key.identity.display().to_string();
        let mut a = vec!["preflight"];
        a.extend_from_slice(nodes);
        a.extend_from_slice(&[
            "-i",
            inventory,
            "--ssh-config",
            &cfg,
            "--ansible-dir",
            &k,
            "--vault",
            self.v.path(),
            "--identity",
            &id,
        ]);
        sv_run(&a)
    }

    /// kubespray's assertion on the fact cache, `--limit node`, by real Ansible.
    fn assert_passes(&self, node: &str) -> bool {
        let inv = self.lab.inventory();
        let (passed, out) = self.kube.run(&[
            "ansible-playbook",
            "-i",
            &inv,
            "assert-facts.yml",
            "--limit",
            node,
        ]);
        if !passed {
            assert!(
                out.contains("Kubespray does not support '--limit'"),
                "failed for another reason: {out}"
            );
        }
        passed
    }
}

/// A check line of the plan: `CHECK HOST STATUS DETAIL`.
fn line<'a>(out: &'a str, check: &str, host: &str, status: &str) -> Option<&'a str> {
    out.lines().find(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let words = check.split(' ').count();
        f.len() > words + 1
            && f[..words].join(" ") == check
            && f[words] == host
            && f[words + 1] == status
    })
}

fn expect_line(out: &str, check: &str, host: &str, status: &str, detail: &str) {
    let l = line(out, check, host, status)
        .unwrap_or_else(|| panic!("no {check} {host} {status} line:\n{out}"));
    assert!(l.contains(detail), "{l}\n{out}");
}

#[test]
fn preflight_names_what_would_stop_kubespray_and_agrees_with_its_fact_assertion() {
    let lab = Lab::up("preflight", 112, 4);
    let v = TestVault::new();
    let kube = Kubespray::new(v.tmp.path(), &lab);
    let inv = lab.inventory();
    let (ok_setup, out) = kube.run(&["ansible", "-i", &inv, "all", "-m", "setup"]);
    assert!(ok_setup, "{out}");
    let k = kube.dir.to_str().unwrap().to_string();
    v.backup(&lab, &["--ansible-dir", &k]).expect(0);
    let s = Setup { lab, v, kube };

    // All good: exit 0, and kubespray's assertion passes too.
    let good = s.preflight(&["node4"], &inv).expect(0);
    assert!(
        good.out.contains("kubespray's --limit run can start"),
        "{}",
        good.out
    );
    for host in ["node1", "node2", "node3"] {
        expect_line(&good.out, "facts", host, "ok", "cached");
        expect_line(&good.out, "etcd", host, "ok", "healthy");
    }
    expect_line(&good.out, "node", "node4", "ok", "answers as \"node4\"");
    expect_line(&good.out, "certs", "node4", "ok", "as in backup");
    expect_line(
        &good.out,
        "first control plane",
        "node1",
        "ok",
        "reachable and healthy",
    );
    assert!(s.assert_passes("node4"));

    // node1's cached facts deleted: named, and the assertion fails too.
    let cache1 = s.kube.cache.join("node1");
    let saved = std::fs::read(&cache1).unwrap();
    std::fs::remove_file(&cache1).unwrap();
    let r = s.preflight(&["node4"], &inv).expect(12);
    expect_line(&r.out, "facts", "node1", "FAIL", "no cached facts");
    assert!(
        r.out.contains("sprayvault facts restore node1"),
        "{}",
        r.out
    );
    assert!(!s.assert_passes("node4"));

    // Back, but two days old: past fact_caching_timeout, Ansible ignores it.
    std::fs::write(&cache1, &saved).unwrap();
    ok(std::process::Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(&cache1));
    let r = s.preflight(&["node4"], &inv).expect(12);
    expect_line(
        &r.out,
        "facts",
        "node1",
        "FAIL",
        "past fact_caching_timeout (86400 s)",
    );
    assert!(!s.assert_passes("node4"));
    ok(std::process::Command::new("touch").arg(&cache1));
    s.preflight(&["node4"], &inv).expect(0);
    assert!(s.assert_passes("node4"));

    // An etcd member stopped.
    s.lab.lab(&["etcd-stop", "node2"]);
    let r = s.preflight(&["node4"], &inv).expect(12);
    expect_line(&r.out, "etcd", "node2", "FAIL", "member etcd2 not healthy");
    expect_line(&r.out, "etcd", "cluster", "ok", "quorum: 2 of 3");
    s.lab.lab(&["etcd-start", "node2"]);
    s.lab.lab(&["wait-healthy", "--timeout", "30"]);

    // A wiped etcd member: its certificates are gone and its member does
    // not answer; both name replace.
    s.lab.lab(&["wipe", "node3"]);
    let r = s.preflight(&["node3"], &inv).expect(12);
    expect_line(&r.out, "certs", "node3", "FAIL", "are missing");
    expect_line(
        &r.out,
        "etcd",
        "node3",
        "FAIL",
        "member etcd3 is in the cluster but its etcd does not answer",
    );
    assert!(r.out.contains("sprayvault replace node3"), "{}", r.out);

    // A node answering on another's address: node4's ansible_host is node2's.
    let text = std::fs::read_to_string(&inv).unwrap();
    let addr4 = s.lab.lab(&["addr", "node4"]).trim().to_string();
    let addr2 = s.lab.lab(&["addr", "node2"]).trim().to_string();
    let bad = s.v.tmp.path().join("wrong-address.ini");
    std::fs::write(
        &bad,
        text.replace(
            &format!("node4 ansible_host={addr4}"),
            &format!("node4 ansible_host={addr2}"),
        ),
    )
    .unwrap();
    let r = s.preflight(&["node4"], bad.to_str().unwrap()).expect(12);
    expect_line(
        &r.out,
        "node",
        "node4",
        "FAIL",
        "calls itself \"node2\", not \"node4\"",
    );
}
