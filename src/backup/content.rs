//! How the backup takes a node file's content as it arrives: hashed with
//! the vault's keyed hash on the way, and stored through the session's
//! content store without ever being held whole, unless it is small.
//!
//! - A file of at most [`HOLD`] bytes is held while it is read: if its mac is
//!   known its blob is reused, otherwise it is encrypted from memory. Its
//!   certificates' expiry dates are read from it.
//! - A larger file is only hashed on its first read. If its mac is known,
//!   that is all (an unchanged file is never encrypted again). Otherwise it
//!   is read a second time, encrypted piece by piece into a spool, and must
//!   hash the same, or it changed between the two reads and is skipped.
//!
//! Nothing of a file's plaintext stays in memory after its read, except the
//! files named in [`Contents::keep`] (the backup needs `/etc/etcd.env` for
//! the snapshot); what is held is wiped when dropped.

use crate::source::content::{Ended, Pass, Reader};
use crate::vault::blobs::{Blobs, Spool};
use crate::vault::mac::{MacKey, MacStream};
use git2::Oid;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Files up to this size are held in memory while they are read.
pub const HOLD: u64 = 1 << 20;

/// What the backup keeps of a file it read.
pub struct Kept {
    pub mac: String,
    /// The blob holding the content: reused, or written by this run (then
    /// not yet part of any commit: the session adopts it).
    pub blob: Oid,
    /// notAfter of each certificate in the file.
    pub expiries: Vec<i64>,
    /// The content, for the files the reader was asked to keep.
    pub text: Option<Zeroizing<Vec<u8>>>,
}

/// Starts the backup's passes over one node's files.
#[derive(Clone)]
pub struct Contents {
    pub blobs: Arc<Blobs>,
    pub key: MacKey,
    /// Paths whose content is kept in memory for the run.
    pub keep: &'static [&'static str],
}

impl Reader for Contents {
    type Pass = Take;
    type Kept = Kept;

    fn holds(&self, size: u64) -> u64 {
        if size <= HOLD {
            size
        } else {
            0
        }
    }

    fn begin(&self, path: &str, size: u64) -> Take {
        Take {
            path: path.to_string(),
            keep: self.keep.contains(&path),
            blobs: Arc::clone(&self.blobs),
            key: self.key.clone(),
            mac: self.key.stream(),
            stage: Stage::Hash {
                held: (size <= HOLD).then(|| Zeroizing::new(Vec::with_capacity(size as usize))),
            },
        }
    }
}

/// One read of one file.
pub struct Take {
    path: String,
    keep: bool,
    blobs: Arc<Blobs>,
    key: MacKey,
    mac: MacStream,
    stage: Stage,
}

enum Stage {
    /// The first read; `held` for a small file.
    Hash { held: Option<Zeroizing<Vec<u8>>> },
    /// The second read of a large new file: into `spool`, which must hash
    /// to `want`.
    Store { want: String, spool: Spool },
}

/// Why a file is skipped by the backup (its previous record is kept).
#[derive(Debug, thiserror::Error)]
pub enum Skip {
    #[error("grew while being read; skipped, run the backup again")]
    Grew,
    #[error("changed between its two reads (hashed, then read again to be stored); skipped, its previous record is kept; run the backup again")]
    Changed,
    /// The vault could not take it.
    #[error("could not be stored in the vault: {0}")]
    NotStored(crate::vault::VaultError),
}

impl Pass for Take {
    type Kept = Kept;
    type Skip = Skip;

    fn feed(&mut self, piece: &[u8]) -> Result<(), Skip> {
        self.mac.update(piece);
        match &mut self.stage {
            Stage::Hash { held: Some(held) } => {
                if held.len() + piece.len() > held.capacity() {
                    return Err(Skip::Grew);
                }
                held.extend_from_slice(piece);
                Ok(())
            }
            Stage::Hash { held: None } => Ok(()),
            Stage::Store { spool, .. } => spool.write(piece).map_err(|e| stored(&self.blobs, e)),
        }
    }

    fn end(self) -> Result<Ended<Take>, Skip> {
        let mac = self.mac.finish();
        match self.stage {
            Stage::Hash { held } => {
                let expiries = held
                    .as_deref()
                    .map_or_else(Vec::new, |c| cert_expiries(&self.path, c));
                let blob = match (self.blobs.known(&mac), &held) {
                    (Some(oid), _) => oid,
                    (None, Some(content)) => self
                        .blobs
                        .write(&mac, content)
                        .map_err(|e| stored(&self.blobs, e))?,
                    (None, None) => {
                        let spool = self.blobs.spool().map_err(|e| stored(&self.blobs, e))?;
                        return Ok(Ended::Again(Take {
                            mac: self.key.stream(),
                            stage: Stage::Store { want: mac, spool },
                            ..self
                        }));
                    }
                };
                let text = if self.keep { held } else { None };
                Ok(Ended::Kept(Kept {
                    mac,
                    blob,
                    expiries,
                    text,
                }))
            }
            Stage::Store { want, spool } => {
                if mac != want {
                    return Err(Skip::Changed);
                }
                let blob = spool
                    .finish(&self.blobs, &mac)
                    .map_err(|e| stored(&self.blobs, e))?;
                Ok(Ended::Kept(Kept {
                    mac,
                    blob,
                    expiries: vec![],
                    text: None,
                }))
            }
        }
    }
}

fn stored(blobs: &Blobs, e: crate::vault::VaultError) -> Skip {
    Skip::NotStored(blobs.note(e))
}

/// notAfter of every certificate in a file (kubeconfigs' embedded ones too).
pub fn cert_expiries(path: &str, content: &[u8]) -> Vec<i64> {
    match crate::certs::classify(content) {
        crate::certs::Content::Certificates(c) => c.iter().map(|c| c.not_after).collect(),
        _ if path.ends_with(".conf") => crate::certs::embedded(content)
            .iter()
            .map(|c| c.not_after)
            .collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::config::VaultConfig;
    use crate::vault::session::Session;
    use crate::vault::Vault;

    fn vault(dir: &tempfile::TempDir) -> (Vault, age::x25519::Identity) {
        let id = age::x25519::Identity::generate();
        let config = VaultConfig::new(vec![id.to_public().to_string()], &[], &[]).unwrap();
        (Vault::init(&dir.path().join("v"), config).unwrap(), id)
    }

    /// Feeds `content` in pieces of `piece` bytes through every pass the
    /// reader asks for, as the walk does; `second` replaces the content of
    /// a second read.
    fn read(
        c: &Contents,
        path: &str,
        content: &[u8],
        second: Option<&[u8]>,
    ) -> (Result<Kept, Skip>, usize) {
        let mut pass = c.begin(path, content.len() as u64);
        let mut reads = 1;
        let mut data = content;
        loop {
            for p in data.chunks(100_000) {
                if let Err(e) = pass.feed(p) {
                    return (Err(e), reads);
                }
            }
            match pass.end() {
                Ok(Ended::Kept(k)) => return (Ok(k), reads),
                Ok(Ended::Again(p)) => {
                    pass = p;
                    reads += 1;
                    data = second.unwrap_or(content);
                }
                Err(e) => return (Err(e), reads),
            }
        }
    }

    fn session(vault: &Vault) -> Session<'_> {
        let previous = vault.backup(vault.head().unwrap()).unwrap();
        Session::new(vault, &previous).unwrap()
    }

    fn contents(session: &Session<'_>, keep: &'static [&'static str]) -> Contents {
        Contents {
            blobs: session.blobs(),
            key: session.key().clone(),
            keep,
        }
    }

    fn decrypted(dir: &tempfile::TempDir, id: &age::x25519::Identity, oid: Oid) -> Vec<u8> {
        let repo = git2::Repository::open_bare(dir.path().join("v")).unwrap();
        let blob = repo.find_blob(oid).unwrap();
        age::decrypt(id, blob.content()).unwrap()
    }

    #[test]
    fn small_and_large_files_are_stored_once_and_large_ones_read_twice_only_when_new() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, id) = vault(&dir);
        let mut session = session(&vault);
        let c = contents(&session, &["/etc/etcd.env"]);
        let small = b"ETCD_NAME=etcd1\n".to_vec();
        let (kept, reads) = read(&c, "/etc/etcd.env", &small, None);
        let kept = kept.unwrap();
        assert_eq!(reads, 1);
        assert_eq!(kept.mac, session.key().mac(&small));
        assert_eq!(kept.text.as_deref().map(|t| &t[..]), Some(&small[..]));
        assert_eq!(decrypted(&dir, &id, kept.blob), small);

        let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 239) as u8).collect();
        let (kept, reads) = read(&c, "/etc/kubernetes/big", &large, None);
        let kept = kept.unwrap();
        assert_eq!(reads, 2, "a new large file is hashed, then stored");
        assert!(kept.text.is_none());
        assert_eq!(decrypted(&dir, &id, kept.blob), large);
        // Unchanged (on this node or another): one read, the same blob.
        let (again, reads) = read(&c, "/etc/kubernetes/big", &large, None);
        assert_eq!((reads, again.unwrap().blob), (1, kept.blob));
        // Nothing is counted until the session adopts it, and once.
        assert_eq!(session.counts().new_blobs, 0);
        session.adopt(&kept.mac, kept.blob).unwrap();
        session.adopt(&kept.mac, kept.blob).unwrap();
        assert_eq!(session.counts().new_blobs, 1);
    }

    #[test]
    fn a_large_file_that_changes_between_its_two_reads_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _) = vault(&dir);
        let session = session(&vault);
        let c = contents(&session, &[]);
        let large = vec![7u8; 2_000_000];
        let mut other = large.clone();
        other[1_500_000] = 8;
        let (kept, reads) = read(&c, "/etc/kubernetes/big", &large, Some(&other));
        assert_eq!(reads, 2);
        let why = kept.err().unwrap().to_string();
        assert!(why.contains("changed between its two reads"), "{why}");
        // Its spool is gone.
        let objects = dir.path().join("v").join("objects");
        assert_eq!(crate::vault::blobs::spools(&objects), Vec::<String>::new());
    }

    #[test]
    fn a_small_file_that_grows_past_its_listed_size_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _) = vault(&dir);
        let session = session(&vault);
        let c = contents(&session, &[]);
        let mut pass = c.begin("/etc/kubernetes/x", 4);
        pass.feed(b"1234").unwrap();
        assert!(pass.feed(b"5").unwrap_err().to_string().contains("grew"));
    }
}
