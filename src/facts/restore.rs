//! `facts restore`: a backup's facts put back into Ansible's fact cache.
//! First everything is gathered (every host's facts decrypted and checked
//! against the index, the cache file looked at), then [`decide`] rules on
//! each host without touching anything, then the files are written. A host
//! whose facts cannot be read or do not check stops the run before any file
//! is written.
//!
//! Rules: a cache file newer than the backup's facts is a live host's and is
//! not overwritten without `--force`; facts whose addresses do not include
//! the inventory's address for the host are written with a warning (until
//! facts are gathered again, templates reading its `hostvars` see the old
//! addresses).

use super::config::FactCache;
use super::FactsError;
use crate::inventory::Inventory;
use crate::vault::crypto::Identity;
use crate::vault::trust::Authentic;
use crate::vault::{rfc3339, Backup, Vault};
use std::path::PathBuf;

/// What is known of one host before deciding.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    pub host: String,
    /// When the backup's facts were gathered (their cache file's mtime).
    pub gathered: i64,
    /// The mtime of the host's cache file now, if there is one.
    pub cached: Option<i64>,
    /// The host's address in the inventory, when one is given and has it.
    pub inventory_address: Option<String>,
    /// Every address the backup's facts report.
    pub addresses: Vec<String>,
}

/// What to do with one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write its facts, showing the warning if there is one.
    Write { warning: Option<String> },
    /// Leave its cache file alone, for this reason.
    Refuse(String),
}

/// Rules on one host of backup `rev`.
pub fn decide(h: &HostFacts, rev: &str, force: bool) -> Decision {
    let host = &h.host;
    if let Some(mtime) = h.cached {
        if mtime > h.gathered && !force {
            return Decision::Refuse(format!(
                "{host}: the cache has newer facts ({}) than backup {rev} ({}); --force overwrites them",
                rfc3339(mtime),
                rfc3339(h.gathered)
            ));
        }
    }
    let warning = match &h.inventory_address {
        Some(a) if !h.addresses.contains(a) => Some(format!(
            "{host}: the inventory's address {a} is not among the restored facts' addresses ({}); until facts are gathered again, templates reading hostvars['{host}'] see the old ones",
            h.addresses.join(", ")
        )),
        _ => None,
    };
    Decision::Write { warning }
}

/// The hosts to restore: those asked for, else every host `backup` has
/// facts for; none at all is an error.
pub fn select(asked: &[String], backup: &Backup) -> Result<Vec<String>, FactsError> {
    let hosts: Vec<String> = if asked.is_empty() {
        backup.facts.entries.keys().cloned().collect()
    } else {
        asked.to_vec()
    };
    if hosts.is_empty() {
        return Err(FactsError::Empty {
            rev: backup.short_id(),
        });
    }
    Ok(hosts)
}

/// One cache file written.
#[derive(Clone, Debug)]
pub struct Restored {
    pub host: String,
    pub path: PathBuf,
    /// When the facts were gathered.
    pub gathered: i64,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreReport {
    pub restored: Vec<Restored>,
    /// Why each refused host was left alone.
    pub refused: Vec<String>,
    pub warnings: Vec<String>,
}

/// Restores the facts of `hosts` (none: every host with facts) from
/// `backup` into `cache`; `inventory`, when given, is checked against the
/// facts' addresses.
pub fn restore(
    vault: &Vault,
    backup: &Authentic<Backup>,
    identity: &Identity,
    cache: &FactCache,
    inventory: Option<&Inventory>,
    hosts: &[String],
    force: bool,
) -> Result<RestoreReport, FactsError> {
    let hosts = select(hosts, backup)?;
    std::fs::create_dir_all(&cache.dir).map_err(|e| FactsError::CacheDir {
        dir: cache.dir.clone(),
        why: e.to_string(),
    })?;
    let mut gathered = Vec::new();
    for host in &hosts {
        let data = super::read(vault, backup, host, identity)?;
        let entry = backup
            .facts
            .entries
            .get(host)
            .expect("read checked the host's facts against the index");
        let target = cache.file(host);
        let cached = std::fs::metadata(&target).ok().map(|m| {
            m.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        let inventory_address = inventory
            .and_then(|i| i.hosts.get(host))
            .map(|h| h.address.clone());
        let addresses = match inventory_address {
            Some(_) => super::addresses(&super::parse(cache, &data)),
            None => vec![],
        };
        let facts = HostFacts {
            host: host.clone(),
            gathered: entry.mtime,
            cached,
            inventory_address,
            addresses,
        };
        gathered.push((facts, target, data));
    }
    let mut report = RestoreReport::default();
    for (facts, target, data) in gathered {
        match decide(&facts, &backup.short_id(), force) {
            Decision::Refuse(why) => report.refused.push(why),
            Decision::Write { warning } => {
                report.warnings.extend(warning);
                super::write_cache_file(&target, &data)?;
                report.restored.push(Restored {
                    host: facts.host,
                    path: target,
                    gathered: facts.gathered,
                });
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATHERED: i64 = 1764554400;

    fn node3() -> HostFacts {
        HostFacts {
            host: "node3".into(),
            gathered: GATHERED,
            cached: None,
            inventory_address: Some("10.0.0.13".into()),
            addresses: vec!["10.0.0.13".into(), "node3".into()],
        }
    }

    fn written(d: Decision) -> Option<String> {
        match d {
            Decision::Write { warning } => warning,
            Decision::Refuse(why) => panic!("refused: {why}"),
        }
    }

    #[test]
    fn facts_of_a_host_without_a_cache_file_are_written() {
        assert_eq!(written(decide(&node3(), "1a2b3c4d5e", false)), None);
    }

    #[test]
    fn newer_facts_in_the_cache_are_refused_without_force() {
        let h = HostFacts {
            cached: Some(GATHERED + 1),
            ..node3()
        };
        match decide(&h, "1a2b3c4d5e", false) {
            Decision::Refuse(why) => assert_eq!(
                why,
                "node3: the cache has newer facts (2025-12-01T02:00:01Z) than backup 1a2b3c4d5e (2025-12-01T02:00:00Z); --force overwrites them"
            ),
            d => panic!("{d:?}"),
        }
        assert_eq!(written(decide(&h, "1a2b3c4d5e", true)), None);
    }

    #[test]
    fn older_or_equally_old_facts_in_the_cache_are_overwritten() {
        for cached in [GATHERED, GATHERED - 86400, 0] {
            let h = HostFacts {
                cached: Some(cached),
                ..node3()
            };
            assert_eq!(written(decide(&h, "1a2b3c4d5e", false)), None);
        }
    }

    #[test]
    fn an_inventory_address_missing_from_the_facts_is_a_warning() {
        let h = HostFacts {
            inventory_address: Some("10.0.0.99".into()),
            ..node3()
        };
        assert_eq!(
            written(decide(&h, "1a2b3c4d5e", false)).as_deref(),
            Some("node3: the inventory's address 10.0.0.99 is not among the restored facts' addresses (10.0.0.13, node3); until facts are gathered again, templates reading hostvars['node3'] see the old ones")
        );
    }

    #[test]
    fn without_the_host_in_an_inventory_no_address_is_checked() {
        let h = HostFacts {
            inventory_address: None,
            addresses: vec![],
            ..node3()
        };
        assert_eq!(written(decide(&h, "1a2b3c4d5e", false)), None);
    }

    #[test]
    fn a_refused_host_gets_no_address_warning() {
        let h = HostFacts {
            cached: Some(GATHERED + 60),
            inventory_address: Some("10.0.0.99".into()),
            ..node3()
        };
        assert!(matches!(
            decide(&h, "1a2b3c4d5e", false),
            Decision::Refuse(_)
        ));
    }

    /// A vault whose newest backup holds the facts of node1 and node2
    /// (gathered at GATHERED) and, when `bad` is set, facts of node3 that
    /// do not match their index entry.
    struct Fixture {
        dir: tempfile::TempDir,
        vault: Vault,
        identity: Identity,
        cache: FactCache,
    }

    fn fixture(bad: bool) -> Fixture {
        use crate::vault::config::VaultConfig;
        use crate::vault::facts_index::FactEntry;
        let dir = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        let id_path = dir.path().join("identity");
        std::fs::write(
            &id_path,
            age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_string() + "\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &id_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let config = VaultConfig::new(vec![key.to_public().to_string()], &[], &[]).unwrap();
        let vault = Vault::init(&dir.path().join("v"), config).unwrap();
        let previous = vault.backup(vault.head().unwrap()).unwrap();
        let mut session = crate::vault::session::Session::new(&vault, &previous).unwrap();
        let mut facts = std::collections::BTreeMap::new();
        for (host, addr) in [
            ("node1", "10.0.0.11"),
            ("node2", "10.0.0.12"),
            ("node3", "10.0.0.13"),
        ] {
            if host == "node3" && !bad {
                continue;
            }
            let json = serde_json::json!({
                "ansible_hostname": host,
                "ansible_default_ipv4": {"address": addr},
            });
            let data = serde_json::to_vec(&json).unwrap();
            let mut mac = session
                .key()
                .mac(&super::super::normalize::stable_bytes(&json));
            if host == "node3" {
                mac = "0".repeat(64);
            }
            let oid = session.put_unshared(&data).unwrap();
            let entry = FactEntry {
                host: host.into(),
                mtime: GATHERED,
                size: data.len() as u64,
                mac,
            };
            facts.insert(host.to_string(), (entry, oid));
        }
        let record = crate::vault::message::RunRecord::new("backup", "backup: facts".into());
        session
            .commit_backup(
                Default::default(),
                &facts,
                crate::vault::control::ControlWrite::Carry,
                &record,
            )
            .unwrap();
        let identity = Identity::load(&id_path).unwrap();
        let cache = FactCache {
            plugin: super::super::config::Plugin::Jsonfile,
            dir: dir.path().join("cache"),
            prefix: String::new(),
            timeout: 86400,
            config: None,
        };
        Fixture {
            dir,
            vault,
            identity,
            cache,
        }
    }

    impl Fixture {
        fn restore(
            &self,
            inventory: Option<&Inventory>,
            hosts: &[&str],
            force: bool,
        ) -> Result<RestoreReport, FactsError> {
            let backup = Authentic::assume(self.vault.backup(self.vault.head().unwrap()).unwrap());
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            restore(
                &self.vault,
                &backup,
                &self.identity,
                &self.cache,
                inventory,
                &hosts,
                force,
            )
        }
    }

    #[test]
    fn restore_writes_checked_facts_refuses_newer_ones_and_warns_of_other_addresses() {
        let f = fixture(false);
        std::fs::create_dir_all(&f.cache.dir).unwrap();
        // node1's cache file is fresh (now): a live host's.
        std::fs::write(f.cache.file("node1"), b"{}").unwrap();
        let inv = f.dir.path().join("hosts.ini");
        std::fs::write(
            &inv,
            "[all]\nnode1 ansible_host=10.0.0.11\nnode2 ansible_host=10.0.0.99\n",
        )
        .unwrap();
        let inventory = crate::inventory::load(&inv).unwrap();
        let r = f.restore(Some(&inventory), &[], false).unwrap();
        assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
        assert!(
            r.refused[0].starts_with("node1: the cache has newer facts"),
            "{:?}",
            r.refused
        );
        let restored: Vec<&str> = r.restored.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(restored, ["node2"]);
        assert_eq!(r.restored[0].gathered, GATHERED);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(
            r.warnings[0].starts_with("node2: the inventory's address 10.0.0.99"),
            "{:?}",
            r.warnings
        );
        assert_eq!(std::fs::read(f.cache.file("node1")).unwrap(), b"{}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f.cache.file("node2")).unwrap()).unwrap();
        assert_eq!(written["ansible_hostname"], "node2");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(f.cache.file("node2"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        let r = f.restore(None, &["node1"], true).unwrap();
        assert!(r.refused.is_empty() && r.warnings.is_empty());
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f.cache.file("node1")).unwrap()).unwrap();
        assert_eq!(written["ansible_hostname"], "node1");

        assert!(matches!(
            f.restore(None, &["node9"], false),
            Err(FactsError::NoFacts { .. })
        ));
    }

    #[test]
    fn facts_that_do_not_check_stop_the_restore_before_any_file_is_written() {
        let f = fixture(true);
        match f.restore(None, &[], true) {
            Err(FactsError::Vault(crate::vault::VaultError::Tampered { node, .. })) => {
                assert_eq!(node, "node3")
            }
            other => panic!("{other:?}"),
        }
        assert!(!f.cache.file("node1").exists());
        assert!(!f.cache.file("node2").exists());
    }
}
