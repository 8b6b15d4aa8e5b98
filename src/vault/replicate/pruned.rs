//! The record of pruned snapshot refs (vault-layout Section 12b):
//! `VAULT/sprayvault/pruned`, local to the vault and never committed or
//! pushed.
//!
//! `prune` deletes a snapshot's ref only after its name and commit are
//! written here; `push --prune` deletes on the remote exactly the refs whose
//! name *and* commit are recorded (so a ref this vault never had, or that
//! names another snapshot, is left alone), and `pull` never fetches a ref
//! whose commit is recorded (so a remote that still has, or was given back,
//! a pruned snapshot cannot resurrect it). Entries are kept after a push:
//! they are what lets every later pull refuse the snapshot.
//!
//! Format: the line `sprayvault-pruned 1`, then one line per pruned ref,
//! `COMMIT SP REF SP UNIX-TIME LF` (the 40-hex-digit commit the ref pointed
//! at, the full ref name, when it was pruned). The file is replaced
//! atomically (temporary file, fsync, rename, fsync of the directory) under
//! the vault lock.

use crate::vault::format::FormatError;
use crate::vault::VaultError;
use git2::Oid;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: &str = "sprayvault-pruned 1";
/// Only snapshot refs are ever pruned (and so recorded).
pub const SNAPSHOT_PREFIX: &str = "refs/sprayvault/etcd/";

/// One pruned ref: its name, the commit it pointed at, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub name: String,
    pub commit: Oid,
    pub pruned: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunedRecord {
    entries: Vec<Tombstone>,
}

/// `VAULT/sprayvault/pruned`.
pub fn path(vault_dir: &Path) -> PathBuf {
    vault_dir.join("sprayvault").join("pruned")
}

impl PrunedRecord {
    pub fn parse(text: &str) -> Result<PrunedRecord, FormatError> {
        const WHAT: &str = "the record of pruned snapshots";
        let mut lines = text.lines();
        match lines.next() {
            None => return Ok(PrunedRecord::default()),
            Some(HEADER) => {}
            Some(_) => {
                return Err(FormatError::Header {
                    what: WHAT,
                    header: HEADER,
                })
            }
        }
        let mut entries = Vec::new();
        for (i, line) in lines.enumerate() {
            let bad = |why: &str| FormatError::Line {
                what: WHAT,
                line: i + 2,
                why: format!("{why}: {:?}", crate::term::escape(line)),
            };
            let mut f = line.split(' ');
            let (Some(commit), Some(name), Some(when), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad("not COMMIT REF TIME"));
            };
            if commit.len() != 40
                || !commit
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(bad("not a 40-hex-digit commit id"));
            }
            let commit = Oid::from_str(commit).map_err(|_| bad("not a commit id"))?;
            if !name.starts_with(SNAPSHOT_PREFIX) || name.len() == SNAPSHOT_PREFIX.len() {
                return Err(bad("not a snapshot ref"));
            }
            let pruned = when.parse().map_err(|_| bad("not a unix time"))?;
            entries.push(Tombstone {
                name: name.to_string(),
                commit,
                pruned,
            });
        }
        Ok(PrunedRecord { entries })
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        for t in &self.entries {
            s.push_str(&format!("{} {} {}\n", t.commit, t.name, t.pruned));
        }
        s
    }

    /// Reads the record of the vault in `vault_dir`; a missing file is an
    /// empty record (nothing was ever pruned).
    pub fn load(vault_dir: &Path) -> Result<PrunedRecord, VaultError> {
        let path = path(vault_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(VaultError::Io {
                    path,
                    error: source,
                })
            }
        };
        PrunedRecord::parse(&text).map_err(|why| VaultError::Damaged {
            rev: path.display().to_string(),
            what: format!(
                "{why}; this local record of pruned snapshot refs is written only by `sprayvault prune`: \
                 repair the line or move the file away (then `push --prune` removes nothing and `pull` may bring pruned snapshots back)"
            ),
        })
    }

    /// Replaces the file atomically; call with the vault lock held.
    pub fn save(&self, vault_dir: &Path) -> Result<(), VaultError> {
        let path = path(vault_dir);
        let dir = path.parent().expect("the record lives in VAULT/sprayvault");
        let tmp = dir.join("pruned.tmp");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| VaultError::Io {
                path: p,
                error: source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(self.to_text().as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    }

    /// Records that `name` (pointing at `commit`) is pruned; once per pair.
    pub fn add(&mut self, name: &str, commit: Oid, pruned: i64) {
        if !self.contains(name, commit) {
            self.entries.push(Tombstone {
                name: name.to_string(),
                commit,
                pruned,
            });
        }
    }

    pub fn contains(&self, name: &str, commit: Oid) -> bool {
        self.entries
            .iter()
            .any(|t| t.name == name && t.commit == commit)
    }

    /// The commits of every pruned snapshot.
    pub fn commits(&self) -> HashSet<Oid> {
        self.entries.iter().map(|t| t.commit).collect()
    }

    pub fn entries(&self) -> &[Tombstone] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> Oid {
        Oid::from_str(&c.to_string().repeat(40)).unwrap()
    }

    #[test]
    fn round_trips_and_adds_each_pair_once() {
        let mut r = PrunedRecord::default();
        r.add(
            "refs/sprayvault/etcd/20261120T020000Z-node1",
            oid('a'),
            1796000000,
        );
        r.add(
            "refs/sprayvault/etcd/20261120T020000Z-node1",
            oid('a'),
            1796000001,
        );
        r.add(
            "refs/sprayvault/etcd/20261120T020000Z-node1",
            oid('b'),
            1796000002,
        );
        assert_eq!(r.entries().len(), 2);
        let text = r.to_text();
        assert_eq!(PrunedRecord::parse(&text).unwrap(), r);
        assert!(r.contains("refs/sprayvault/etcd/20261120T020000Z-node1", oid('b')));
        assert!(!r.contains("refs/sprayvault/etcd/20261121T020000Z-node1", oid('b')));
        assert_eq!(PrunedRecord::parse("").unwrap(), PrunedRecord::default());
    }

    #[test]
    fn refuses_what_prune_never_writes() {
        let a = "a".repeat(40);
        for bad in [
            "sprayvault-pruned 2\n".to_string(),
            format!("{HEADER}\n{a} refs/heads/main 1\n"),
            format!("{HEADER}\n{a} refs/sprayvault/etcd/ 1\n"),
            format!("{HEADER}\n{} refs/sprayvault/etcd/x 1\n", "A".repeat(40)),
            format!("{HEADER}\n{a} refs/sprayvault/etcd/x\n"),
            format!("{HEADER}\n{a} refs/sprayvault/etcd/x 1 extra\n"),
            format!("{HEADER}\n{a} refs/sprayvault/etcd/x yesterday\n"),
        ] {
            assert!(PrunedRecord::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_spec_example_parses_and_serializes_identically() {
        let spec = include_str!("../../../vault-layout/README.md");
        let block = spec
            .split("```pruned-refs\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("vault-layout/README.md has a ```pruned-refs example");
        let r = PrunedRecord::parse(block).unwrap();
        assert_eq!(r.entries().len(), 2);
        assert_eq!(r.to_text(), block);
    }

    #[test]
    fn save_replaces_the_file_and_load_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PrunedRecord::load(dir.path()).unwrap().is_empty());
        let mut r = PrunedRecord::default();
        r.add("refs/sprayvault/etcd/20261120T020000Z-node1", oid('c'), 1);
        r.save(dir.path()).unwrap();
        r.add("refs/sprayvault/etcd/20261121T020000Z-node1", oid('d'), 2);
        r.save(dir.path()).unwrap();
        assert_eq!(PrunedRecord::load(dir.path()).unwrap(), r);
        std::fs::write(path(dir.path()), "junk\n").unwrap();
        let e = PrunedRecord::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("sprayvault/pruned") && e.contains("sprayvault prune"),
            "{e}"
        );
    }
}
