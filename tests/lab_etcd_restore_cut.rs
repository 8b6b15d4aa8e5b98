//! Restores that lose sprayvault or the node half way, against real labs
//! (sshd, a 3-member TLS etcd): an `etcd restore` SIGKILLed right after
//! every member stopped etcd leaves etcd running again on every member, with
//! no key material left once the next run has swept; a node frozen with
//! SIGSTOP during `restore` ends the restore at its step deadline, naming
//! the node and the step.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The state line of each member's restore script (empty: none yet).
fn states(lab: &Lab) -> Vec<String> {
    (1..=lab.nodes)
        .map(|i| {
            lab.exec(
                &format!("node{i}"),
                &[
                    "sh",
                    "-c",
                    "cat /var/tmp/sprayvault-etcd-restore-*/state 2>/dev/null || true",
                ],
            )
            .trim()
            .to_string()
        })
        .collect()
}

/// The states once every script has ended (etcd may answer a moment
/// before its script writes that it started it).
fn final_states(lab: &Lab) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let s = states(lab);
        if s.iter().all(|l| l.is_empty() || l.starts_with("done ")) || Instant::now() > until {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What is left of sprayvault's on a member: upload directories and their
/// files, restored copies and old data beside the data directory.
fn leftovers(lab: &Lab, node: &str) -> String {
    lab.exec(
        node,
        &[
            "sh",
            "-c",
            "cd /var/tmp && find . -path './sprayvault*' | sort; ls -a /var/lib/etcd | grep sprayvault || true",
        ],
    )
}

fn etcd_restore_args(v: &TestVault, lab: &Lab, extra: &[&str]) -> Vec<String> {
    let labcmd = format!(
        "{} --dir {} ",
        root().join("scripts/lab").display(),
        lab.dir.display()
    );
    let mut a: Vec<String> = vec![
        "etcd".into(),
        "restore".into(),
        "--vault".into(),
        v.path().into(),
        "-i".into(),
        lab.inventory(),
        "--ssh-config".into(),
        lab.ssh_config(),
        "--identity".into(),
        v.key.identity.display().to_string(),
        "--stop-command".into(),
        format!("{labcmd}etcd-stop \"$(uname -n)\""),
        "--start-command".into(),
        format!("{labcmd}etcd-start \"$(uname -n)\""),
        "--yes".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn a_killed_etcd_restore_after_the_stop_leaves_etcd_running_on_every_member() {
    let lab = Lab::up("er-cut", 130, 3);
    for i in 0..10 {
        lab.etcdctl("node1", &["put", &format!("/registry/keep/k{i}"), "v"]);
    }
    let v = TestVault::new();
    let r = v.backup(&lab, &["--no-facts"]).expect(0);
    assert!(r.out.contains("etcd snapshot: "), "{}", r.out);
    lab.etcdctl("node1", &["put", "/registry/after-backup", "kept"]);

    let args = etcd_restore_args(&v, &lab, &["--step-timeout", "15s", "--timeout", "90"]);
    let started = Instant::now();
    let mut run = sv()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once every member has stopped etcd (and maybe swapped).
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(120) {
        seen = states(&lab);
        if seen.iter().all(|s| s == "stopped" || s == "swapped") {
            break;
        }
        assert!(
            run.try_wait().unwrap().is_none(),
            "the restore ended before every member stopped: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let cut = Instant::now();
    assert!(
        seen.iter().all(|s| s == "stopped" || s == "swapped"),
        "{seen:?}"
    );
    let status = lab.lab(&["status"]);
    assert_eq!(status.matches("etcd down").count(), 3, "{status}");
    std::thread::sleep(Duration::from_secs(5));
    let ssh = ok(std::process::Command::new("sh").arg("-c").arg(format!(
        "pgrep -a -x ssh | grep -F -- {} || true",
        lab.ssh_config()
    )));
    assert_eq!(ssh.trim(), "", "ssh processes of the killed run are left");

    // Without sprayvault, each script waits for the go until 15 + 30 + 10
    // + 20 s after its start, then goes back to its old data and starts etcd.
    lab.lab(&["wait-healthy", "--timeout", "150"]);
    let back = cut.elapsed();
    println!(
        "etcd healthy on every member {:.1} s after the kill ({:.1} s after the restore started)",
        back.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(back < Duration::from_secs(100), "took {back:?}");
    for n in ["node1", "node2", "node3"] {
        assert_eq!(
            lab.etcdctl(n, &["get", "--print-value-only", "/registry/after-backup"])
                .trim(),
            "kept",
            "{n} is not on its old data"
        );
    }
    let done = final_states(&lab);
    for s in &done {
        assert!(
            s.starts_with("done old started no word from sprayvault within 75 s"),
            "{done:?}"
        );
    }
    // No key material is left: the snapshot and the restored copies are
    // gone, the old data is back in place (no aside); only the script's own
    // files remain, and the next run sweeps them.
    for n in ["node1", "node2", "node3"] {
        let left = leftovers(&lab, n);
        assert!(!left.contains("snapshot.db"), "{n}: {left}");
        assert!(!left.contains(".sprayvault-restore-"), "{n}: {left}");
        assert!(!left.contains(".sprayvault-before-"), "{n}: {left}");
        assert!(left.contains("/member.sh"), "{n}: {left}");
    }

    // The next run sweeps the leftovers and restores.
    let again = sv_run(
        &etcd_restore_args(&v, &lab, &["--step-timeout", "60s", "--timeout", "90"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .expect(0);
    assert!(
        again.out.contains("all healthy"),
        "{}\n{}",
        again.out,
        again.err
    );
    lab.lab(&["wait-healthy", "--timeout", "30"]);
    for n in ["node1", "node2", "node3"] {
        assert_eq!(
            lab.etcdctl(n, &["get", "/registry/after-backup"]).trim(),
            ""
        );
        let keys = lab.etcdctl(n, &["get", "--prefix", "/registry/keep/", "--keys-only"]);
        assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 10, "{n}");
        let left = leftovers(&lab, n);
        assert!(!left.contains("./sprayvault"), "{n}: {left}");
        assert!(!left.contains(".sprayvault-restore-"), "{n}: {left}");
        assert_eq!(
            left.matches(".sprayvault-before-").count(),
            1,
            "{n}: {left}"
        );
    }
}

/// Pids of the processes in a node's mount namespace, its holder excepted.
fn node_pids(lab: &Lab, node: &str) -> Vec<i32> {
    let holder = std::fs::read_to_string(lab.dir.join(format!("nodes/{node}/holder.pid")))
        .unwrap()
        .trim()
        .to_string();
    let ns = std::fs::read_link(format!("/proc/{holder}/ns/mnt")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| p.to_string() != holder)
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/ns/mnt"))
                .ok()
                .as_ref()
                == Some(&ns)
        })
        .collect()
}

/// Stops every process of a node (SIGSTOP); their pids.
fn freeze(lab: &Lab, node: &str) -> Vec<i32> {
    let pids = node_pids(lab, node);
    for p in &pids {
        unsafe { libc::kill(*p, libc::SIGSTOP) };
    }
    pids
}

fn thaw(pids: &[i32]) {
    for p in pids {
        unsafe { libc::kill(*p, libc::SIGCONT) };
    }
}

/// Everything a finished run printed.
fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `restore node1` against the lab.
fn restore_args(v: &TestVault, lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "restore".into(),
        "node1".into(),
        "--vault".into(),
        v.path().into(),
        "-i".into(),
        lab.inventory(),
        "--ssh-config".into(),
        lab.ssh_config(),
        "--identity".into(),
        v.key.identity.display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn a_node_frozen_mid_restore_ends_the_restore_within_its_step_deadline() {
    let lab = Lab::up("er-freeze", 131, 1);
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "head -c 150000000 /dev/urandom > /etc/kubernetes/ssl/big",
        ],
    );
    let v = TestVault::new();
    v.backup(
        &lab,
        &[
            "--no-facts",
            "--no-etcd-snapshot",
            "--max-file-size",
            "200M",
        ],
    )
    .expect(0);
    // big is written first, under a temporary name in /etc/kubernetes/ssl
    // while kube's /etc/kubernetes is held under root; ca.key (after it in
    // path order) is still to come.
    lab.exec(
        "node1",
        &[
            "rm",
            "/etc/kubernetes/ssl/big",
            "/etc/kubernetes/ssl/ca.key",
        ],
    );
    let upper = lab.node_root("node1").join("etc/kubernetes/ssl");
    let started = Instant::now();
    let run = sv()
        .args(restore_args(&v, &lab, &["--step-timeout", "10s"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut frozen = Vec::new();
    let mut froze_at = None;
    while started.elapsed() < Duration::from_secs(60) {
        let staging = std::fs::read_dir(&upper)
            .map(|d| {
                d.filter_map(Result::ok).any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".big.sprayvault-")
                })
            })
            .unwrap_or(false);
        if staging {
            frozen = freeze(&lab, "node1");
            froze_at = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let froze_at = froze_at.expect("the restore never started writing big");
    let out = run.wait_with_output().unwrap();
    let after_freeze = froze_at.elapsed();
    let said = said(&out);
    thaw(&frozen);
    println!(
        "restore ended {:.1} s after node1 froze (step deadline 10 s)",
        after_freeze.as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
    // Without the deadline the restore waits for the node forever.
    assert!(
        after_freeze < Duration::from_secs(20),
        "took {after_freeze:?}: {said}"
    );
    assert!(
        said.contains("node node1: restoring /etc/kubernetes/ssl/big did not finish within 10 s"),
        "{said}"
    );
    assert!(said.contains("raise --step-timeout"), "{said}");
    // kube's /etc/kubernetes stays held, root's: the safe side, named.
    assert!(
        said.contains(
            "/etc/kubernetes: left root-owned (held for the restore, recorded kube:root 0755)"
        ),
        "{said}"
    );
    let owner = |p: &str| {
        lab.exec("node1", &["stat", "-c", "%U:%G %a", p])
            .trim()
            .to_string()
    };
    assert_eq!(owner("/etc/kubernetes"), "root:root 755");

    // The next run finishes the restore, gives /etc/kubernetes back to kube
    // and leaves nothing temporary behind.
    let r = sv_run(
        &restore_args(&v, &lab, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .expect(0);
    assert!(r.out.contains("0 errors"), "{}", r.out);
    let left = lab.exec(
        "node1",
        &["ls", "-a", "/etc/kubernetes", "/etc/kubernetes/ssl"],
    );
    assert!(!left.contains("sprayvault"), "{left}");
    assert!(left.contains("big") && left.contains("ca.key"), "{left}");
    assert_eq!(owner("/etc/kubernetes"), "kube:root 755");
}

/// Whether a `scripts/lab --dir LAB CMD` process (`what`: "etcd-stop
/// node2") is running on this machine.
fn lab_command_running(lab: &Lab, what: &str) -> bool {
    let want = format!("{} {what}", lab.dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .any(|c| c.contains("scripts/lab") && c.contains(&want))
}

#[test]
fn a_member_frozen_after_its_stop_ends_the_etcd_restore_at_its_step_deadline() {
    let lab = Lab::up("er-frozen-member", 132, 3);
    lab.etcdctl("node1", &["put", "/registry/keep/k", "v"]);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts"]).expect(0);
    lab.etcdctl("node1", &["put", "/registry/after-backup", "kept"]);

    // node2 lingers after its stop (longer than the step allows), so it can
    // be frozen with etcd stopped and its script still in the stop.
    let mut args = etcd_restore_args(&v, &lab, &["--step-timeout", "10s", "--timeout", "60"]);
    let i = args.iter().position(|a| a == "--stop-command").unwrap();
    args[i + 1] = format!(
        "{}; if [ \"$(uname -n)\" = node2 ]; then sleep 20; fi",
        args[i + 1]
    );
    let started = Instant::now();
    let run = sv()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut frozen = Vec::new();
    let mut froze_at = None;
    while started.elapsed() < Duration::from_secs(90) {
        let s = states(&lab);
        // Freeze node2 only in its `sleep 20`, once its `scripts/lab
        // etcd-stop` has ended: frozen inside it, it would hold the lab's
        // lock, and the other members' `etcd-start` would wait on it.
        if s[0] == "swapped"
            && s[1] == "running"
            && s[2] == "swapped"
            && !lab_command_running(&lab, "etcd-stop node2")
        {
            let status = lab.lab(&["status"]);
            assert!(
                status
                    .lines()
                    .any(|l| l.starts_with("node2") && l.ends_with("etcd down")),
                "{status}"
            );
            frozen = freeze(&lab, "node2");
            froze_at = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let froze_at = froze_at.expect("node2 never lingered after its stop");
    let out = run.wait_with_output().unwrap();
    let ended = froze_at.elapsed();
    let said = said(&out);
    println!(
        "etcd restore ended {:.1} s after node2 froze (step deadline 10 s)",
        ended.as_secs_f64()
    );
    // node1 and node3 went back to their old data and run (2 of 3: quorum)
    // while node2 is still frozen.
    for n in ["node1", "node3"] {
        let value = lab.etcdctl(n, &["get", "--print-value-only", "/registry/after-backup"]);
        assert_eq!(value.trim(), "kept", "{n}: {said}");
    }
    thaw(&frozen);
    let thawed = Instant::now();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(ended < Duration::from_secs(30), "took {ended:?}: {said}");
    assert!(
        said.contains("stopping etcd failed, so nothing was restored")
            && said.contains(
                "node2: did not answer for 10 s (frozen or unreachable), so it was cut off"
            ),
        "{said}"
    );
    assert!(
        said.contains("node1 is back on its old data, etcd was started"),
        "{said}"
    );

    // Thawed, node2's script never gets the go: it goes back to its old data
    // and starts etcd by itself.
    lab.lab(&["wait-healthy", "--timeout", "150"]);
    println!(
        "all three members healthy {:.1} s after node2 was thawed",
        thawed.elapsed().as_secs_f64()
    );
    assert_eq!(
        lab.etcdctl(
            "node2",
            &["get", "--print-value-only", "/registry/after-backup"]
        )
        .trim(),
        "kept"
    );
    // Its stop command, frozen past its bound, was ended by `timeout` once
    // thawed: the script then went back to its old data.
    let s = final_states(&lab);
    assert_eq!(
        s[1], "done old started the stop command did not finish within 10 s",
        "{s:?}"
    );
    for n in ["node1", "node2", "node3"] {
        let left = leftovers(&lab, n);
        assert!(!left.contains("snapshot.db"), "{n}: {left}");
        assert!(!left.contains(".sprayvault-restore-"), "{n}: {left}");
        assert!(!left.contains(".sprayvault-before-"), "{n}: {left}");
    }
}
