//! Finding Ansible's fact cache the way Ansible does: `ANSIBLE_CONFIG`, then
//! `ansible.cfg` in the kubespray directory (`--ansible-dir`) or the current
//! directory, then `~/.ansible.cfg`, then `/etc/ansible/ansible.cfg`; the
//! `[defaults]` keys `fact_caching`, `fact_caching_connection`,
//! `fact_caching_prefix`, `fact_caching_timeout`, and their `ANSIBLE_CACHE_PLUGIN*`
//! environment overrides.

use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plugin {
    Jsonfile,
    Yaml,
}

/// A file-based fact cache.
#[derive(Clone, Debug)]
pub struct FactCache {
    pub plugin: Plugin,
    pub dir: PathBuf,
    pub prefix: String,
    pub timeout: u64,
    /// The ansible.cfg it was read from, if any.
    pub config: Option<PathBuf>,
}

#[derive(Debug, Error)]
pub enum FactsConfigError {
    #[error("no Ansible configuration found (looked at {looked}); give --ansible-dir with kubespray's directory, or set ANSIBLE_CONFIG")]
    NoConfig { looked: String },
    #[error("{config}: fact caching is off (fact_caching = {plugin}); kubespray's ansible.cfg sets fact_caching = jsonfile")]
    NotFileCache { config: String, plugin: String },
    #[error("{config}: fact_caching = {0} is not supported; sprayvault reads the jsonfile and yaml caches", config = .1)]
    Unsupported(String, String),
    #[error("{config}: fact_caching_connection is not set, so there is no cache directory")]
    NoDir { config: String },
    #[error("cannot read {path}: {why}")]
    Read { path: PathBuf, why: String },
}

/// Always a plain failure: what went wrong is in the message.
impl crate::error::Classify for FactsConfigError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Failed
    }
}

/// `[defaults]` values of an ansible.cfg (INI; `key = value`, `#`/`;` comments).
fn defaults(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            section = l[1..l.len() - 1].trim().to_string();
            continue;
        }
        if section == "defaults" {
            if let Some((k, v)) = l.split_once('=').or_else(|| l.split_once(':')) {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

fn expand(p: &str, base: &Path) -> PathBuf {
    let p = match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    };
    if p.is_relative() {
        base.join(p)
    } else {
        p
    }
}

/// Locates the cache. `ansible_dir` is kubespray's directory, if given.
pub fn find(ansible_dir: Option<&Path>) -> Result<FactCache, FactsConfigError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(c) = std::env::var("ANSIBLE_CONFIG") {
        let p = PathBuf::from(c);
        candidates.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
    }
    match ansible_dir {
        Some(d) => candidates.push(d.join("ansible.cfg")),
        None => candidates.push(PathBuf::from("ansible.cfg")),
    }
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(PathBuf::from(home).join(".ansible.cfg"));
    }
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    let config = candidates.iter().find(|p| p.is_file()).cloned();
    let (values, base) = match &config {
        Some(c) => {
            let text = std::fs::read_to_string(c).map_err(|e| FactsConfigError::Read {
                path: c.clone(),
                why: e.to_string(),
            })?;
            (
                defaults(&text),
                c.parent().map(Path::to_path_buf).unwrap_or_default(),
            )
        }
        None => (Vec::new(), std::env::current_dir().unwrap_or_default()),
    };
    let get = |key: &str, env: &str| {
        std::env::var(env).ok().or_else(|| {
            values
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
    };
    let plugin = get("fact_caching", "ANSIBLE_CACHE_PLUGIN");
    let name = config
        .as_ref()
        .map(|c| c.display().to_string())
        .unwrap_or_else(|| "the environment".into());
    let plugin = match plugin.as_deref() {
        None if config.is_none() => {
            return Err(FactsConfigError::NoConfig {
                looked: candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
        None | Some("memory") => {
            return Err(FactsConfigError::NotFileCache {
                config: name,
                plugin: plugin.unwrap_or_else(|| "memory".into()),
            })
        }
        Some("jsonfile") | Some("ansible.builtin.jsonfile") => Plugin::Jsonfile,
        Some("yaml") | Some("community.general.yaml") => Plugin::Yaml,
        Some(other) => return Err(FactsConfigError::Unsupported(other.to_string(), name)),
    };
    let dir =
        get("fact_caching_connection", "ANSIBLE_CACHE_PLUGIN_CONNECTION").ok_or_else(|| {
            FactsConfigError::NoDir {
                config: name.clone(),
            }
        })?;
    let timeout = get("fact_caching_timeout", "ANSIBLE_CACHE_PLUGIN_TIMEOUT")
        .and_then(|t| t.parse().ok())
        .unwrap_or(86400);
    let prefix = get("fact_caching_prefix", "ANSIBLE_CACHE_PLUGIN_PREFIX").unwrap_or_default();
    Ok(FactCache {
        plugin,
        dir: expand(&dir, &base),
        prefix,
        timeout,
        config,
    })
}

impl FactCache {
    /// Where the cache keeps `host`'s facts.
    pub fn file(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{}{host}", self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_section() {
        let v = defaults("[defaults]\n# c\nfact_caching = jsonfile\nfact_caching_connection=/tmp\n[ssh_connection]\nfact_caching = no\n");
        assert_eq!(
            v,
            vec![
                ("fact_caching".into(), "jsonfile".into()),
                ("fact_caching_connection".into(), "/tmp".into())
            ]
        );
    }
}
