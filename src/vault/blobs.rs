//! The session's content store, shared by the tasks that read nodes: content
//! is encrypted into blobs as it arrives, so that no file is held whole in
//! memory between its read and the commit (vault-layout, "Content identity
//! and deduplication").
//!
//! It only writes blobs, never a tree, commit or ref: a blob becomes part of
//! the vault when the run's [`super::session::Session`] adopts it for its
//! commit, which is when it is bound to its mac and counted. A blob written
//! for a node whose read then failed is never adopted, so never bound;
//! `git gc` removes it.
//!
//! Small content is encrypted in memory; large content is streamed through
//! age into a spool file of ciphertext in the object directory (its name
//! starts `tmp_obj_`, which `git gc` also removes if a run is killed), then
//! written as a loose object (see `loose`).

use super::crypto::Recipients;
use super::VaultError;
use git2::{Oid, Repository};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// New objects and their ciphertext bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub new_blobs: usize,
    pub bytes_added: u64,
}

impl Counts {
    pub(super) fn add(&mut self, bytes: u64) {
        self.new_blobs += 1;
        self.bytes_added += bytes;
    }
}

pub struct Blobs {
    /// A handle of its own on the vault's repository, for in-memory writes.
    repo: Mutex<Repository>,
    objects: PathBuf,
    recipients: Recipients,
    /// Reusable blobs by mac: the parent's proven ones, then this run's.
    known: Mutex<HashMap<String, Oid>>,
    /// The ciphertext size of every blob this run wrote.
    written: Mutex<HashMap<Oid, u64>>,
    /// Set when a write found the vault's disk full: the run then fails as
    /// a whole instead of recording a per-file error.
    full: std::sync::atomic::AtomicBool,
}

impl Blobs {
    pub(super) fn open(git_dir: &Path, recipients: Recipients) -> Result<Blobs, VaultError> {
        let repo = Repository::open_bare(git_dir).map_err(|error| VaultError::Git {
            dir: git_dir.to_path_buf(),
            what: "opening the repository to write objects".into(),
            error,
        })?;
        Ok(Blobs {
            repo: Mutex::new(repo),
            objects: git_dir.join("objects"),
            recipients,
            known: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
            full: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Notes `e` if it says the disk is full; gives it back.
    pub fn note(&self, e: VaultError) -> VaultError {
        if e.is_disk_full() {
            self.full.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        e
    }

    /// Whether a write of this run found the disk full.
    pub fn disk_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The blob already holding the content whose mac is `mac`.
    pub fn known(&self, mac: &str) -> Option<Oid> {
        self.known.lock().expect("not poisoned").get(mac).copied()
    }

    /// Makes blob `oid` reusable for `mac`; the first blob known wins.
    /// Returns the blob that holds `mac` from now on.
    pub(super) fn know(&self, mac: &str, oid: Oid) -> Oid {
        *self
            .known
            .lock()
            .expect("not poisoned")
            .entry(mac.to_string())
            .or_insert(oid)
    }

    /// The ciphertext size of `oid` if this run wrote it.
    pub(super) fn written(&self, oid: Oid) -> Option<u64> {
        self.written
            .lock()
            .expect("not poisoned")
            .get(&oid)
            .copied()
    }

    /// Every blob this run wrote.
    pub(super) fn written_oids(&self) -> Vec<Oid> {
        self.written
            .lock()
            .expect("not poisoned")
            .keys()
            .copied()
            .collect()
    }

    fn wrote(&self, mac: &str, oid: Oid, size: u64) -> Oid {
        self.written
            .lock()
            .expect("not poisoned")
            .entry(oid)
            .or_insert(size);
        self.know(mac, oid)
    }

    /// The blob holding `plain` (whose mac is `mac`): the known one, or a
    /// new one encrypted now from memory.
    pub fn write(&self, mac: &str, plain: &[u8]) -> Result<Oid, VaultError> {
        if let Some(oid) = self.known(mac) {
            return Ok(oid);
        }
        let repo = self.repo.lock().expect("not poisoned");
        let (oid, size) = encrypt_blob(&repo, &self.recipients, plain)?;
        drop(repo);
        Ok(self.wrote(mac, oid, size))
    }

    /// A blob written as its content arrives, for content too large to hold.
    pub fn spool(&self) -> Result<Spool, VaultError> {
        let path = self
            .objects
            .join(format!("tmp_obj_spool_{:016x}", rand::random::<u64>()));
        let io = |error| VaultError::Io {
            path: path.clone(),
            error,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let out = Counting(BufWriter::with_capacity(256 << 10, file), 0);
        let writer = match self.recipients.encrypting(out) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        Ok(Spool {
            path,
            writer: Some(writer),
        })
    }
}

/// Encrypts `plain` to `recipients` straight into a new blob of `repo`
/// (libgit2's blob writer spools ciphertext, never plaintext, to a temporary
/// file in the object directory); returns the blob and its ciphertext size.
pub(super) fn encrypt_blob(
    repo: &Repository,
    recipients: &Recipients,
    plain: &[u8],
) -> Result<(Oid, u64), VaultError> {
    let git = |error| VaultError::Git {
        dir: repo.path().to_path_buf(),
        what: "writing an object".into(),
        error,
    };
    let w = repo.blob_writer(None).map_err(git)?;
    let Counting(w, size) = recipients.encrypt_into(plain, Counting(w, 0))?;
    let oid = w.commit().map_err(git)?;
    Ok((oid, size))
}

/// A writer that counts what passes through it.
struct Counting<W>(W, u64);

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(b)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Content being encrypted into a spool file of ciphertext; removed unless
/// it was finished into a blob.
pub struct Spool {
    path: PathBuf,
    writer: Option<age::stream::StreamWriter<Counting<BufWriter<File>>>>,
}

impl Spool {
    fn io(&self, error: std::io::Error) -> VaultError {
        VaultError::Io {
            path: self.path.clone(),
            error,
        }
    }

    /// Encrypts the next piece of the content.
    pub fn write(&mut self, piece: &[u8]) -> Result<(), VaultError> {
        let w = self.writer.as_mut().expect("written only before finish");
        w.write_all(piece).map_err(|e| self.io(e))
    }

    /// Ends the content (whose mac is `mac`) and writes it as a blob of
    /// `blobs`; the blob already holding `mac`, if another task finished it
    /// first.
    pub fn finish(mut self, blobs: &Blobs, mac: &str) -> Result<Oid, VaultError> {
        let w = self.writer.take().expect("finished once");
        let Counting(out, size) = w.finish().map_err(|e| self.io(e))?;
        // The spool is removed once copied: the blob is what the run makes
        // durable before its ref moves.
        let file = out.into_inner().map_err(|e| self.io(e.into_error()))?;
        drop(file);
        let oid =
            super::loose::write_blob_file(&blobs.objects, &self.path).map_err(|e| self.io(e))?;
        Ok(blobs.wrote(mac, oid, size))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The temporary files in an object directory (spools and objects being
/// written).
#[cfg(test)]
pub fn spools(objects: &Path) -> Vec<String> {
    std::fs::read_dir(objects)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp_obj"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients() -> (age::x25519::Identity, Recipients) {
        let id = age::x25519::Identity::generate();
        let r = Recipients::parse(&[id.to_public().to_string()]).unwrap();
        (id, r)
    }

    fn decrypt(repo: &Repository, id: &age::x25519::Identity, oid: Oid) -> Vec<u8> {
        let blob = repo.find_blob(oid).unwrap();
        age::decrypt(id, blob.content()).unwrap()
    }

    #[test]
    fn a_spooled_content_is_a_blob_decrypting_to_it_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (id, r) = recipients();
        let blobs = Blobs::open(dir.path(), r).unwrap();
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 247) as u8).collect();
        let mut spool = blobs.spool().unwrap();
        for piece in data.chunks(256 << 10) {
            spool.write(piece).unwrap();
        }
        let oid = spool.finish(&blobs, "m1").unwrap();
        assert_eq!(decrypt(&repo, &id, oid), data);
        assert_eq!(blobs.known("m1"), Some(oid));
        let size = repo.find_blob(oid).unwrap().size() as u64;
        assert_eq!(blobs.written(oid), Some(size));
        let left = spools(&dir.path().join("objects"));
        assert!(left.is_empty(), "{left:?}");
        // An abandoned spool leaves nothing either.
        let mut spool = blobs.spool().unwrap();
        spool.write(b"half").unwrap();
        drop(spool);
        assert_eq!(spools(&dir.path().join("objects")), Vec::<String>::new());
    }

    #[test]
    fn content_in_memory_is_encrypted_once_per_mac() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (id, r) = recipients();
        let blobs = Blobs::open(dir.path(), r).unwrap();
        let a = blobs.write("m", b"same").unwrap();
        assert_eq!(blobs.write("m", b"same").unwrap(), a);
        assert_eq!(decrypt(&repo, &id, a), b"same");
        // A blob known from the parent is reused, and was not written now.
        let parent = repo.blob(b"x").unwrap();
        assert_eq!(blobs.know("p", parent), parent);
        assert_eq!(blobs.write("p", b"x").unwrap(), parent);
        assert_eq!(blobs.written(parent), None);
    }
}
