//! A node's recorded state as a tar archive that stock `tar` restores
//! (`tar --same-owner -xpf` as root): every manifest entry in manifest order
//! (parents before children), with its mode, owner and group names and
//! ids, mtime, and symlink target, paths relative to the node's `/`.
//!
//! Memory does not grow with the node: each file is decrypted as it is read
//! from its object and streamed into the archive. A file whose plaintext is
//! not the length or mac its manifest records stops the export with an error.

use crate::vault::crypto::{CryptoError, Identity};
use crate::vault::manifest::{Entry, Kind};
use crate::vault::trust::Authentic;
use crate::vault::{Backup, Vault, VaultError};
use serde::Serialize;
use std::io::{self, Write};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExportError {
    // Transparent: printed once; the CLI finds the exit code (6 for a wrong
    // identity) by matching this variant.
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("node {node}, {path} in backup {rev}: {why}; run `sprayvault verify` and export another backup (--at)")]
    Content {
        node: String,
        path: String,
        rev: String,
        why: String,
    },
    #[error("writing the archive: {0}")]
    Write(io::Error),
}

impl crate::error::Classify for ExportError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            ExportError::Vault(v) => v.class(),
            ExportError::Crypto(c) => c.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportReport {
    pub node: String,
    pub commit: String,
    pub entries: usize,
    pub files: usize,
    pub bytes: u64,
}

/// The tar header of `e` (without path, which the builder sets).
pub fn header(e: &Entry) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(e.uid as u64);
    h.set_gid(e.gid as u64);
    // Names longer than the header's 32 bytes stay numeric-only.
    if let Some(o) = &e.owner {
        let _ = h.set_username(o);
    }
    if let Some(g) = &e.group {
        let _ = h.set_groupname(g);
    }
    h.set_mtime(e.mtime.max(0) as u64);
    match e.kind {
        Kind::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(e.size);
        }
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
        }
        Kind::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
        }
    }
    h
}

/// Writes `node` of `backup` as a tar archive into `out`.
pub fn export<W: Write>(
    vault: &Vault,
    backup: &Authentic<Backup>,
    node: &str,
    identity: &Identity,
    out: W,
) -> Result<(ExportReport, W), ExportError> {
    let state = backup.node(node)?;
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let mut report = ExportReport {
        node: node.into(),
        commit: backup.commit.to_string(),
        ..Default::default()
    };
    let content_err = |path: &str, why: String| ExportError::Content {
        node: node.into(),
        path: path.into(),
        rev: backup.short_id(),
        why,
    };
    for e in state.manifest.entries.values() {
        let rel = e.path.trim_start_matches('/');
        let mut h = header(e);
        match e.kind {
            Kind::File => {
                let reader = vault.checked_reader(backup, node, e, identity)?;
                tar.append_data(&mut h, rel, reader).map_err(|err| {
                    match err.kind() {
                        // Size or mac wrong: the reader's own error.
                        io::ErrorKind::InvalidData => match err.into_inner() {
                            Some(inner) => match inner.downcast::<VaultError>() {
                                Ok(v) => ExportError::Vault(*v),
                                Err(other) => content_err(&e.path, other.to_string()),
                            },
                            None => content_err(&e.path, "invalid content".into()),
                        },
                        io::ErrorKind::Other => content_err(&e.path, err.to_string()),
                        _ => ExportError::Write(err),
                    }
                })?;
                report.files += 1;
                report.bytes += e.size;
            }
            Kind::Dir => tar
                .append_data(&mut h, rel, io::empty())
                .map_err(ExportError::Write)?,
            Kind::Symlink => {
                let target = e.target.as_deref().unwrap_or_default();
                tar.append_link(&mut h, rel, target)
                    .map_err(ExportError::Write)?
            }
        }
        report.entries += 1;
    }
    let out = tar.into_inner().map_err(ExportError::Write)?;
    Ok((report, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_owner_mode_and_time() {
        let e = Entry {
            kind: Kind::File,
            mode: 0o600,
            uid: 10012,
            gid: 0,
            owner: Some("etcd".into()),
            group: Some("root".into()),
            size: 5,
            mtime: 1764554400,
            mac: Some("ab".repeat(32)),
            path: "/etc/ssl/etcd/ssl/ca-key.pem".into(),
            target: None,
        };
        let h = header(&e);
        assert_eq!(h.mode().unwrap(), 0o600);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (10012, 0));
        assert_eq!(h.username().unwrap(), Some("etcd"));
        assert_eq!(h.groupname().unwrap(), Some("root"));
        assert_eq!(h.mtime().unwrap(), 1764554400);
        assert_eq!(h.size().unwrap(), 5);
    }
}
