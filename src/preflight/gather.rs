//! Reading what preflight decides from: the fact cache on this machine, the
//! nodes of the limit and every etcd member over ssh (each member through
//! its own admin certificate), the vault's latest backup, and the kubespray
//! checkout. Reads only; every check is decided in [`super`].

use super::*;
use crate::etcd::member::{self, Etcdctl};
use crate::inventory::Inventory;
use crate::source::connections::Connections;
use crate::source::remote::SMALL_FILE_LIMIT;
use crate::source::{Remote, SshOptions, Target};
use crate::vault::crypto::Identity;
use crate::vault::manifest::Kind;
use crate::vault::{Backup, Vault};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a preflight is asked to check.
pub struct Options<'a> {
    pub inventory: &'a Inventory,
    pub inventory_path: &'a Path,
    pub limit: &'a [String],
    pub ssh: &'a SshOptions,
    pub ansible_dir: Option<&'a Path>,
    /// The vault, its authenticated latest backup and an identity, for the
    /// certificate and control-host checks.
    pub vault: Option<(&'a Vault, &'a Backup, &'a Identity)>,
    /// Warn when the latest backup is older than this many seconds.
    pub max_age: u64,
}

/// The checks, in the order they are shown.
pub struct Gathered {
    pub checks: Vec<Check>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The inventory's address for `host`: its `ip`, else `ansible_host`.
fn inventory_ip(inv: &Inventory, host: &str) -> Option<String> {
    let h = inv.hosts.get(host)?;
    h.vars
        .get("ip")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| Some(h.address.clone()))
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
}

/// Whether `ip -o addr show` output gives the machine `want`: an address
/// of an interface, or one inside the loopback interface's subnet (Linux
/// answers on all of 127.0.0.0/8 through `lo`).
pub fn has_address(ip_addr: &str, want: &str) -> bool {
    let Ok(want) = want.parse::<std::net::IpAddr>() else {
        return false;
    };
    ip_addr.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let Some(i) = f.iter().position(|w| *w == "inet" || *w == "inet6") else {
            return false;
        };
        let Some((addr, prefix)) = f.get(i + 1).and_then(|a| a.split_once('/')) else {
            return false;
        };
        let (Ok(addr), Ok(prefix)) = (addr.parse::<std::net::IpAddr>(), prefix.parse::<u32>())
        else {
            return false;
        };
        if addr == want {
            return true;
        }
        match (addr, want, f.get(1)) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(w), Some(&"lo")) if prefix <= 32 => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix)
                };
                u32::from(a) & mask == u32::from(w) & mask
            }
            _ => false,
        }
    })
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// The certificate files a backup recorded for `node` that kubespray
/// needs before it runs.
fn cert_paths(backup: &Backup, node: &str) -> Vec<String> {
    let Some(state) = backup.nodes.get(node) else {
        return vec![];
    };
    state
        .manifest
        .entries
        .values()
        .filter(|e| e.kind == Kind::File)
        .filter(|e| {
            (e.path.starts_with("/etc/kubernetes/ssl/") || e.path.contains("/etcd/"))
                && [".pem", ".crt", ".key"].iter().any(|x| e.path.ends_with(x))
        })
        .map(|e| e.path.clone())
        .collect()
}

/// The cluster CAs among `paths` (and the etcd CA key on the first etcd
/// member, so that kubespray keeps the CA).
fn cas(paths: &[String], first_etcd: bool) -> Vec<String> {
    paths
        .iter()
        .filter(|p| {
            p.ends_with("/ca.pem")
                || p.as_str() == "/etc/kubernetes/ssl/ca.crt"
                || (first_etcd && p.ends_with("/ca-key.pem"))
        })
        .cloned()
        .collect()
}

async fn certs_seen(
    remote: &Remote,
    node: &str,
    vault: Option<(&Vault, &Backup, &Identity)>,
    first_etcd: bool,
) -> CertsSeen {
    let Some((vault, backup, identity)) = vault else {
        return CertsSeen::NotChecked(
            "give --vault and --identity to compare them with the latest backup".into(),
        );
    };
    if !backup.nodes.contains_key(node) {
        return CertsSeen::NotChecked(format!(
            "the latest backup {} has no state for it",
            backup.short_id()
        ));
    }
    let paths = cert_paths(backup, node);
    let mut missing = Vec::new();
    for p in &paths {
        match remote.lstat(p).await {
            Ok(Some(m)) if m.kind == Some(Kind::File) => {}
            _ => missing.push(p.clone()),
        }
    }
    let mut differ = Vec::new();
    for p in cas(&paths, first_etcd) {
        if missing.contains(&p) {
            continue;
        }
        let recorded = match vault.decrypt_file(backup, node, &p, identity) {
            Ok(b) => b,
            Err(e) => {
                return CertsSeen::NotChecked(format!("{p} of backup {}: {e}", backup.short_id()))
            }
        };
        match remote.read(&p, SMALL_FILE_LIMIT).await {
            Ok(now) if sha256(&now) == sha256(&recorded) => {}
            _ => differ.push(p),
        }
    }
    // What the node has now: certificates expiring soon.
    let soon = now() + EXPIRY_DAYS * 86400;
    let mut expiring = Vec::new();
    for p in paths
        .iter()
        .filter(|p| !missing.contains(p) && !p.ends_with("-key.pem") && !p.ends_with(".key"))
    {
        if let Ok(data) = remote.read(p, SMALL_FILE_LIMIT).await {
            if let crate::certs::Content::Certificates(certs) = crate::certs::classify(&data) {
                if let Some(end) = certs
                    .iter()
                    .map(|c| c.not_after)
                    .min()
                    .filter(|end| *end <= soon)
                {
                    expiring.push((p.clone(), (end - now()).div_euclid(86400)));
                }
            }
        }
    }
    CertsSeen::Checked {
        backup: backup.short_id(),
        missing,
        differ,
        expiring,
        compared: paths.len(),
    }
}

fn facts_fix(opts: &Options, host: &str) -> String {
    let dir = opts
        .ansible_dir
        .map(|d| format!(" --ansible-dir {}", d.display()))
        .unwrap_or_default();
    format!(
        "sprayvault facts restore {host} --identity FILE{dir} (if {host} is down), or ansible-playbook -i {} playbooks/facts.yml",
        opts.inventory_path.display()
    )
}

fn fact_checks(opts: &Options) -> Vec<Check> {
    let cache = match crate::facts::config::find(opts.ansible_dir) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check {
                area: "facts",
                subject: "cache".into(),
                status: Status::Fail,
                detail: format!("cannot tell which facts Ansible will use: {e}"),
                fix: Some("give --ansible-dir with kubespray's directory".into()),
            }]
        }
    };
    let all = opts
        .inventory
        .groups
        .get("all")
        .cloned()
        .unwrap_or_default();
    all.iter()
        .filter(|h| !opts.limit.contains(h))
        .map(|host| {
            let file: PathBuf = cache.file(host);
            let cached = match std::fs::metadata(&file) {
                Err(_) => Cached::Missing,
                Ok(m) => {
                    let age = m
                        .modified()
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .map_or(0, |d| d.as_secs());
                    match std::fs::read(&file) {
                        Err(e) => Cached::Unparseable(e.to_string()),
                        Ok(data) => {
                            let v = crate::facts::parse(&cache, &data);
                            if !v.is_object() {
                                Cached::Unparseable(format!(
                                    "{} is not a facts file",
                                    file.display()
                                ))
                            } else {
                                Cached::Present {
                                    age,
                                    default_ipv4: v
                                        .get("ansible_default_ipv4")
                                        .and_then(|d| d.get("address"))
                                        .is_some(),
                                    addresses: crate::facts::addresses(&v),
                                }
                            }
                        }
                    }
                }
            };
            let ip = opts
                .inventory
                .hosts
                .get(host)
                .and_then(|h| h.vars.get("ip"))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            fact_check(
                host,
                &cached,
                cache.timeout,
                ip.as_deref(),
                &facts_fix(opts, host),
            )
        })
        .collect()
}

/// Reads everything and decides every check.
pub async fn gather(opts: &Options<'_>) -> Gathered {
    let inv = opts.inventory;
    let mut checks = fact_checks(opts);

    // Every host to reach: the limit, the etcd members, the first
    // control-plane host; each once.
    let first_cp = inv.control_plane_order.first().cloned();
    let mut hosts: Vec<String> = opts.limit.to_vec();
    for h in inv.etcd_order.iter().chain(first_cp.iter()) {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    let targets: Vec<Target> = hosts
        .iter()
        .filter_map(|h| inv.hosts.get(h))
        .map(Target::from_host)
        .collect();
    let nodes = Connections::open(&targets, opts.ssh, false).await;
    let remotes: BTreeMap<String, Result<&Remote, String>> = nodes
        .each()
        .map(|(n, r)| (n.to_string(), r.map_err(|e| e.reason())))
        .collect();

    if let Some((_, backup, _)) = opts.vault {
        let age = (now() - backup.time).max(0) as u64;
        checks.push(Check {
            area: "vault",
            subject: backup.short_id(),
            status: if age > opts.max_age { Status::Warn } else { Status::Ok },
            detail: format!("the latest backup is {} old{}", human(age), if age > opts.max_age { format!(", older than --max-age ({})", human(opts.max_age)) } else { String::new() }),
            fix: (age > opts.max_age).then(|| "sprayvault backup (the certificates and facts compared here are as of that backup)".to_string()),
        });
    }

    // The nodes of the limit.
    let first_etcd = inv.etcd_order.first();
    for node in opts.limit {
        let is_etcd = inv.etcd_order.contains(node);
        let restore_fix = if is_etcd {
            format!("sprayvault replace {node} (an etcd member; or sprayvault restore {node} while its member is healthy)")
        } else {
            format!("sprayvault restore {node} (or sprayvault replace {node})")
        };
        let Some(remote) = remotes.get(node) else {
            checks.push(Check {
                area: "node",
                subject: node.clone(),
                status: Status::Fail,
                detail: "is not in the inventory".into(),
                fix: Some("add it to the inventory first".into()),
            });
            continue;
        };
        let mut seen = NodeSeen {
            reached: remote.as_ref().map(|_| ()).map_err(Clone::clone),
            ..Default::default()
        };
        if let Ok(r) = remote {
            seen.hostname = r.hostname().await.ok();
            if let Some(want) = inventory_ip(inv, node) {
                let has = r
                    .run_privileged("ip -o addr show", "listing the node's addresses")
                    .await
                    .ok()
                    .map(|out| has_address(&out, &want));
                seen.address = Some((want, has));
            }
        }
        checks.extend(node_checks(node, &seen, &restore_fix));
        if let Ok(r) = remote {
            let certs = certs_seen(r, node, opts.vault, first_etcd == Some(node)).await;
            checks.extend(cert_checks(node, &certs, &restore_fix));
        }
    }

    // etcd: every member through its own certificate.
    let mut members = Vec::new();
    let mut listed = None;
    for node in &inv.etcd_order {
        let name = inv
            .etcd_member_name(node)
            .map(|(n, _)| n)
            .unwrap_or_default();
        let health = match remotes.get(node) {
            Some(Ok(r)) => match Etcdctl::from_live_env(r).await {
                Ok((_, ctl)) => {
                    let h = member::health(r, &ctl).await.map_err(|e| e.to_string());
                    if h.is_ok() && listed.is_none() {
                        listed = member::list(r, &ctl).await.ok();
                    }
                    h
                }
                Err(e) => Err(e.to_string()),
            },
            Some(Err(e)) => Err(e.clone()),
            None => Err("not in the inventory".into()),
        };
        members.push(MemberSeen {
            node: node.clone(),
            name,
            health,
        });
    }
    let listed: Option<Vec<Listed>> = listed.map(|l| {
        l.into_iter()
            .map(|m| Listed {
                name: m.name,
                learner: m.learner,
            })
            .collect()
    });
    checks.extend(etcd_checks(&members, listed.as_deref(), opts.limit));

    // kubespray's first control-plane host.
    if let Some(first) = &first_cp {
        let reached = remotes.get(first).map(|r| r.is_ok());
        let healthy = members
            .iter()
            .find(|m| &m.node == first)
            .map(|m| m.health.is_ok());
        checks.extend(first_control_plane_check(
            &inv.control_plane_order,
            opts.limit,
            reached,
            healthy,
        ));
    }

    // The control host: the kubespray checkout against the latest backup.
    let now_version =
        crate::control::locate::locate(None, opts.inventory_path, opts.ansible_dir, None)
            .ok()
            .flatten()
            .map(|l| crate::control::version::read(&l.dir, l.inside.as_deref()))
            .filter(|v| v.commit.is_some())
            .map(|v| (v.describe, v.commit));
    let recorded = opts.vault.and_then(|(vault, backup, _)| {
        vault
            .control(backup.commit)
            .ok()
            .flatten()
            .map(|c| (c.record.describe, c.record.commit))
    });
    checks.push(control_check(recorded, now_version));

    drop(remotes);
    nodes.close().await;
    Gathered { checks }
}

#[cfg(test)]
mod address_tests {
    use super::has_address;

    const IP: &str = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.128.0.7/32 metric 100 scope global dynamic eth0\\       valid_lft 3000sec preferred_lft 3000sec
";

    #[test]
    fn an_address_is_the_machines_when_an_interface_has_it_or_lo_covers_it() {
        assert!(has_address(IP, "10.128.0.7"));
        assert!(has_address(IP, "127.0.10.13"));
        assert!(has_address(IP, "::1"));
        assert!(!has_address(IP, "10.128.0.8"));
        assert!(!has_address(IP, "192.168.1.1"));
        assert!(!has_address(IP, "node3"));
    }
}
