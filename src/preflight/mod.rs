//! `preflight`: whether a kubespray run `cluster.yml --limit NODE...` will
//! get through, said in seconds, before minutes of the run on a production
//! cluster. Read-only.
//!
//! [`gather`] reads what is needed (the fact cache, the nodes over ssh,
//! every etcd member through its own admin certificate, the vault's latest
//! backup, the kubespray checkout); the functions here decide each check
//! purely, each with the fix to run when it fails. A failed check makes the
//! run's exit status non-zero; a warning does not.

mod etcd;
mod gather;

pub use etcd::{etcd_checks, first_control_plane_check, Listed, MemberSeen};
pub use gather::{gather, Gathered, Options};

use serde::Serialize;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check: what it looked at, how it came out, and what to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `facts`, `node`, `certs`, `etcd`, `first control plane`, `control host`.
    pub area: &'static str,
    /// The host (or member) it is about.
    pub subject: String,
    pub status: Status,
    pub detail: String,
    /// What to run when it is not ok.
    pub fix: Option<String>,
}

fn check(
    area: &'static str,
    subject: &str,
    status: Status,
    detail: String,
    fix: Option<String>,
) -> Check {
    Check {
        area,
        subject: subject.to_string(),
        status,
        detail,
        fix,
    }
}

/// The whole verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The hosts of the `--limit`.
    pub limit: Vec<String>,
    pub checks: Vec<Check>,
    pub seconds: f64,
}

impl Report {
    pub fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }
}

/// A host's entry in Ansible's fact cache, as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cached {
    Missing,
    Unparseable(String),
    Present {
        /// Seconds since the file was written (Ansible expires by mtime).
        age: u64,
        /// kubespray's `--limit` assertion looks at `ansible_default_ipv4`.
        default_ipv4: bool,
        /// Every address the facts report.
        addresses: Vec<String>,
    },
}

/// Decides the fact-cache check of one host outside the limit. `timeout`
/// is `fact_caching_timeout` (0: never expires); `ip` is the inventory's
/// `ip` for the host, which its facts must report.
pub fn fact_check(host: &str, cached: &Cached, timeout: u64, ip: Option<&str>, fix: &str) -> Check {
    let fail = |detail: String| check("facts", host, Status::Fail, detail, Some(fix.to_string()));
    match cached {
        Cached::Missing => fail(
            "no cached facts: kubespray stops a --limit run when a host outside the limit has none".into(),
        ),
        Cached::Unparseable(why) => fail(format!("its cache file cannot be read as facts ({why})")),
        Cached::Present { age, .. } if timeout > 0 && *age > timeout => fail(format!(
            "its cached facts are {} old, past fact_caching_timeout ({timeout} s): Ansible no longer uses them",
            human(*age)
        )),
        Cached::Present {
            default_ipv4: false, ..
        } => fail("its cached facts have no ansible_default_ipv4, which kubespray's --limit assertion needs".into()),
        Cached::Present { addresses, age, .. } => match ip {
            Some(ip) if !addresses.iter().any(|a| a == ip) => fail(format!(
                "its cached facts do not report the inventory's ip {ip} (they report {})",
                if addresses.is_empty() {
                    "none".to_string()
                } else {
                    addresses.join(", ")
                }
            )),
            _ => check(
                "facts",
                host,
                Status::Ok,
                format!(
                    "cached {} ago{}",
                    human(*age),
                    if timeout > 0 {
                        format!(", used for {} more", human(timeout - age))
                    } else {
                        String::new()
                    }
                ),
                None,
            ),
        },
    }
}

/// `3h 20m`, `2d 1h`, `45s`.
pub fn human(secs: u64) -> String {
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// A node of the limit, as seen over ssh.
#[derive(Clone, Debug)]
pub struct NodeSeen {
    /// `Err`: why it cannot be reached.
    pub reached: Result<(), String>,
    pub hostname: Option<String>,
    /// The address the inventory gives (`ip`, else `ansible_host`), and
    /// whether the node has it (`None`: not checked).
    pub address: Option<(String, Option<bool>)>,
}

impl Default for NodeSeen {
    fn default() -> Self {
        NodeSeen {
            reached: Ok(()),
            hostname: None,
            address: None,
        }
    }
}

/// Decides the checks of the node itself.
pub fn node_checks(node: &str, seen: &NodeSeen, restore_fix: &str) -> Vec<Check> {
    let mut out = Vec::new();
    if let Err(why) = &seen.reached {
        out.push(check(
            "node",
            node,
            Status::Fail,
            format!("cannot be reached over the inventory's ssh settings: {why}"),
            Some("install the machine with the inventory's address and ssh access (kubespray cannot run on it otherwise)".into()),
        ));
        return out;
    }
    let short = |s: &str| s.split('.').next().unwrap_or("").to_ascii_lowercase();
    match &seen.hostname {
        Some(h) if short(h) == short(node) => out.push(check("node", node, Status::Ok, format!("answers as {h:?}"), None)),
        Some(h) => out.push(check(
            "node",
            node,
            Status::Fail,
            format!("the machine at its address calls itself {h:?}, not {node:?}"),
            Some(format!("check the inventory's ansible_host for {node}, or set the machine's hostname to {node}")),
        )),
        None => {}
    }
    match &seen.address {
        Some((a, Some(false))) => out.push(check(
            "node",
            node,
            Status::Fail,
            format!("does not have the inventory's address {a} (a replacement must keep the node's address)"),
            Some(format!("give the machine the address {a}, or correct the inventory ({restore_fix} afterwards if its certificates name the address)")),
        )),
        Some((a, Some(true))) => out.push(check("node", node, Status::Ok, format!("has the inventory's address {a}"), None)),
        _ => {}
    }
    out
}

/// A certificate expiring within this many days is a warning.
pub const EXPIRY_DAYS: i64 = 30;

/// The node's certificates against its latest backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertsSeen {
    /// Not checked, and why (no vault given, the backup lacks the node).
    NotChecked(String),
    Checked {
        backup: String,
        /// Certificates and keys the backup holds that the node lacks.
        missing: Vec<String>,
        /// The cluster CAs (and the etcd CA key) that differ from the backup's.
        differ: Vec<String>,
        /// Certificates on the node that expire within 30 days: path and
        /// days left (negative: expired).
        expiring: Vec<(String, i64)>,
        /// How many it compared.
        compared: usize,
    },
}

pub fn cert_checks(node: &str, seen: &CertsSeen, restore_fix: &str) -> Vec<Check> {
    match seen {
        CertsSeen::NotChecked(why) => vec![check(
            "certs",
            node,
            Status::Warn,
            format!("not checked: {why}"),
            None,
        )],
        CertsSeen::Checked {
            backup,
            missing,
            differ,
            expiring,
            compared,
        } => {
            let mut out = Vec::new();
            if !expiring.is_empty() {
                let shown: Vec<String> = expiring
                    .iter()
                    .map(|(p, d)| {
                        if *d < 0 {
                            format!("{p} (expired)")
                        } else {
                            format!("{p} ({d} days)")
                        }
                    })
                    .collect();
                out.push(check(
                    "certs",
                    node,
                    Status::Warn,
                    format!("expiring within {EXPIRY_DAYS} days: {}", list(&shown)),
                    Some("kubespray re-issues leaf certificates on its runs; a CA needs renewing by hand".into()),
                ));
            }
            if !missing.is_empty() {
                out.push(check(
                    "certs",
                    node,
                    Status::Fail,
                    format!(
                        "{} of the certificates and keys it had in backup {backup} are missing ({}); kubespray would mint new ones, and a new etcd or Kubernetes CA, if ca-key.pem is gone",
                        missing.len(),
                        list(missing)
                    ),
                    Some(restore_fix.to_string()),
                ));
            }
            if !differ.is_empty() {
                out.push(check(
                    "certs",
                    node,
                    Status::Fail,
                    format!(
                        "{} differ from the cluster's in backup {backup}",
                        list(differ)
                    ),
                    Some(format!(
                        "{restore_fix} --force, after checking which CA is right"
                    )),
                ));
            }
            if missing.is_empty() && differ.is_empty() {
                out.push(check(
                    "certs",
                    node,
                    Status::Ok,
                    format!("its {compared} certificate and key files as in backup {backup}, the cluster CAs the same"),
                    None,
                ));
            }
            out
        }
    }
}

fn list(items: &[String]) -> String {
    if items.len() <= 4 {
        items.join(", ")
    } else {
        format!("{}, and {} more", items[..4].join(", "), items.len() - 4)
    }
}

/// Decides the control host check: the kubespray checkout's version now
/// against the one the latest backup recorded.
pub fn control_check(
    recorded: Option<(Option<String>, Option<String>)>,
    now: Option<(Option<String>, Option<String>)>,
) -> Check {
    let show = |(d, c): &(Option<String>, Option<String>)| {
        format!(
            "{} ({})",
            d.as_deref().unwrap_or("no tag"),
            c.as_deref()
                .map(|c| &c[..c.len().min(10)])
                .unwrap_or("no commit")
        )
    };
    match (recorded, now) {
        (Some(r), Some(n)) if r.1 == n.1 => check("control host", "kubespray", Status::Ok, format!("checkout at {}, as in the latest backup", show(&n)), None),
        (Some(r), Some(n)) => check(
            "control host",
            "kubespray",
            Status::Warn,
            format!("checkout at {}, the latest backup recorded {}: an upgrade on purpose, or the wrong tag checked out?", show(&n), show(&r)),
            Some("git -C KUBESPRAY_DIR checkout the tag the cluster runs, unless this run is the upgrade".into()),
        ),
        (None, Some(n)) => check("control host", "kubespray", Status::Warn, format!("checkout at {}; the vault has no record to compare it with", show(&n)), None),
        (_, None) => check(
            "control host",
            "kubespray",
            Status::Warn,
            "no kubespray checkout found around the inventory (kubespray/inventory/NAME), so its version is not compared".into(),
            Some("give --ansible-dir with the kubespray checkout, or run preflight with the inventory inside it".into()),
        ),
    }
}

#[cfg(test)]
mod tests;
