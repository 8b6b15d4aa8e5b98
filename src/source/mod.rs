//! Reading files from, and writing files to, a node over the system OpenSSH
//! client: `~/.ssh/config`, ssh-agent, ProxyJump and known_hosts behave as they
//! do for Ansible. File access goes through an SFTP server started on the node
//! (under `sudo -n` when the inventory says `become` for a non-root user), so
//! modes, owners, times and symlinks are seen exactly.
//!
//! Host keys are checked strictly: an unknown or changed host key is an error,
//! never a prompt and never accepted silently.

pub(crate) mod accounts;
pub mod connections;
pub(crate) mod content;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod node;
pub mod remote;
pub(crate) mod walk;

pub use node::{NewFile, NodeFs};
pub use remote::{Meta, Remote};

use crate::inventory::Host;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Where and how to reach one node.
#[derive(Clone, Debug)]
pub struct Target {
    pub node: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key_file: Option<PathBuf>,
    pub become_: bool,
}

impl Target {
    pub fn from_host(host: &Host) -> Target {
        Target {
            node: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: host.user.clone(),
            key_file: host.key_file.clone(),
            become_: host.become_,
        }
    }

    /// `user@address:port` as shown in messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.address);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }
}

/// Options shared by every connection of a run.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// Passed to ssh as `-F FILE`.
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config_file: None,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Clone, Debug, Error)]
pub enum SourceError {
    #[error("node {node}: cannot connect over ssh to {target}: {why}; {hint}")]
    Connect {
        node: String,
        target: String,
        why: String,
        hint: &'static str,
    },
    #[error("node {node}: user {user} cannot run `sudo -n` ({why}); give it passwordless sudo, or set ansible_become=false and connect as root")]
    Sudo {
        node: String,
        user: String,
        why: String,
    },
    #[error(
        "node {node}: cannot start an SFTP server ({why}); install openssh-sftp-server on the node"
    )]
    Sftp { node: String, why: String },
    #[error("node {node}: {path}: {why}")]
    Io {
        node: String,
        path: String,
        why: String,
    },
    #[error("node {node}: no end within {secs} s ({what}): frozen, unreachable, or serving something that never ends such as a FIFO; the node was cut off (raise --node-timeout if it is only slow)")]
    Deadline {
        node: String,
        what: String,
        secs: u64,
    },
    #[error("node {node}: {what}: {why}")]
    Command {
        node: String,
        what: String,
        why: String,
    },
}

/// Always a plain failure: what went wrong is in the message.
impl crate::error::Classify for SourceError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Failed
    }
}

impl SourceError {
    /// The node this error is about.
    pub fn node(&self) -> &str {
        match self {
            SourceError::Connect { node, .. }
            | SourceError::Sudo { node, .. }
            | SourceError::Sftp { node, .. }
            | SourceError::Io { node, .. }
            | SourceError::Deadline { node, .. }
            | SourceError::Command { node, .. } => node,
        }
    }

    /// The message without the leading `node X:` (for per-node tables).
    /// A generic word for the failure, safe to write in plaintext (no
    /// addresses, no ssh text): what the vault's trailers carry.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Connect { .. } => "unreachable",
            SourceError::Sudo { .. } => "sudo refused",
            SourceError::Sftp { .. } => "no SFTP server",
            SourceError::Io { .. } => "read error",
            SourceError::Deadline { .. } => "timed out",
            SourceError::Command { .. } => "command failed",
        }
    }

    pub fn reason(&self) -> String {
        let full = self.to_string();
        let prefix = format!("node {}", self.node());
        full.strip_prefix(&prefix)
            .map(|r| r.trim_start_matches([':', ' ']).to_string())
            .unwrap_or(full)
    }
}

/// A connection hint derived from what ssh said.
fn hint_for(why: &str) -> &'static str {
    if why.contains("Host key verification failed")
        || why.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || why.contains("No ED25519 host key is known")
        || why.contains("host key")
    {
        "verify the node's host key fingerprint and add it to known_hosts (or the UserKnownHostsFile of --ssh-config); unknown host keys are never accepted"
    } else if why.contains("Permission denied") {
        "check ansible_user and ansible_ssh_private_key_file for this host, or your ssh-agent"
    } else if why.contains("Connection refused")
        || why.contains("timed out")
        || why.contains("No route")
        || why.contains("Could not resolve")
    {
        "check that the node is up and its address and port are right in the inventory"
    } else {
        "run `ssh` to the node by hand with the same --ssh-config to see why"
    }
}

/// Joins an error and its sources into one line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(t.trim())) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts
        .iter()
        .map(|p| p.trim().replace('\n', " ").replace('\r', ""))
        .collect::<Vec<_>>()
        .join(": ")
}
