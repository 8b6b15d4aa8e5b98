//! `sprayvault.json`: the vault's plaintext configuration, committed with every
//! backup so that it travels with the vault (see vault-layout, "sprayvault.json").

use crate::paths::{check_path, glob_match};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The format this sprayvault writes. Version 2 added signed commits,
/// `details.age` and generic plaintext failure reasons, and drops recipient
/// comments; version 1 vaults are read, and upgraded by the next backup
/// (vault-layout, Section 17).
pub const FORMAT: u32 = 2;
/// The formats this sprayvault reads.
pub const READS: [u32; 2] = [1, 2];

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
    #[error("vault format {0} is not supported by this sprayvault (it reads formats 1 and {FORMAT}); upgrade sprayvault")]
    Format(u32),
    #[error("include path {0:?} is invalid: {1}; give an absolute path, with '*' only in its last component")]
    BadInclude(String, String),
    #[error("exclude pattern {0:?} must be an absolute path or glob")]
    BadExclude(String),
}

/// Always a plain failure: what went wrong is in the message.
impl crate::error::Classify for ConfigError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Failed
    }
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
            recipients: recipients.iter().map(|r| bare_recipient(r)).collect(),
            include,
            exclude: exclude.to_vec(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn parse(bytes: &[u8]) -> Result<VaultConfig, ConfigError> {
        let cfg: VaultConfig =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if !READS.contains(&cfg.format) {
            return Err(ConfigError::Format(cfg.format));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serializes") + "\n"
    }

    /// The configuration as this sprayvault writes it into a new commit:
    /// the current format, recipients without comments.
    pub fn upgraded(&self) -> VaultConfig {
        VaultConfig {
            format: FORMAT,
            recipients: self.recipients.iter().map(|r| bare_recipient(r)).collect(),
            ..self.clone()
        }
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

/// A recipient without its comment: an OpenSSH public key is its type and
/// key (`ssh-ed25519 AAAA...`; a comment such as `ops@bastion` would name
/// people and hosts in plaintext); an age recipient is one word anyway.
pub fn bare_recipient(r: &str) -> String {
    let mut words = r.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(key)) if kind.starts_with("ssh-") || kind.starts_with("ecdsa-") => {
            format!("{kind} {key}")
        }
        _ => r.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_comments_are_not_stored() {
        let c = VaultConfig::new(
            vec![
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk ops@bastion".into(),
                "age1abc".into(),
            ],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            c.recipients,
            ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk", "age1abc"]
        );
        let mut old = c.clone();
        old.format = 1;
        old.recipients[0].push_str(" ops@bastion");
        let up = VaultConfig::parse(old.to_json().as_bytes())
            .unwrap()
            .upgraded();
        assert_eq!(up, c);
        let mut future = c.clone();
        future.format = 3;
        assert!(VaultConfig::parse(future.to_json().as_bytes()).is_err());
    }

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
            VaultConfig::parse(br#"{"format":3,"recipients":[],"include":[],"exclude":[]}"#),
            Err(ConfigError::Format(3))
        ));
    }
}
