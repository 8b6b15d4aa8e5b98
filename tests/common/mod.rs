//! Shared helpers for the integration tests: a real lab (sshd + etcd in
//! namespaces, see scripts/lab), the real binary, and the real git/age CLIs.
//! A missing tool is a test failure that says how to install it.
#![allow(dead_code)]

pub mod golden;
pub mod kubespray;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command, failing the test with its output if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}; run scripts/install-deps"))
}

pub fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The README and every chapter of the manual (`docs/src`), as one text.
pub fn manual_text() -> String {
    let mut text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    for c in chapters {
        text.push_str(&std::fs::read_to_string(c).unwrap());
    }
    text
}

pub fn need(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run scripts/install-deps (tests never skip a missing tool)"
    );
}

/// The sprayvault binary under test.
pub fn sv() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sprayvault"));
    c.env_remove("SPRAYVAULT_VAULT");
    // Tests keep their pins out of $HOME.
    if std::env::var_os("SPRAYVAULT_PINS").is_none() {
        c.env(
            "SPRAYVAULT_PINS",
            std::env::temp_dir().join(format!("sprayvault-test-pins-{}", std::process::id())),
        );
    }
    c
}

pub struct Sv {
    pub out: String,
    pub err: String,
    pub code: i32,
}

pub fn sv_run(args: &[&str]) -> Sv {
    let out = run(sv().args(args));
    Sv {
        out: String::from_utf8_lossy(&out.stdout).to_string(),
        err: String::from_utf8_lossy(&out.stderr).to_string(),
        code: out.status.code().unwrap_or(-1),
    }
}

impl Sv {
    pub fn expect(self, code: i32) -> Sv {
        assert_eq!(
            self.code, code,
            "exit {} (want {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.out, self.err
        );
        self
    }
}

/// An age key pair in a temporary directory.
pub struct AgeKey {
    pub identity: PathBuf,
    pub recipient: String,
}

pub fn age_key(dir: &Path, name: &str) -> AgeKey {
    use age::secrecy::ExposeSecret;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = age::x25519::Identity::generate();
    let identity = dir.join(format!("{name}.txt"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&identity)
        .expect("a new identity file");
    writeln!(f, "{}", key.to_string().expose_secret()).expect("identity written");
    AgeKey {
        identity,
        recipient: key.to_public().to_string(),
    }
}

/// The etcd a lab runs: Debian's 3.4 in /usr/bin, or Debian trixie's 3.5.x
/// (whose etcdutl bumps the revision on restore) in each node's
/// own /usr/local/bin as kubespray installs it (`scripts/lab up --etcd-version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtcdVersion {
    V34,
    V35,
}

impl EtcdVersion {
    pub const ALL: [EtcdVersion; 2] = [EtcdVersion::V34, EtcdVersion::V35];

    pub fn as_str(self) -> &'static str {
        match self {
            EtcdVersion::V34 => "3.4",
            EtcdVersion::V35 => "3.5",
        }
    }

    /// Where scripts/install-deps puts etcd 3.5 (etcd, etcdctl, etcdutl).
    pub fn etcd35_dir() -> PathBuf {
        std::env::var_os("SPRAYVAULT_ETCD35")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/sprayvault/etcd-debian-3.5"))
    }

    /// The host-side directory holding this version's etcd, etcdctl (and
    /// etcdutl for 3.5): put it first on PATH to use that version locally.
    pub fn bin_dir(self) -> PathBuf {
        match self {
            EtcdVersion::V34 => PathBuf::from("/usr/bin"),
            EtcdVersion::V35 => EtcdVersion::etcd35_dir(),
        }
    }
}

/// A running lab; `down` on drop.
pub struct Lab {
    pub dir: PathBuf,
    pub nodes: usize,
    pub etcd: EtcdVersion,
}

impl Lab {
    /// Starts a lab of `nodes` nodes on `127.0.<net>.0/24` in a directory of
    /// its own, with Debian's etcd 3.4.
    pub fn up(name: &str, net: u8, nodes: usize) -> Lab {
        Lab::up_with(name, net, nodes, EtcdVersion::V34)
    }

    /// As `up`, with the given etcd version (3.5: etcd, etcdctl and etcdutl
    /// in the nodes' /usr/local/bin, as kubespray installs them).
    pub fn up_with(name: &str, net: u8, nodes: usize, etcd: EtcdVersion) -> Lab {
        Lab::up_args(name, net, nodes, etcd, &[])
    }

    /// As `up_with`, with more options of `scripts/lab up` (e.g.
    /// `["--etcd-cert-dir", "/etc/etcd/ssl"]`).
    pub fn up_args(name: &str, net: u8, nodes: usize, etcd: EtcdVersion, extra: &[&str]) -> Lab {
        for t in [
            "sshd", "etcd", "etcdctl", "unshare", "nsenter", "openssl", "age", "git",
        ] {
            need(t);
        }
        if etcd == EtcdVersion::V35 {
            for b in ["etcd", "etcdctl", "etcdutl"] {
                let p = EtcdVersion::etcd35_dir().join(b);
                assert!(
                    p.is_file(),
                    "{} is missing: run scripts/install-deps (tests never skip a missing tool)",
                    p.display()
                );
            }
        }
        let dir = PathBuf::from(format!("/tmp/sprayvault-test-{name}"));
        let lab = Lab { dir, nodes, etcd };
        ok(lab
            .cmd()
            .args([
                "up",
                "--nodes",
                &nodes.to_string(),
                "--net",
                &format!("127.0.{net}"),
                "--etcd-version",
                etcd.as_str(),
            ])
            .args(extra));
        lab
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(root().join("scripts/lab"));
        c.arg("--dir").arg(&self.dir);
        c
    }

    pub fn lab(&self, args: &[&str]) -> String {
        ok(self.cmd().args(args))
    }

    pub fn inventory(&self) -> String {
        self.dir.join("inventory.ini").display().to_string()
    }

    pub fn ssh_config(&self) -> String {
        self.dir.join("ssh_config").display().to_string()
    }

    /// Where the host keeps a node's files: `node_root("node1").join("etc/etcd.env")`.
    pub fn node_root(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node).join("root")
    }

    /// `etcdctl` with the node's kubespray admin certificate (`lab etcdctl`).
    /// A request etcd times out (a loaded 2-core machine running several
    /// labs makes raft miss its deadlines) is tried again, up to 3 times.
    pub fn etcdctl(&self, node: &str, args: &[&str]) -> String {
        let mut a = vec!["etcdctl", node];
        a.extend_from_slice(args);
        for _ in 0..2 {
            let out = run(self.cmd().args(&a));
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).to_string();
            }
            let err = String::from_utf8_lossy(&out.stderr);
            if !["timed out", "deadline exceeded", "Unavailable"]
                .iter()
                .any(|t| err.contains(t))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        self.lab(&a)
    }

    /// Runs a command inside the node.
    pub fn exec(&self, node: &str, cmd: &[&str]) -> String {
        let mut args = vec!["exec", node, "--"];
        args.extend_from_slice(cmd);
        self.lab(&args)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.cmd().arg("down").output();
    }
}

/// A vault in a fresh temporary directory, with one age recipient.
pub struct TestVault {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub key: AgeKey,
}

impl TestVault {
    pub fn new() -> TestVault {
        let tmp = tempfile::tempdir().expect("temp dir");
        let key = age_key(tmp.path(), "operator");
        let dir = tmp.path().join("vault");
        TestVault::init(tmp, dir, key)
    }

    /// A vault made at `dir` (which need not be in the test's temporary
    /// directory), encrypted to `key`.
    pub fn at(dir: PathBuf, key: AgeKey) -> TestVault {
        TestVault::init(tempfile::tempdir().expect("temp dir"), dir, key)
    }

    fn init(tmp: tempfile::TempDir, dir: PathBuf, key: AgeKey) -> TestVault {
        sv_run(&[
            "init",
            "--vault",
            dir.to_str().unwrap(),
            "--recipient",
            &key.recipient,
        ])
        .expect(0);
        let v = TestVault { tmp, dir, key };
        // The operator's machine trusts the signer `init` printed.
        sv_run(&["trust", "--pin", &v.signer()]).expect(0);
        v
    }

    /// The vault's signer, as the backup host prints it.
    pub fn signer(&self) -> String {
        let out = sv_run(&["trust", "--vault", self.path(), "--backup-host", "--json"]).expect(0);
        let v: serde_json::Value = serde_json::from_str(&out.out).expect("trust --json");
        v["signer"].as_str().expect("a signer").to_string()
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn git(&self, args: &[&str]) -> String {
        ok(Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(args))
    }

    /// Every blob id in the repository.
    pub fn blobs(&self) -> std::collections::BTreeSet<String> {
        self.git(&[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype) %(objectname)",
        ])
        .lines()
        .filter_map(|l| l.strip_prefix("blob ").map(str::to_string))
        .collect()
    }

    pub fn backup(&self, lab: &Lab, extra: &[&str]) -> Sv {
        let (inv, cfg) = (lab.inventory(), lab.ssh_config());
        let mut args = vec![
            "backup",
            "--vault",
            self.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
        ];
        args.extend_from_slice(extra);
        sv_run(&args)
    }

    /// `sprayvault restore NODE` from this vault onto the lab, with its key.
    pub fn restore(&self, lab: &Lab, node: &str, extra: &[&str]) -> Sv {
        let (inv, cfg) = (lab.inventory(), lab.ssh_config());
        let id = self.key.identity.display().to_string();
        let mut args = vec![
            "restore",
            node,
            "--vault",
            self.path(),
            "-i",
            &inv,
            "--ssh-config",
            &cfg,
            "--identity",
            &id,
        ];
        args.extend_from_slice(extra);
        sv_run(&args)
    }

    pub fn fsck(&self) {
        let out = run(Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["fsck", "--full", "--strict"]));
        assert!(
            out.status.success(),
            "git fsck failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The Debian packages built by scripts/package: (sprayvault, -dbgsym).
pub fn package() -> (PathBuf, PathBuf) {
    for t in ["dpkg-deb", "objcopy", "readelf", "gzip"] {
        need(t);
    }
    let out = run(&mut Command::new(root().join("scripts/package")));
    assert!(
        out.status.success(),
        "scripts/package failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(paths.len(), 2, "scripts/package printed {paths:?}");
    (paths[0].clone(), paths[1].clone())
}

/// Removes what installing the package (and the playbook) put on this
/// machine: the packages, the timers' enablement, the account, its files.
pub fn uninstall_package() {
    let _ = Command::new("dpkg")
        .args(["--purge", "sprayvault-dbgsym", "sprayvault"])
        .output();
    for t in ["backup", "verify", "prune"] {
        let _ = std::fs::remove_file(format!(
            "/etc/systemd/system/timers.target.wants/sprayvault-{t}.timer"
        ));
    }
    let _ = Command::new("userdel").arg("sprayvault").output();
    let _ = std::fs::remove_dir_all("/etc/sprayvault");
    let _ = std::fs::remove_dir_all("/var/lib/sprayvault");
}

/// Runs `cmd` to its end with its output captured, reading its peak resident
/// set size (VmHWM) every 5 ms; `poll` sees the process id at each reading.
/// Returns the output and the peak in KiB.
pub fn run_peak_rss(cmd: &mut Command, mut poll: impl FnMut(u32)) -> (Output, u64) {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let pid = child.id();
    let status = format!("/proc/{pid}/status");
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let mut peak_kib = 0u64;
    while !waiter.is_finished() {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        poll(pid);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (waiter.join().unwrap(), peak_kib)
}
