//! A node's recorded state as a tar archive that stock `tar` restores
//! (`tar --same-owner -xpf` as root): every manifest entry in manifest order
//! (parents before children), with its mode, owner and group names and
//! ids, mtime, and symlink target, paths relative to the node's `/`.
//!
//! Memory does not grow with the node: each file is decrypted as it is read
//! from its object and streamed into the archive. A file whose plaintext is
//! not the length its manifest records stops the export with an error.

use crate::vault::crypto::{CryptoError, Identity};
use crate::vault::manifest::{Entry, Kind};
use crate::vault::{Backup, Vault, VaultError};
use serde::Serialize;
use std::io::{self, Read, Write};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExportError {
    // Not transparent: the CLI finds the exit code (6 for a wrong identity)
    // in the cause.
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("{0}")]
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

#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportReport {
    pub node: String,
    pub commit: String,
    pub entries: usize,
    pub files: usize,
    pub bytes: u64,
}

/// Passes exactly `want` bytes through, and fails on fewer or more.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(io::Error::other(
                    "the content is longer than the manifest records",
                )),
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::other(format!(
                "the content ends {} bytes short of the length the manifest records",
                self.left
            )));
        }
        self.left -= got as u64;
        Ok(got)
    }
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
    backup: &Backup,
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
                let oid = state
                    .blobs
                    .get(&e.path)
                    .ok_or_else(|| content_err(&e.path, "no content blob".into()))?;
                let (_, cipher) = vault.blob_reader(*oid)?;
                let what = format!("{} of node {node} in backup {}", e.path, backup.short_id());
                let plain = identity.decrypt_reader(cipher, &what)?;
                let reader = Exact {
                    inner: plain,
                    left: e.size,
                };
                tar.append_data(&mut h, rel, reader).map_err(|err| {
                    if err.kind() == io::ErrorKind::Other
                        || err.kind() == io::ErrorKind::InvalidData
                    {
                        content_err(&e.path, err.to_string())
                    } else {
                        ExportError::Write(err)
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
    fn exact_length_is_enforced() {
        let mut ok = Exact {
            inner: &b"abc"[..],
            left: 3,
        };
        let mut v = Vec::new();
        ok.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"abc");
        for (data, left) in [(&b"ab"[..], 3), (&b"abcd"[..], 3)] {
            let mut r = Exact { inner: data, left };
            assert!(r.read_to_end(&mut Vec::new()).is_err());
        }
    }

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
