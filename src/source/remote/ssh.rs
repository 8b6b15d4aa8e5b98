//! Starting the system OpenSSH client: one `ssh` process per channel, each
//! with its own connection (no ControlMaster, so nothing outlives the run),
//! host keys checked strictly, keepalives so a dead node ends the channel
//! instead of hanging the run, and the user's ssh config honoured for
//! everything else (ProxyJump, agent, ciphers).
//!
//! The SFTP channel is started with one command line that finds the node's
//! `sftp-server`, decides whether it needs `sudo -n`, announces that decision
//! on one header line and execs the server: the uid and the need for sudo
//! cost no round trip and no process of their own.

use super::super::{SshOptions, Target};
use std::ffi::OsString;
use std::time::Duration;

/// Where distributions keep OpenSSH's SFTP server (Debian, RHEL, Arch, Alpine).
const SFTP_SERVERS: &str = "/usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server";

/// The SFTP server's arguments: umask 077, so everything it creates (files
/// opened for writing, directories) is private to its owner from the start.
const SFTP_ARGS: &str = "-u 077";

/// The same for reading only (backups): the server refuses every request
/// that would change the node, so a sudoers rule can allow exactly
/// `sftp-server -R -u 077` to the backup account.
const SFTP_ARGS_READ_ONLY: &str = "-R -u 077";

/// The first word of the header line the SFTP command line prints.
const HEADER: &str = "sprayvault-sftp";

/// Printed on stderr when no SFTP server exists on the node.
pub const NO_SERVER: &str = "no sftp-server found";

/// Keepalive probes a silent node may miss before ssh gives up on it.
const ALIVE_COUNT: u32 = 3;

/// The arguments of `ssh` up to and including the host: options for one
/// connection of its own to `target`, then `--` and the address.
pub fn args(target: &Target, opts: &SshOptions) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    if let Some(f) = &opts.config_file {
        a.push("-F".into());
        a.push(f.into());
    }
    let timeout = opts.connect_timeout.as_secs().max(1);
    // Command-line options take precedence over any config file, so a
    // `ControlMaster auto` there cannot route this run through a master.
    for o in [
        "BatchMode=yes".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
        "ControlMaster=no".to_string(),
        "ControlPath=none".to_string(),
        "ClearAllForwardings=yes".to_string(),
        format!("ConnectTimeout={timeout}"),
        format!(
            "ServerAliveInterval={}",
            alive_interval(opts.connect_timeout)
        ),
        format!("ServerAliveCountMax={ALIVE_COUNT}"),
    ] {
        a.push("-o".into());
        a.push(o.into());
    }
    if let Some(p) = target.port {
        a.push("-p".into());
        a.push(p.to_string().into());
    }
    if let Some(u) = &target.user {
        a.push("-l".into());
        a.push(u.into());
    }
    if let Some(k) = &target.key_file {
        a.push("-i".into());
        a.push(k.into());
    }
    a.extend(["-T".into(), "-e".into(), "none".into(), "--".into()]);
    a.push(target.address.clone().into());
    a
}

/// Seconds between keepalives: a node silent for about the connect timeout
/// (never less than 15 s, so a busy node is not cut off) ends the channel.
fn alive_interval(connect_timeout: Duration) -> u64 {
    (connect_timeout.as_secs() / u64::from(ALIVE_COUNT)).max(5)
}

/// The command line that starts the SFTP server on the node, as root through
/// `sudo -n` when `become_` is set and the user is not root. Before the
/// server speaks, it prints `sprayvault-sftp sudo=0|1 uid=N`.
pub fn sftp_command(become_: bool, read_only: bool) -> String {
    let server_args = if read_only {
        SFTP_ARGS_READ_ONLY
    } else {
        SFTP_ARGS
    };
    let start = if become_ {
        format!(
            "u=$(id -u); if [ \"$u\" = 0 ]; then echo \"{HEADER} sudo=0 uid=$u\"; exec \"$p\" {server_args}; fi; \
             echo \"{HEADER} sudo=1 uid=$u\"; exec sudo -n \"$p\" {server_args}"
        )
    } else {
        format!("echo \"{HEADER} sudo=0\"; exec \"$p\" {server_args}")
    };
    let script = format!(
        "for p in {SFTP_SERVERS}; do if [ -x \"$p\" ]; then {start}; fi; done; echo '{NO_SERVER}' >&2; exit 127"
    );
    format!("sh -c {}", super::shell_quote(&script))
}

/// What the header line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub sudo: bool,
    pub uid: Option<u32>,
}

/// Parses one line of the SFTP command's output; `None` for any other line
/// (a login script may print before the header).
pub fn parse_header(line: &str) -> Option<Header> {
    let mut words = line.split_whitespace();
    if words.next() != Some(HEADER) {
        return None;
    }
    let mut h = Header {
        sudo: false,
        uid: None,
    };
    let mut saw_sudo = false;
    for w in words {
        match w.split_once('=') {
            Some(("sudo", v)) => {
                h.sudo = v == "1";
                saw_sudo = true;
            }
            Some(("uid", v)) => h.uid = v.parse().ok(),
            _ => {}
        }
    }
    saw_sudo.then_some(h)
}

/// A `tokio` command for `ssh` with `args`, ending with the node if `ssh`'s
/// parent dies (a SIGKILLed run leaves no ssh behind).
pub fn command(args: &[OsString]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("ssh");
    c.args(args).kill_on_drop(true);
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs
    // between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn target() -> Target {
        Target {
            node: "node1".into(),
            address: "10.0.0.1".into(),
            port: Some(2222),
            user: Some("deploy".into()),
            key_file: Some(PathBuf::from("/k/id")),
            become_: true,
        }
    }

    fn strings(a: &[OsString]) -> Vec<String> {
        a.iter().map(|s| s.to_string_lossy().to_string()).collect()
    }

    #[test]
    fn args_never_use_a_master_and_end_with_the_host() {
        let opts = SshOptions {
            config_file: Some(PathBuf::from("/cfg")),
            connect_timeout: Duration::from_secs(15),
        };
        let a = strings(&args(&target(), &opts));
        assert_eq!(&a[..2], ["-F", "/cfg"]);
        for o in [
            "ControlMaster=no",
            "ControlPath=none",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "ConnectTimeout=15",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
        ] {
            let i = a
                .iter()
                .position(|x| x == o)
                .unwrap_or_else(|| panic!("{o}"));
            assert_eq!(a[i - 1], "-o");
        }
        assert_eq!(
            &a[a.len() - 11..],
            ["-p", "2222", "-l", "deploy", "-i", "/k/id", "-T", "-e", "none", "--", "10.0.0.1"]
        );
    }

    #[test]
    fn keepalive_follows_a_long_connect_timeout() {
        assert_eq!(alive_interval(Duration::from_secs(5)), 5);
        assert_eq!(alive_interval(Duration::from_secs(60)), 20);
    }

    #[test]
    fn sftp_command_runs_the_server_itself_and_asks_sudo_only_for_become() {
        let plain = sftp_command(false, false);
        assert!(plain.starts_with("sh -c '"), "{plain}");
        assert!(!plain.contains("sudo -n"), "{plain}");
        assert!(!plain.contains("id -u"), "{plain}");
        let become_ = sftp_command(true, false);
        assert!(become_.contains("exec sudo -n"), "{become_}");
        let reading = sftp_command(true, true);
        assert!(
            reading.contains("exec sudo -n \"$p\" -R -u 077"),
            "{reading}"
        );
        for c in [&plain, &become_] {
            assert_eq!(
                c.matches(" -u 077").count(),
                c.matches("exec ").count(),
                "{c}"
            );
        }
        assert!(become_.contains("id -u"), "{become_}");
    }

    #[test]
    fn sftp_command_works_in_a_real_shell() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(sftp_command(false, false).replace("exec \"$p\"", "echo \"$p\""))
            .output()
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(
            parse_header(lines.next().unwrap_or("")),
            Some(Header {
                sudo: false,
                uid: None
            }),
            "{text}"
        );
        assert!(
            lines.next().unwrap_or("").ends_with("sftp-server -u 077"),
            "{text}"
        );
    }

    #[test]
    fn header_is_recognised_only_with_its_marker() {
        assert_eq!(
            parse_header("sprayvault-sftp sudo=1 uid=1000"),
            Some(Header {
                sudo: true,
                uid: Some(1000)
            })
        );
        assert_eq!(parse_header("Welcome to node1"), None);
        assert_eq!(parse_header("sprayvault-sftp"), None);
    }
}
