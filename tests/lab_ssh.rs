//! How a backup uses ssh, against a real lab: one ssh process and one
//! connection per node (the etcd snapshot member one more, for the command
//! that takes the snapshot), never a ControlMaster, and nothing left running
//! when the run is killed.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// An `ssh` on PATH that logs its arguments, one line per process, then
/// execs the real one.
fn counting_ssh(dir: &Path, log: &Path) -> String {
    need("ssh");
    let real = ok(Command::new("sh").args(["-c", "command -v ssh"]))
        .trim()
        .to_string();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("ssh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{real}' \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    ok(Command::new("chmod").arg("0755").arg(&wrapper));
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// ssh processes per address in the log: the word after `--`.
fn processes(log: &Path) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let mut words = line.split(' ').skip_while(|w| *w != "--").skip(1);
        if let Some(addr) = words.next() {
            *n.entry(addr.to_string()).or_insert(0) += 1;
        }
    }
    n
}

/// Connections each node's sshd has accepted so far.
fn connections(lab: &Lab) -> BTreeMap<String, usize> {
    (1..=lab.nodes)
        .map(|i| {
            let log = lab.dir.join(format!("nodes/node{i}/sshd.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (
                format!("node{i}"),
                text.matches("Accepted publickey").count(),
            )
        })
        .collect()
}

fn backup_with_path(v: &TestVault, lab: &Lab, path: &str, extra: &[&str]) -> Sv {
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let mut args = vec![
        "backup",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--no-facts",
    ];
    args.extend_from_slice(extra);
    let out = run(sv().args(&args).env("PATH", path));
    Sv {
        out: String::from_utf8_lossy(&out.stdout).to_string(),
        err: String::from_utf8_lossy(&out.stderr).to_string(),
        code: out.status.code().unwrap_or(-1),
    }
}

#[test]
fn backup_uses_one_ssh_process_and_one_connection_per_node() {
    let lab = Lab::up("spd-count", 63, 4);
    let v = TestVault::new();
    let log = v.tmp.path().join("ssh.log");
    let path = counting_ssh(v.tmp.path(), &log);
    let addr = |i: usize| format!("127.0.63.{}", 10 + i);

    for (night, extra) in [
        ("first", &[][..]),
        ("unchanged", &[][..]),
        ("no snapshot", &["--no-etcd-snapshot"][..]),
    ] {
        let _ = std::fs::remove_file(&log);
        let before = connections(&lab);
        let r = backup_with_path(&v, &lab, &path, extra).expect(0);
        assert!(r.out.contains("4/4 nodes"), "{night}: {}", r.out);
        let snapshot = extra.is_empty();
        assert_eq!(r.out.contains("etcd snapshot: "), snapshot, "{}", r.out);
        // The snapshot is taken from the first member, node1: one command.
        let want = |i: usize| if i == 1 && snapshot { 2 } else { 1 };
        let procs = processes(&log);
        let expected: BTreeMap<String, usize> = (1..=4).map(|i| (addr(i), want(i))).collect();
        assert_eq!(procs, expected, "{night}: ssh processes per node");
        let after = connections(&lab);
        for i in 1..=4 {
            let node = format!("node{i}");
            assert_eq!(
                after[&node] - before[&node],
                want(i),
                "{night}: connections {node}'s sshd accepted"
            );
        }
        let text = std::fs::read_to_string(&log).unwrap();
        for line in text.lines() {
            assert!(
                line.contains("-o ControlMaster=no -o ControlPath=none"),
                "{line}"
            );
            assert!(line.contains("-o ServerAliveInterval="), "{line}");
        }
    }
    v.fsck();
}

/// The pid of the process listening on `addr`:22 (`ss -ltnpH`).
fn listener(addr: &str) -> i32 {
    let out = ok(Command::new("ss").args(["-ltnpH", "sport = :22"]));
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(&format!("{addr}:22")))
        .unwrap_or_else(|| panic!("nothing listens on {addr}:22:\n{out}"));
    let pid = line.split("pid=").nth(1).expect("ss shows the pid");
    pid.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `ssh` processes (by pid) whose command line mentions `needle`, and their parents.
fn ssh_processes(needle: &str) -> Vec<(i32, i32)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let is_ssh = args
            .first()
            .is_some_and(|a| a == "ssh" || a.ends_with("/ssh"));
        if !is_ssh || !args.iter().any(|a| a.contains(needle)) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        found.push((pid, ppid));
    }
    found
}

#[test]
fn sigkilled_backup_leaves_no_ssh_process_behind() {
    let lab = Lab::up("spd-kill", 64, 3);
    let v = TestVault::new();
    // node2's sshd frozen: its ssh waits in the login for as long as the
    // connect timeout allows (60 s), far beyond the 5 s looked at below.
    let frozen = listener("127.0.64.12");
    ok(Command::new("kill").args(["-STOP", &frozen.to_string()]));
    let cfg = lab.ssh_config();
    let mut child = sv()
        .args([
            "backup",
            "--vault",
            v.path(),
            "-i",
            &lab.inventory(),
            "--ssh-config",
            &cfg,
            "--no-facts",
            "--connect-timeout",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sprayvault starts");
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ssh_processes(&cfg).iter().any(|(_, ppid)| *ppid == pid) {
        assert!(
            Instant::now() < deadline,
            "no ssh process of the backup seen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<i32> = ssh_processes(&cfg)
        .into_iter()
        .filter(|(_, ppid)| *ppid == pid)
        .map(|(p, _)| p)
        .collect();
    assert!(!before.is_empty(), "the frozen node's ssh is running");
    ok(Command::new("kill").args(["-KILL", &pid.to_string()]));
    let _ = child.wait();
    std::thread::sleep(Duration::from_secs(5));
    let left = ssh_processes(&cfg);
    ok(Command::new("kill").args(["-CONT", &frozen.to_string()]));
    assert!(
        left.is_empty(),
        "ssh processes of the killed backup still running 5 s later: {left:?} (of {before:?})"
    );
}
