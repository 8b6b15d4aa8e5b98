//! `sprayvault.json`: the vault's plaintext configuration, committed with every
//! backup so that it travels with the vault (see vault-layout, "sprayvault.json").

use crate::paths::{check_path, glob_match};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const FORMAT: u32 = 1;

/// What kubespray nodes hold that a replacement machine needs back: all of
/// `/etc/kubernetes` (kubeconfigs, certificates, `kubelet.env`,
/// `kubelet-config.yaml`, `manifests/`, kubeadm's configuration) and of
/// `/etc/ssl/etcd` (certificates and `openssl.conf`), the local CA
/// certificates and etcd's environment file. A vault keeps the list it was
/// created with; this is what `init` writes into a new one.
pub const DEFAULT_INCLUDE: [&str; 4] = [
    "/etc/kubernetes",
    "/etc/ssl/etcd",
    "/usr/local/share/ca-certificates",
    "/etc/etcd.env",
];

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("sprayvault.json: {0}; the vault may have been written by a newer sprayvault")]
    Parse(String),
    #[error("vault format {0} is not supported by this sprayvault (it reads format {FORMAT}); upgrade sprayvault")]
    Format(u32),
    #[error("include path {0:?} is invalid: {1}; give an absolute path, with '*' only in its last component")]
    BadInclude(String, String),
    #[error("exclude pattern {0:?} must be an absolute path or glob")]
    BadExclude(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    pub format: u32,
    pub recipients: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl VaultConfig {
    pub fn new(
        recipients: Vec<String>,
        extra_include: &[String],
        exclude: &[String],
    ) -> Result<VaultConfig, ConfigError> {
        let mut include: Vec<String> = DEFAULT_INCLUDE.iter().map(|s| s.to_string()).collect();
        for p in extra_include {
            if !include.contains(p) {
                include.push(p.clone());
            }
        }
        let cfg = VaultConfig {
            format: FORMAT,
            recipients,
            include,
            exclude: exclude.to_vec(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn parse(bytes: &[u8]) -> Result<VaultConfig, ConfigError> {
        let cfg: VaultConfig =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if cfg.format != FORMAT {
            return Err(ConfigError::Format(cfg.format));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serializes") + "\n"
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for p in &self.include {
            let (dir, last) = p.rsplit_once('/').unwrap_or(("", p));
            let plain = p.replace('*', "x");
            check_path(&plain).map_err(|e| ConfigError::BadInclude(p.clone(), e.to_string()))?;
            if dir.contains('*') || (last.contains('*') && dir.is_empty()) {
                return Err(ConfigError::BadInclude(
                    p.clone(),
                    "'*' is allowed in the last component only".into(),
                ));
            }
        }
        for p in &self.exclude {
            if !p.starts_with('/') {
                return Err(ConfigError::BadExclude(p.clone()));
            }
        }
        Ok(())
    }

    /// True when `path` is excluded by the configuration.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.exclude
            .iter()
            .any(|p| crate::paths::excluded_by(p, path))
    }

    /// True when `path` is an include entry itself or lies under one.
    pub fn is_included(&self, path: &str) -> bool {
        self.include.iter().any(|inc| {
            if inc.contains('*') {
                glob_match(inc, path)
            } else {
                path == inc
                    || path
                        .strip_prefix(inc.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let c = VaultConfig::new(
            vec!["age1x".into()],
            &["/etc/extra".into()],
            &["/etc/kubernetes/ssl/*.key".into()],
        )
        .unwrap();
        assert!(c.include.contains(&"/etc/etcd.env".to_string()));
        assert_eq!(VaultConfig::parse(c.to_json().as_bytes()).unwrap(), c);
        assert!(c.is_excluded("/etc/kubernetes/ssl/ca.key"));
        assert!(!c.is_excluded("/etc/kubernetes/ssl/ca.crt"));
        assert!(c.is_included("/etc/kubernetes/admin.conf"));
        assert!(c.is_included("/etc/ssl/etcd/ssl/ca.pem"));
        assert!(c.is_included("/etc/kubernetes/kubelet.env"));
        assert!(c.is_included("/etc/kubernetes/manifests/kube-apiserver.yaml"));
        assert!(c.is_included("/etc/ssl/etcd/openssl.conf"));
        assert!(!c.is_included("/etc/passwd"));
    }

    #[test]
    fn rejects_bad() {
        assert!(VaultConfig::new(vec![], &["relative".into()], &[]).is_err());
        assert!(VaultConfig::new(vec![], &["/etc/*/x".into()], &[]).is_err());
        assert!(VaultConfig::new(vec![], &[], &["x".into()]).is_err());
        assert!(matches!(
            VaultConfig::parse(br#"{"format":2,"recipients":[],"include":[],"exclude":[]}"#),
            Err(ConfigError::Format(2))
        ));
    }
}
