//! A local account on a node tries what an attacker would while sprayvault
//! works there, against a real lab laid out as kubespray lays nodes out
//! (sshd, etcd, `/etc/kubernetes` kube's, `/etc/ssl/etcd` etcd's): watching
//! restores and snapshots with inotify, and swapping files for symlinks under
//! a restore. The attacker is the node's `nosudo` account, given write access
//! to a directory the backup recorded as another account's; `kube` and `etcd`
//! acting on their own directories are argued in vault-layout's threat model
//! (they are root-equivalent on a kubespray node), not attacked here.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// tests/fixtures/watch.py running inside a node as an unprivileged account.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

/// One event the watcher reported: `EVENT DIR NAME KIND RESULT`.
#[derive(Debug)]
struct Event {
    dir: String,
    name: String,
    kind: String,
    result: String,
}

impl Watcher {
    fn start(lab: &Lab, node: &str, user: &str, action: &str, dirs: &[&str]) -> Watcher {
        need("python3");
        let script = std::fs::read_to_string(root().join("tests/fixtures/watch.py")).unwrap();
        let mut cmd = lab.cmd();
        cmd.args(["exec", node, "--", "python3", "-c", &script, user, action])
            .args(dirs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("scripts/lab runs");
        let out = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let w = Watcher { child, lines };
        loop {
            let l = w
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("the watcher starts");
            assert!(!l.starts_with("nowatch"), "{l}");
            if l == "ready" {
                return w;
            }
        }
    }

    /// Ends the watcher (after events in flight arrive) and returns its events.
    fn stop(mut self) -> Vec<Event> {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(mut i) = self.child.stdin.take() {
            let _ = i.flush();
        }
        let _ = self.child.wait();
        self.lines
            .try_iter()
            .filter_map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                (w.len() == 5).then(|| Event {
                    dir: w[1].into(),
                    name: w[2].into(),
                    kind: w[3].into(),
                    result: w[4].into(),
                })
            })
            .collect()
    }
}

/// `stat -c FORMAT` of a path inside the node.
fn stat(lab: &Lab, node: &str, format: &str, path: &str) -> String {
    lab.exec(node, &["stat", "-c", format, path])
        .trim()
        .to_string()
}

/// Gives `nosudo` a directory the backup recorded as root's: write access
/// it should not have.
fn give_to_nosudo(lab: &Lab, node: &str, dir: &str) {
    lab.exec(node, &["chown", "nosudo:nosudo", dir]);
}

#[test]
fn restore_temp_files_cannot_be_opened_by_a_watching_user() {
    let lab = Lab::up("nio-watch", 105, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    // Keys to create again: in a directory nosudo was given and in
    // kube's /etc/kubernetes (held under root for the restore).
    lab.exec(
        "node1",
        &[
            "rm",
            "/etc/kubernetes/ssl/ca.key",
            "/etc/kubernetes/ssl/sa.key",
            "/etc/kubernetes/admin.conf",
        ],
    );
    give_to_nosudo(&lab, "node1", "/etc/kubernetes/ssl");
    let w = Watcher::start(
        &lab,
        "node1",
        "nosudo",
        "open",
        &["/etc/kubernetes/ssl", "/etc/kubernetes"],
    );
    let r = v.restore(&lab, "node1", &[]).expect(0);
    let events = w.stop();
    assert!(r.out.contains("0 errors"), "{}", r.out);

    // Nothing temporary ever appears in the directory nosudo can change:
    // files are staged in a root-only directory and only renamed in.
    let in_ssl: Vec<&Event> = events
        .iter()
        .filter(|e| e.dir == "/etc/kubernetes/ssl")
        .collect();
    assert!(
        in_ssl.iter().all(|e| !e.name.contains("sprayvault")),
        "{events:#?}"
    );
    for key in ["ca.key", "sa.key"] {
        let e = in_ssl
            .iter()
            .find(|e| e.name == key)
            .unwrap_or_else(|| panic!("no event for {key}: {events:#?}"));
        assert_eq!(e.result, "EACCES", "{e:?}");
    }
    // In /etc/kubernetes, root-only while held: the temp file of admin.conf
    // and the staging directories; none could be opened or listed.
    let temps: Vec<&Event> = events
        .iter()
        .filter(|e| e.name.contains("sprayvault"))
        .collect();
    assert!(
        temps
            .iter()
            .any(|e| e.name.starts_with(".admin.conf.sprayvault-") && e.kind == "file"),
        "{events:#?}"
    );
    assert!(
        temps
            .iter()
            .any(|e| e.name.starts_with(".sprayvault-stage-") && e.kind == "dir"),
        "{events:#?}"
    );
    assert!(
        temps
            .iter()
            .all(|e| e.result == "EACCES" || e.result == "ENOENT"),
        "{events:#?}"
    );
    assert!(temps.iter().any(|e| e.result == "EACCES"), "{events:#?}");
    let admin = events.iter().find(|e| e.name == "admin.conf").unwrap();
    assert_eq!(admin.result, "EACCES", "{admin:?}");
    // The restored files, and the directories, carry their recorded owner
    // and mode: kube's /etc/kubernetes given back, ssl/ root's again.
    assert_eq!(
        stat(&lab, "node1", "%U:%G %a", "/etc/kubernetes/ssl/ca.key"),
        "root:root 600"
    );
    assert_eq!(
        stat(&lab, "node1", "%U:%G %a", "/etc/kubernetes/admin.conf"),
        "root:root 600"
    );
    assert_eq!(
        stat(&lab, "node1", "%U:%G %a", "/etc/kubernetes"),
        "kube:root 755"
    );
    assert_eq!(
        stat(&lab, "node1", "%U:%G %a", "/etc/kubernetes/ssl"),
        "root:root 755"
    );
    // No staging directory or temp file is left behind.
    let left = lab.exec(
        "node1",
        &["sh", "-c", "ls -a /etc/kubernetes /etc/kubernetes/ssl"],
    );
    assert!(!left.contains("sprayvault"), "{left}");
}

#[test]
fn symlink_swap_during_restore_leaves_the_victim_unchanged() {
    let lab = Lab::up("nio-swap", 106, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "umask 077; echo root-secret > /root/victim; \
             rm /etc/kubernetes/ssl/ca.key; chmod 0600 /etc/kubernetes/ssl/ca.crt",
        ],
    );
    give_to_nosudo(&lab, "node1", "/etc/kubernetes/ssl");
    // nosudo now owns /etc/kubernetes/ssl: it replaces whatever appears
    // there with a symlink to a root-only file, hoping root then chowns or
    // writes it.
    let w = Watcher::start(
        &lab,
        "node1",
        "nosudo",
        "swap:/root/victim",
        &["/etc/kubernetes/ssl"],
    );
    let r = v.restore(&lab, "node1", &["--force"]);
    let events = w.stop();
    assert!(
        events.iter().any(|e| e.result == "swapped"),
        "the attack never ran: {events:#?}\n{}\n{}",
        r.out,
        r.err
    );
    assert_eq!(
        stat(&lab, "node1", "%U:%G %a", "/root/victim"),
        "root:root 600"
    );
    assert_eq!(lab.exec("node1", &["cat", "/root/victim"]), "root-secret\n");
    // The swapped-in link is noticed when the file is read back.
    assert_eq!(r.code, 3, "{}\n{}", r.out, r.err);
    assert!(r.err.contains("/etc/kubernetes/ssl/ca.key"), "{}", r.err);
}

#[test]
fn an_ancestor_owned_by_an_account_the_backup_did_not_record_is_refused() {
    let lab = Lab::up("nio-foreign", 104, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    lab.exec(
        "node1",
        &["sh", "-c", "echo changed > /etc/kubernetes/ssl/ca.crt"],
    );
    // nosudo takes kubespray's /etc/kubernetes (the backup recorded kube):
    // it could swap ssl/ for a link, so nothing is written through it.
    lab.exec("node1", &["chown", "nosudo", "/etc/kubernetes"]);
    let r = v.restore(&lab, "node1", &["--force"]);
    assert_eq!(r.code, 3, "{}\n{}", r.out, r.err);
    assert!(
        r.err.contains(
            "/etc/kubernetes can be changed by an account other than root, above the file's directory"
        ),
        "{}",
        r.err
    );
    assert_eq!(
        lab.exec("node1", &["cat", "/etc/kubernetes/ssl/ca.crt"]),
        "changed\n"
    );
}

#[test]
fn capture_names_are_not_guessable_or_readable() {
    let lab = Lab::up("nio-capture", 107, 1);
    let v = TestVault::new();
    let mut names = Vec::new();
    for _ in 0..2 {
        let w = Watcher::start(&lab, "node1", "nosudo", "open", &["/var/tmp"]);
        let r = v.backup(&lab, &["--no-facts"]).expect(0);
        assert!(r.out.contains("etcd snapshot: "), "{}", r.out);
        let events = w.stop();
        // Only one directory appears, made by mktemp, closed to others.
        assert_eq!(events.len(), 1, "{events:#?}");
        let e = &events[0];
        assert_eq!(e.kind, "dir", "{e:?}");
        assert!(e.result == "EACCES" || e.result == "ENOENT", "{e:?}");
        let random = e
            .name
            .strip_prefix("sprayvault-etcd-snap-")
            .unwrap_or_else(|| panic!("{e:?}"));
        // mktemp's 24 random characters (about 143 bits).
        assert!(random.len() >= 24, "{e:?}");
        names.push(e.name.clone());
    }
    assert_ne!(names[0], names[1]);
    let left = lab.exec("node1", &["ls", "-a", "/var/tmp"]);
    assert!(!left.contains("sprayvault"), "{left}");
}

#[test]
fn etcd_restore_upload_is_private_and_unpredictable() {
    let lab = Lab::up("nio-upload", 108, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts"]).expect(0);
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let id = v.key.identity.display().to_string();
    let labcmd = format!(
        "{} --dir {} ",
        root().join("scripts/lab").display(),
        lab.dir.display()
    );
    let stop = format!("{labcmd}etcd-stop \"$(uname -n)\"");
    let start = format!("{labcmd}etcd-start \"$(uname -n)\"");
    // Another account's look-alike of a running restore's directory (a pid
    // that is alive) neither blocks the restore nor is removed by it.
    lab.exec(
        "node1",
        &[
            "setpriv",
            "--reuid=kube",
            "--regid=kube-cert",
            "--clear-groups",
            "sh",
            "-c",
            "mkdir /var/tmp/sprayvault-etcd-restore-decoy && echo 1 > /var/tmp/sprayvault-etcd-restore-decoy/pid",
        ],
    );
    let w = Watcher::start(&lab, "node1", "nosudo", "open", &["/var/tmp"]);
    let r = sv_run(&[
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
        "--stop-command",
        &stop,
        "--start-command",
        &start,
        "--yes",
    ]);
    let events = w.stop();
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let upload: Vec<&Event> = events
        .iter()
        .filter(|e| e.name.starts_with("sprayvault-etcd-restore-") && !e.name.ends_with("-decoy"))
        .collect();
    assert_eq!(upload.len(), 1, "{events:#?}");
    assert_eq!(upload[0].kind, "dir");
    assert!(upload[0].result == "EACCES" || upload[0].result == "ENOENT");
    assert!(upload[0].name.len() >= "sprayvault-etcd-restore-".len() + 32);
    assert!(
        events.iter().all(|e| e.kind == "dir"),
        "a file was created in /var/tmp itself: {events:#?}"
    );
    let left = lab.exec("node1", &["ls", "-a", "/var/tmp"]);
    let ours: Vec<&str> = left
        .lines()
        .filter(|l| l.contains("sprayvault") && !l.ends_with("-decoy"))
        .collect();
    assert!(ours.is_empty(), "{left}");
    assert!(
        left.contains("sprayvault-etcd-restore-decoy"),
        "the decoy was removed: {left}"
    );
}

/// The tests below share the lab network 127.0.109.0/24, one at a time.
static NET_109: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn net_109() -> std::sync::MutexGuard<'static, ()> {
    NET_109.lock().unwrap_or_else(|e| e.into_inner())
}

fn backup_args<'a>(
    v: &'a TestVault,
    inv: &'a str,
    cfg: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec![
        "backup",
        "--vault",
        v.path(),
        "-i",
        inv,
        "--ssh-config",
        cfg,
        "--no-facts",
    ];
    a.extend_from_slice(extra);
    a
}

/// Recorded paths of a node in the latest backup.
fn recorded(v: &TestVault, node: &str) -> String {
    sv_run(&["show", "--vault", v.path(), "--node", node])
        .expect(0)
        .out
}

#[test]
fn symlink_and_fifo_swap_during_backup_record_nothing_foreign_and_never_hang() {
    let _net = net_109();
    let lab = Lab::up("nio-read", 109, 2);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    // A directory of nosudo's inside an included one; a big file read at
    // the same level keeps sprayvault busy between listing sub/ and opening
    // what it listed there.
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "umask 022; cd /etc/kubernetes/ssl && head -c 20000000 /dev/urandom > big && \
             mkdir sub && chown nosudo:nosudo sub",
        ],
    );
    lab.exec(
        "node1",
        &[
            "setpriv",
            "--reuid=nosudo",
            "--regid=nosudo",
            "--clear-groups",
            "sh",
            "-c",
            "umask 022; cd /etc/kubernetes/ssl && \
             echo bait > sub/link-bait && echo bait > sub/fifo-bait && echo plain > sub/plain",
        ],
    );
    lab.exec(
        "node1",
        &["sh", "-c", "umask 077; echo root-secret > /root/victim"],
    );
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());

    // A symlink to a root-only file swapped in: skipped, never read.
    lab.exec("node1", &["rm", "/etc/kubernetes/ssl/sub/fifo-bait"]);
    let w = Watcher::start(
        &lab,
        "node1",
        "nosudo",
        "after-list:/root/victim",
        &["/etc/kubernetes/ssl/sub"],
    );
    let r = sv_run(&backup_args(&v, &inv, &cfg, &["--no-etcd-snapshot"]));
    let events = w.stop();
    assert!(
        events
            .iter()
            .any(|e| e.name == "link-bait" && e.result == "swapped"),
        "{events:#?}"
    );
    assert_eq!(r.code, 3, "{}\n{}", r.out, r.err);
    let said = format!("{}{}", r.out, r.err);
    assert!(
        said.contains("/etc/kubernetes/ssl/sub/link-bait")
            && said.contains("changed between listing and opening"),
        "{said}"
    );
    let shown = recorded(&v, "node1");
    assert!(shown.contains("/etc/kubernetes/ssl/sub/plain"), "{shown}");
    assert!(!shown.contains("link-bait"), "{shown}");

    // A FIFO swapped in: its open, stuck in the node's SFTP server, is given
    // up after the stall time; the connection is made again and the rest of
    // the node read, well before the node's deadline.
    lab.exec(
        "node1",
        &[
            "setpriv",
            "--reuid=nosudo",
            "--regid=nosudo",
            "--clear-groups",
            "sh",
            "-c",
            "rm -f /etc/kubernetes/ssl/sub/link-bait; echo bait > /etc/kubernetes/ssl/sub/fifo-bait; \
             echo after > /etc/kubernetes/ssl/sub/zz-after",
        ],
    );
    let w = Watcher::start(
        &lab,
        "node1",
        "nosudo",
        "after-list:/root/victim",
        &["/etc/kubernetes/ssl/sub"],
    );
    let started = std::time::Instant::now();
    let r = sv_run(&backup_args(
        &v,
        &inv,
        &cfg,
        &[
            "--no-etcd-snapshot",
            "--stall-timeout",
            "3",
            "--node-timeout",
            "300",
        ],
    ));
    let took = started.elapsed();
    let events = w.stop();
    assert!(
        events
            .iter()
            .any(|e| e.name == "fifo-bait" && e.result == "swapped"),
        "{events:#?}"
    );
    // Waiting for the node's deadline would take 300 s.
    eprintln!("the backup with a FIFO swapped in took {took:?}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(r.code, 3, "{}\n{}", r.out, r.err);
    let said = format!("{}{}", r.out, r.err);
    assert!(
        said.contains("/etc/kubernetes/ssl/sub/fifo-bait")
            && said.contains("did not open within 3 s"),
        "{said}"
    );
    assert!(!said.contains("no end within"), "{said}");
    let shown = recorded(&v, "node1");
    assert!(!shown.contains("fifo-bait"), "{shown}");
    // Read after the FIFO, on the new connection.
    assert!(
        shown.contains("/etc/kubernetes/ssl/sub/zz-after"),
        "{shown}"
    );
    assert!(shown.contains("/etc/kubernetes/ssl/big"), "{shown}");
    let victim = lab.exec("node1", &["stat", "-c", "%U %a", "/root/victim"]);
    assert_eq!(victim.trim(), "root 600");
    // The stuck server stays on the node until its open returns; a writer
    // lets it go.
    assert!(
        node_pids(&lab, "node1")
            .iter()
            .any(|p| comm(*p) == "sftp-server"),
        "the stuck sftp-server is gone already"
    );
    lab.exec(
        "node1",
        &[
            "timeout",
            "10",
            "sh",
            "-c",
            // The released server may close the FIFO before the write lands.
            "trap '' PIPE; echo > /etc/kubernetes/ssl/sub/fifo-bait || true",
        ],
    );
}

/// Pids of the processes in a node's mount namespace (its sshd, SFTP
/// servers, etcd...), its namespace holder excepted.
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

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// ssh processes started with this lab's ssh config.
fn ssh_of(lab: &Lab) -> Vec<String> {
    let cfg = lab.ssh_config();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|d| {
            let pid = d.ok()?.file_name().to_str()?.parse::<i32>().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (comm(pid) == "ssh" && cmd.contains(&cfg)).then_some(cmd)
        })
        .collect()
}

#[test]
fn a_node_frozen_mid_backup_ends_the_run_within_its_deadline() {
    let _net = net_109();
    let lab = Lab::up("nio-freeze", 109, 2);
    let v = TestVault::new();
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "head -c 60000000 /dev/urandom > /etc/kubernetes/ssl/big",
        ],
    );
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let started = std::time::Instant::now();
    let run = sv()
        .args(backup_args(
            &v,
            &inv,
            &cfg,
            &["--no-etcd-snapshot", "--node-timeout", "10"],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Freeze every process of node1 once its SFTP server is serving.
    let mut frozen = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        if node_pids(&lab, "node1")
            .iter()
            .any(|p| comm(*p) == "sftp-server")
        {
            std::thread::sleep(Duration::from_millis(200));
            for p in node_pids(&lab, "node1") {
                unsafe { libc::kill(p, libc::SIGSTOP) };
                frozen.push(p);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!frozen.is_empty(), "node1's SFTP server never started");
    let out = run.wait_with_output().unwrap();
    let took = started.elapsed();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
    // The deadline is 10 s; the rest is committing node2 on a busy machine.
    // Without the deadline the run waits for the node forever.
    assert!(took < Duration::from_secs(45), "took {took:?}: {said}");
    assert!(said.contains("no end within 10 s"), "{said}");
    assert!(said.contains("node1"), "{said}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ssh_of(&lab), Vec::<String>::new());
    for p in frozen {
        unsafe { libc::kill(p, libc::SIGCONT) };
    }
    // The lock was released: the next run works.
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
}

#[test]
fn a_huge_sparse_file_is_refused_by_name_and_size_in_bounded_memory() {
    let _net = net_109();
    let lab = Lab::up("nio-sparse", 109, 1);
    let v = TestVault::new();
    lab.exec(
        "node1",
        &["truncate", "-s", "20G", "/etc/kubernetes/ssl/huge"],
    );
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let mut core_limit = None;
    let (out, peak_kib) = run_peak_rss(
        sv().args(backup_args(&v, &inv, &cfg, &["--no-etcd-snapshot"])),
        |pid| {
            // The latest reading: the first ones may predate the exec.
            let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"));
            if let Some(now) = limits.ok().and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max core file size"))
                    .map(|l| {
                        l.split_whitespace()
                            .skip(4)
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
            }) {
                core_limit = Some(now);
            }
        },
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("/etc/kubernetes/ssl/huge")
            && said.contains("21474836480 bytes, above the per-file limit"),
        "{said}"
    );
    assert!(peak_kib > 0);
    // No core dump can carry decrypted keys out of the process.
    assert_eq!(core_limit.as_deref(), Some("0 0"));
    assert!(peak_kib < 128 << 10, "peak RSS {peak_kib} KiB");
    println!("peak RSS {peak_kib} KiB");
}

/// The shipped sudo rule for the backup account on an etcd member
/// (contrib/ansible/templates/sudoers.j2): the read-only SFTP server and the
/// snapshot helper, without arguments; no shell.
const BACKUP_SUDOERS: &str = "nosudo ALL=(root) NOPASSWD: /usr/lib/openssh/sftp-server -R -u 077, /usr/local/libexec/sprayvault/etcd-snapshot \"\"\n";

#[test]
fn a_backup_account_allowed_only_the_sftp_server_and_the_snapshot_helper_backs_up() {
    let _net = net_109();
    let lab = Lab::up("nio-sudoers", 109, 1);
    let template =
        std::fs::read_to_string(root().join("contrib/ansible/templates/sudoers.j2")).unwrap();
    assert!(
        template.contains(&BACKUP_SUDOERS.replace("nosudo", "{{ sprayvault_node_user }}")),
        "the test's rule is not the shipped one:\n{template}"
    );
    assert!(!template.contains("sh -c"), "{template}");
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            &format!(
                "printf '%s' '{BACKUP_SUDOERS}' > /etc/sudoers.d/sprayvault-backup && chmod 0440 /etc/sudoers.d/sprayvault-backup && visudo -cf /etc/sudoers.d/sprayvault-backup"
            ),
        ],
    );
    // nosudo may run nothing else as root: no shell, no helper arguments.
    let as_nosudo = |args: &[&str]| {
        let mut a = vec![
            "exec",
            "node1",
            "--",
            "setpriv",
            "--reuid=nosudo",
            "--regid=nosudo",
            "--clear-groups",
            "sudo",
            "-n",
        ];
        a.extend_from_slice(args);
        run(lab.cmd().args(&a))
    };
    assert!(!as_nosudo(&["true"]).status.success());
    assert!(!as_nosudo(&["sh", "-c", "id"]).status.success());
    assert!(
        !as_nosudo(&["/usr/local/libexec/sprayvault/etcd-snapshot", "x"])
            .status
            .success()
    );
    let inv = lab.dir.join("inventory-nosudo.ini");
    let text = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "ansible_user=root",
        "ansible_user=nosudo ansible_become=true",
    );
    std::fs::write(&inv, text).unwrap();
    let v = TestVault::new();
    let cfg = lab.ssh_config();
    let r = sv_run(&backup_args(&v, inv.to_str().unwrap(), &cfg, &[])).expect(0);
    assert!(r.out.contains("1/1 nodes"), "{}", r.out);
    assert!(r.out.contains("etcd snapshot: "), "{}", r.out);
    let shown = recorded(&v, "node1");
    assert!(shown.contains("/etc/kubernetes/ssl/ca.key"), "{shown}");
    assert!(shown.contains("/etc/ssl/etcd/ssl/ca-key.pem"), "{shown}");
    // The snapshot restores: its index names the member from etcd.env.
    let ls = sv_run(&["etcd", "ls", "--vault", v.path(), "--json"]).expect(0);
    assert!(ls.out.contains("\"member\": \"etcd1\""), "{}", ls.out);
    // Nothing of the run is left in /var/tmp on the node.
    let left = lab.exec(
        "node1",
        &["sh", "-c", "ls /var/tmp | grep sprayvault || true"],
    );
    assert!(left.trim().is_empty(), "{left}");
}

/// A member without the helper: the backup names it and what to install.
#[test]
fn a_member_without_the_snapshot_helper_is_named_with_the_fix() {
    let _net = net_109();
    let lab = Lab::up("nio-nohelper", 109, 1);
    // Hidden on node1 only (its own mount namespace).
    lab.exec(
        "node1",
        &[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m,mode=0755",
            "tmpfs",
            "/usr/local/libexec/sprayvault",
        ],
    );
    let v = TestVault::new();
    let r = v.backup(&lab, &[]).expect(3);
    let said = format!("{}{}", r.out, r.err);
    assert!(
        said.contains(
            "the etcd snapshot helper /usr/local/libexec/sprayvault/etcd-snapshot did not run"
        ) && said.contains("contrib/ansible/install.yml"),
        "{said}"
    );
}

#[test]
fn a_cut_off_restore_leaves_nothing_the_next_run_does_not_remove() {
    let _net = net_109();
    let lab = Lab::up("nio-leftover", 109, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    // What a restore killed between creating and renaming leaves: a
    // temporary file beside its target and a staging directory.
    let n = "5e1f0c2a9b8d7e6f5e1f0c2a9b8d7e6f";
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            &format!(
                "umask 077; cp /etc/kubernetes/admin.conf /etc/kubernetes/.admin.conf.sprayvault-{n}; \
                 mkdir /etc/kubernetes/.sprayvault-stage-{n}; cp /etc/kubernetes/ssl/ca.key /etc/kubernetes/.sprayvault-stage-{n}/ca.key; \
                 rm /etc/kubernetes/admin.conf /etc/kubernetes/ssl/ca.key"
            ),
        ],
    );
    let r = v.restore(&lab, "node1", &[]).expect(0);
    assert!(r.out.contains("0 errors"), "{}", r.out);
    let left = lab.exec(
        "node1",
        &["ls", "-a", "/etc/kubernetes", "/etc/kubernetes/ssl"],
    );
    assert!(!left.contains("sprayvault"), "{left}");
    assert!(
        left.contains("admin.conf") && left.contains("ca.key"),
        "{left}"
    );
}

/// Owner names, modes, sizes, link targets and content hashes of everything
/// kubespray keeps under /etc/kubernetes and /etc/ssl/etcd, as the node sees
/// them.
fn kubespray_state(lab: &Lab, node: &str) -> String {
    lab.exec(
        node,
        &[
            "sh",
            "-c",
            "find /etc/kubernetes /etc/ssl/etcd -printf '%p %y %u:%g %m %s %l\\n' | sort; \
             find /etc/kubernetes /etc/ssl/etcd -type f -exec sha256sum {} + | sort",
        ],
    )
}

#[test]
fn a_live_kubespray_node_with_changed_certificates_in_both_trees_is_restored() {
    let lab = Lab::up("nio-live", 103, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    let before = kubespray_state(&lab, "node1");
    assert!(
        before.contains("/etc/kubernetes d kube:root 755")
            && before.contains("/etc/kubernetes/manifests d kube:root 755")
            && before.contains("/etc/ssl/etcd d etcd:root 700")
            && before.contains("/etc/ssl/etcd/ssl d etcd:root 700"),
        "not kubespray's layout:\n{before}"
    );
    // A bad certificate change on a running node, in both trees, and a
    // static pod manifest edited.
    lab.exec(
        "node1",
        &[
            "sh",
            "-c",
            "echo bad > /etc/kubernetes/ssl/apiserver.crt; \
             echo bad > /etc/ssl/etcd/ssl/node-node1.pem; chmod 0600 /etc/ssl/etcd/ssl/ca.pem; \
             echo '# edited' >> /etc/kubernetes/manifests/kube-apiserver.yaml",
        ],
    );
    let refused = v.restore(&lab, "node1", &[]).expect(7);
    assert!(refused.err.contains("--force"), "{}", refused.err);
    let r = v.restore(&lab, "node1", &["--force"]).expect(0);
    assert!(
        r.out.contains("3 replaced, 1 updated") && r.out.contains("0 errors"),
        "{}",
        r.out
    );
    assert_eq!(kubespray_state(&lab, "node1"), before);
    // etcd still serves with the certificates put back.
    let health = lab.lab(&["wait-healthy", "--timeout", "30"]);
    assert!(health.contains("all 1 etcd members healthy"), "{health}");
}

#[test]
fn a_wiped_node_is_restored_bit_for_bit_with_kubesprays_owners_and_modes() {
    let _net = net_109();
    let lab = Lab::up("nio-wipe", 109, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    let before = kubespray_state(&lab, "node1");
    lab.lab(&["wipe", "node1"]);
    assert_ne!(kubespray_state(&lab, "node1"), before);
    let r = v.restore(&lab, "node1", &[]).expect(0);
    assert!(r.out.contains("0 errors"), "{}", r.out);
    assert_eq!(kubespray_state(&lab, "node1"), before);
}
