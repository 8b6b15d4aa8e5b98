//! Will a member's etcd start on an `etcd.env`? etcd reads `ETCD_FOO_BAR`
//! as its flag `--foo-bar`. A setting for a flag the binary no longer has is
//! logged and ignored by etcd 3.4 to 3.6 ("unrecognized environment
//! variable"; seen here with 3.5.16), but etcd 3.7.0 removed every
//! deprecated `--experimental-*` flag that kubespray's `etcd.env.j2` still
//! writes, and such a member does not start. So before a member starts on an
//! `etcd.env` that sprayvault wrote (restore, replace, etcd restore), its
//! settings are checked against the flags of that member's own `etcd
//! --help`: on 3.7 and later (or an etcd whose version cannot be read) a
//! setting it lacks is refused by name; before 3.7 it is a warning.

use super::env::EtcdEnv;
use std::collections::BTreeSet;

/// The shell that reports a member's etcd: `etcd --version`, then a line
/// `--help`, then `etcd --help`. Read by [`Binary::parse`].
pub const PROBE: &str = "etcd --version 2>&1 | head -n 5; echo --help; etcd --help 2>&1";

/// Variables etcd reads itself, not through a flag.
const NOT_FLAGS: &[&str] = &["ETCD_UNSUPPORTED_ARCH"];

/// What a member's `etcd` binary says of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binary {
    /// From `etcd Version: X`.
    pub version: Option<String>,
    /// The flags `etcd --help` lists, without their dashes.
    pub flags: BTreeSet<String>,
}

impl Binary {
    /// Reads what [`PROBE`] prints.
    pub fn parse(text: &str) -> Binary {
        let (head, help) = text.split_once("\n--help\n").unwrap_or(("", text));
        Binary {
            version: head
                .lines()
                .find_map(|l| l.trim().strip_prefix("etcd Version:"))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            flags: help_flags(help),
        }
    }

    /// Major and minor version, when it could be read.
    fn minor(&self) -> Option<(u32, u32)> {
        minor_of(self.version.as_deref()?)
    }
}

/// `(major, minor)` of an etcd version such as `3.5.16`.
pub fn minor_of(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The flags an `etcd --help` text lists: lines `  --name ...`.
pub fn help_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| l.strip_prefix("  --"))
        .filter_map(|rest| rest.split([' ', '=', '\t']).next())
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// The flag `ETCD_FOO_BAR` sets (`foo-bar`), or `None` for a variable that
/// is not an etcd setting.
fn flag_of(key: &str) -> Option<String> {
    let rest = key.strip_prefix("ETCD_")?;
    if NOT_FLAGS.contains(&key) || rest.is_empty() {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace('_', "-"))
}

/// The verdict on one `etcd.env` for one member's binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `etcd --help` listed no flag: there is no etcd to start.
    NoEtcd,
    /// Every setting names a flag the binary has.
    Fine,
    /// Settings the binary lacks, which it logs and ignores (before 3.7).
    Ignored(Vec<String>),
    /// Settings the binary lacks and will not start with: drop them first.
    Refused(Vec<String>),
}

/// Checks the `ETCD_*` settings of `env` against `bin`.
pub fn check(env: &EtcdEnv, bin: &Binary) -> Verdict {
    if bin.flags.is_empty() {
        return Verdict::NoEtcd;
    }
    let unknown: Vec<String> = env
        .keys()
        .filter(|k| flag_of(k).is_some_and(|f| !bin.flags.contains(&f)))
        .map(str::to_string)
        .collect();
    if unknown.is_empty() {
        return Verdict::Fine;
    }
    match bin.minor() {
        Some(v) if v < (3, 7) => Verdict::Ignored(unknown),
        _ => Verdict::Refused(unknown),
    }
}

/// The plan's sentence for a verdict on `node`'s `path`, or `None` when
/// there is nothing to say. Refusals name each setting to drop.
pub fn sentence(node: &str, path: &str, bin: &Binary, v: &Verdict) -> Option<String> {
    let version = bin.version.as_deref().unwrap_or("of unknown version");
    match v {
        Verdict::Fine => None,
        Verdict::NoEtcd => Some(format!(
            "node {node}: `etcd --help` lists no flags, so no etcd can start on {path} there; install etcd as kubespray does (/usr/local/bin/etcd), then run again"
        )),
        Verdict::Ignored(keys) => Some(format!(
            "node {node}: {path} sets {} which etcd {version} does not have; it logs them and starts",
            keys.join(", ")
        )),
        Verdict::Refused(keys) => Some(format!(
            "node {node}: {path} sets {} which etcd {version} does not have, and it will not start with them: \
             drop those lines from {path} in a new backup (or run kubespray's etcd role for this etcd version first), then run again",
            keys.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP_34: &str = include_str!("../../tests/fixtures/etcd-help/etcd-3.4.txt");
    const HELP_35: &str = include_str!("../../tests/fixtures/etcd-help/etcd-3.5.16.txt");
    const HELP_37: &str = include_str!("../../tests/fixtures/etcd-help/etcd-3.7-style.txt");

    /// kubespray's etcd.env as its etcd.env.j2 writes it today (experimental
    /// flags included), and as older kubespray wrote it (ETCD_PROXY).
    const ENV: &str = "# Environment file for etcd v3.5.26
ETCD_DATA_DIR=/var/lib/etcd
ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.1:2379
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.1:2380
ETCD_INITIAL_CLUSTER_STATE=existing
ETCD_METRICS=basic
ETCD_LISTEN_CLIENT_URLS=https://10.0.0.1:2379,https://127.0.0.1:2379
ETCD_ELECTION_TIMEOUT=5000
ETCD_HEARTBEAT_INTERVAL=250
ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd
ETCD_LISTEN_PEER_URLS=https://10.0.0.1:2380
ETCD_NAME=etcd1
ETCD_PROXY=off
ETCD_INITIAL_CLUSTER=etcd1=https://10.0.0.1:2380
ETCD_AUTO_COMPACTION_RETENTION=8
ETCD_SNAPSHOT_COUNT=100000
ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=True
ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=5s
ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem
ETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-node1.pem
ETCD_KEY_FILE=/etc/ssl/etcd/ssl/member-node1-key.pem
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem
ETCD_PEER_CERT_FILE=/etc/ssl/etcd/ssl/member-node1.pem
ETCD_PEER_KEY_FILE=/etc/ssl/etcd/ssl/member-node1-key.pem
ETCD_PEER_CLIENT_CERT_AUTH=True
ETCD_UNSUPPORTED_ARCH=arm64
ETCDCTL_ENDPOINTS=https://127.0.0.1:2379
ETCDCTL_CACERT=/etc/ssl/etcd/ssl/ca.pem
";

    fn bin(version: &str, help: &str) -> Binary {
        Binary::parse(&format!(
            "etcd Version: {version}\nGit SHA: x\nGo Version: go1.24.0\n--help\n{help}"
        ))
    }

    #[test]
    fn the_help_texts_are_read_as_flags() {
        let b = bin("3.5.16", HELP_35);
        assert_eq!(b.version.as_deref(), Some("3.5.16"));
        for f in [
            "name",
            "data-dir",
            "experimental-initial-corrupt-check",
            "listen-client-urls",
        ] {
            assert!(b.flags.contains(f), "{f}");
        }
        assert!(b.flags.len() > 100, "{}", b.flags.len());
        assert!(bin("3.4.23", HELP_34).flags.contains("proxy"));
    }

    #[test]
    fn etcd_3_4_accepts_every_setting_kubespray_writes() {
        assert_eq!(
            check(&EtcdEnv::parse(ENV), &bin("3.4.23", HELP_34)),
            Verdict::Fine
        );
    }

    #[test]
    fn etcd_3_5_takes_kubesprays_settings_and_only_logs_one_it_lacks() {
        let b = bin("3.5.16", HELP_35);
        assert_eq!(check(&EtcdEnv::parse(ENV), &b), Verdict::Fine);
        let v = check(
            &EtcdEnv::parse(&format!("{ENV}ETCD_NO_SUCH_SETTING=1\n")),
            &b,
        );
        assert_eq!(v, Verdict::Ignored(vec!["ETCD_NO_SUCH_SETTING".into()]));
        let s = sentence("node1", "/etc/etcd.env", &b, &v).unwrap();
        assert!(
            s.contains(
                "ETCD_NO_SUCH_SETTING which etcd 3.5.16 does not have; it logs them and starts"
            ),
            "{s}"
        );
    }

    #[test]
    fn etcd_3_7_without_the_experimental_flags_is_refused_naming_the_settings_to_drop() {
        let b = bin("3.7.0", HELP_37);
        let v = check(&EtcdEnv::parse(ENV), &b);
        assert_eq!(
            v,
            Verdict::Refused(vec![
                "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK".into(),
                "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL".into(),
            ])
        );
        let s = sentence("node1", "/etc/etcd.env", &b, &v).unwrap();
        assert!(
            s.starts_with("node node1: /etc/etcd.env sets ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK, ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL which etcd 3.7.0 does not have, and it will not start"),
            "{s}"
        );
        // Without those lines it is fine.
        let trimmed: String = ENV
            .lines()
            .filter(|l| !l.starts_with("ETCD_EXPERIMENTAL_"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(check(&EtcdEnv::parse(&trimmed), &b), Verdict::Fine);
    }

    #[test]
    fn a_node_without_etcd_is_named() {
        let b = Binary::parse("sh: 1: etcd: not found\n--help\nsh: 1: etcd: not found\n");
        let v = check(&EtcdEnv::parse(ENV), &b);
        assert_eq!(v, Verdict::NoEtcd);
        assert!(sentence("node3", "/etc/etcd.env", &b, &v)
            .unwrap()
            .contains("lists no flags"));
    }

    #[test]
    fn an_etcd_whose_version_cannot_be_read_is_held_to_the_strict_rule() {
        let b = Binary::parse(HELP_35);
        assert_eq!(b.version, None);
        let env = EtcdEnv::parse(&format!("{ENV}ETCD_NO_SUCH_SETTING=1\n"));
        assert_eq!(
            check(&env, &b),
            Verdict::Refused(vec!["ETCD_NO_SUCH_SETTING".into()])
        );
    }
}
