//! Ansible's fact cache in the vault. kubespray runs with `--limit` only
//! when the cache holds facts for every host it leaves out (its templates
//! read other hosts' addresses from `hostvars`), so a dead node's facts are
//! kept here and put back when it is rebuilt.
//!
//! Facts are stored encrypted like everything else. Their keyed hash is taken
//! over the stable facts only (see [`normalize`]); when that hash is
//! unchanged the previous copy is kept, so nights in which only uptime, the
//! clock or free memory moved leave the history alone.

pub mod config;
pub(crate) mod normalize;
pub mod restore;

use crate::vault::crypto::Identity;
use crate::vault::facts_index::FactEntry;
use crate::vault::session::Session;
use crate::vault::{Backup, Vault, VaultError};
use config::FactCache;
use git2::Oid;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FactsError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Config(#[from] config::FactsConfigError),
    #[error("backup {rev} holds no facts for {host}; hosts with facts there: {known}")]
    NoFacts {
        rev: String,
        host: String,
        known: String,
    },
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error("backup {rev} holds no facts; back up with the fact cache configured (--ansible-dir)")]
    Empty { rev: String },
    #[error("cannot create the fact cache directory {}: {why}", dir.display())]
    CacheDir { dir: PathBuf, why: String },
}

impl crate::error::Classify for FactsError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            FactsError::Vault(v) => v.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}

/// What a backup run did with the cache.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FactsRead {
    pub stored: Vec<String>,
    pub unchanged: Vec<String>,
    pub missing: Vec<String>,
    /// `(host, reason)` for cache files that could not be read.
    pub errors: Vec<(String, String)>,
}

/// Each host's facts entry and the blob holding its cache file.
pub type FactsWrite = BTreeMap<String, (FactEntry, Oid)>;

/// Reads the cache files of `hosts` and returns the vault's new facts
/// entries: the previous ones, replaced where the stable facts changed.
/// New content is encrypted and written through `session`.
pub fn collect(
    session: &mut Session<'_>,
    cache: &FactCache,
    hosts: &[String],
    previous: &Backup,
) -> Result<(FactsWrite, FactsRead), VaultError> {
    let key = session.key().clone();
    let mut out = previous.facts_with_blobs();
    let mut report = FactsRead::default();
    for host in hosts {
        let path = cache.file(host);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.missing.push(host.clone());
                continue;
            }
            Err(e) => {
                report
                    .errors
                    .push((host.clone(), format!("{}: {e}", path.display())));
                continue;
            }
        };
        let facts: Value = match cache.plugin {
            config::Plugin::Jsonfile => serde_json::from_slice(&data).map_err(|e| e.to_string()),
            config::Plugin::Yaml => std::str::from_utf8(&data)
                .map_err(|e| e.to_string())
                .and_then(|t| crate::inventory::yaml_to_json(t).map_err(|e| e.to_string())),
        }
        .unwrap_or_else(|why| {
            report.errors.push((
                host.clone(),
                format!("{} is not a valid fact cache file: {why}", path.display()),
            ));
            Value::Null
        });
        if facts.is_null() {
            continue;
        }
        let mac = key.mac(&normalize::stable_bytes(&facts));
        if out.get(host).is_some_and(|(e, _)| e.mac == mac) {
            report.unchanged.push(host.clone());
            continue;
        }
        let mtime = std::fs::metadata(&path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let oid = session.put_unshared(&data)?;
        out.insert(
            host.clone(),
            (
                FactEntry {
                    host: host.clone(),
                    mtime,
                    size: data.len() as u64,
                    mac,
                },
                oid,
            ),
        );
        report.stored.push(host.clone());
    }
    Ok((out, report))
}

/// The decrypted facts of `host` in `backup`.
pub fn read(
    vault: &Vault,
    backup: &Backup,
    host: &str,
    identity: &Identity,
) -> Result<Vec<u8>, FactsError> {
    let oid = backup
        .fact_blobs
        .get(host)
        .ok_or_else(|| FactsError::NoFacts {
            rev: backup.short_id(),
            host: host.to_string(),
            known: if backup.facts.entries.is_empty() {
                "none".into()
            } else {
                backup
                    .facts
                    .entries
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })?;
    let cipher = vault.read_blob(*oid)?;
    let data = identity
        .decrypt(
            &cipher,
            &format!("facts of {host} in backup {}", backup.short_id()),
        )
        .map_err(VaultError::from)?;
    check(vault, backup, host, identity, &data)?;
    Ok(data)
}

/// Checks decrypted facts against the index: the size of the cache file,
/// and the mac of its stable facts (as JSON, or YAML, whichever it parses as).
fn check(
    vault: &Vault,
    backup: &Backup,
    host: &str,
    identity: &Identity,
    data: &[u8],
) -> Result<(), VaultError> {
    let tampered = |why: &str| backup.tampered(host, "its Ansible facts", why);
    let entry = backup
        .facts
        .entries
        .get(host)
        .ok_or_else(|| tampered("the facts index has no entry for it"))?;
    if data.len() as u64 != entry.size {
        return Err(tampered(&format!(
            "the content is {} bytes, the facts index records {}",
            data.len(),
            entry.size
        )));
    }
    let key = vault.content_key(backup, identity)?;
    let json = serde_json::from_slice::<Value>(data).ok();
    let yaml = || {
        std::str::from_utf8(data)
            .ok()
            .and_then(|t| crate::inventory::yaml_to_json(t).ok())
    };
    let matches = |v: &Value| key.mac(&normalize::stable_bytes(v)) == entry.mac;
    if json.as_ref().is_some_and(matches) || yaml().as_ref().is_some_and(matches) {
        Ok(())
    } else {
        Err(tampered(
            "the content does not have the mac the facts index records",
        ))
    }
}

/// Writes a cache file atomically, mode 0600 from creation, with the
/// current time (the cache plugins expire files by their mtime).
pub fn write_cache_file(target: &std::path::Path, data: &[u8]) -> Result<(), FactsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |path: &std::path::Path, e: std::io::Error| FactsError::Io {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let dir = target.parent().unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.sprayvault-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(target, e)
    })
}

pub fn parse(cache: &FactCache, data: &[u8]) -> Value {
    match cache.plugin {
        config::Plugin::Jsonfile => serde_json::from_slice(data).unwrap_or(Value::Null),
        config::Plugin::Yaml => std::str::from_utf8(data)
            .ok()
            .and_then(|t| crate::inventory::yaml_to_json(t).ok())
            .unwrap_or(Value::Null),
    }
}

/// Every address a host's facts report.
pub fn addresses(facts: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["ansible_all_ipv4_addresses", "ansible_all_ipv6_addresses"] {
        if let Some(Value::Array(a)) = facts.get(k) {
            out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
    }
    for k in ["ansible_default_ipv4", "ansible_default_ipv6"] {
        if let Some(a) = facts
            .get(k)
            .and_then(|v| v.get("address"))
            .and_then(Value::as_str)
        {
            out.push(a.to_string());
        }
    }
    if let Some(h) = facts.get("ansible_hostname").and_then(Value::as_str) {
        out.push(h.to_string());
    }
    if let Some(h) = facts.get("ansible_fqdn").and_then(Value::as_str) {
        out.push(h.to_string());
    }
    out
}

/// One fact that differs between two backups.
#[derive(Debug, Serialize)]
pub struct FactChange {
    pub host: String,
    pub fact: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Stable facts that differ between two JSON fact sets of one host.
pub fn diff(host: &str, old: &Value, new: &Value) -> Vec<FactChange> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    normalize::flatten("", &normalize::stable(old), &mut a);
    normalize::flatten("", &normalize::stable(new), &mut b);
    let (a, b): (BTreeMap<_, _>, BTreeMap<_, _>) =
        (a.into_iter().collect(), b.into_iter().collect());
    let mut out = Vec::new();
    for (k, v) in &b {
        if a.get(k) != Some(v) {
            out.push(FactChange {
                host: host.into(),
                fact: k.clone(),
                old: a.get(k).cloned(),
                new: Some(v.clone()),
            });
        }
    }
    for (k, v) in &a {
        if !b.contains_key(k) {
            out.push(FactChange {
                host: host.into(),
                fact: k.clone(),
                old: Some(v.clone()),
                new: None,
            });
        }
    }
    out.sort_by(|x, y| x.fact.cmp(&y.fact));
    out
}
