//! What a run that fails leaves: nothing. Before a writing run starts
//! (holding the vault lock), [`Vault::mark`] notes the loose object files
//! and snapshot refs there are; if the run fails, [`Vault::discard_since`]
//! deletes the snapshot refs it made and removes the object files it wrote.
//! They are this run's and unreachable (no ref moved to them, or the ref
//! was just deleted), and no other writer runs under the lock, so no grace
//! period is needed for them.

use super::{Vault, VaultError};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The state a writing run started from.
pub struct WriteMark {
    files: HashSet<PathBuf>,
    refs: HashSet<String>,
}

/// Every file directly in `objects` (spool files), in its fan-out
/// directories (loose objects and their temporary files) and in `pack/`
/// (what a fetch writes).
pub(crate) fn object_files(objects: &Path) -> std::io::Result<HashSet<PathBuf>> {
    let mut out = HashSet::new();
    for e in std::fs::read_dir(objects)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let kind = e.file_type()?;
        if kind.is_file() && name.starts_with("tmp_obj_") {
            out.insert(e.path());
        } else if kind.is_dir()
            && (name == "pack" || (name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())))
        {
            for f in std::fs::read_dir(e.path())? {
                let f = f?;
                if f.file_type()?.is_file() {
                    out.insert(f.path());
                }
            }
        }
    }
    Ok(out)
}

impl Vault {
    fn objects_dir(&self) -> PathBuf {
        self.repo.path().join("objects")
    }

    /// Notes what is there before a writing run.
    pub fn mark(&self) -> Result<WriteMark, VaultError> {
        let objects = self.objects_dir();
        let files = object_files(&objects).map_err(|error| VaultError::Io {
            path: objects,
            error,
        })?;
        let refs = self
            .snapshot_refs()?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        Ok(WriteMark { files, refs })
    }

    /// Deletes the snapshot refs made since `mark` and removes the object
    /// files written since; returns the bytes removed. Best effort: what
    /// cannot be removed is left for `git gc`.
    pub fn discard_since(&self, mark: &WriteMark) -> u64 {
        if let Ok(refs) = self.snapshot_refs() {
            for (name, _) in refs {
                if !mark.refs.contains(&name) {
                    let _ = self.delete_snapshot_ref(&name);
                }
            }
        }
        remove_new(&self.objects_dir(), &mark.files)
    }
}

/// Removes the object files under `objects` that are not in `before`;
/// returns the bytes removed.
pub(crate) fn remove_new(objects: &Path, before: &HashSet<PathBuf>) -> u64 {
    let mut freed = 0;
    if let Ok(now) = object_files(objects) {
        for path in now.difference(before) {
            let size = std::fs::symlink_metadata(path)
                .map(|m| m.len())
                .unwrap_or(0);
            if std::fs::remove_file(path).is_ok() {
                freed += size;
            }
        }
    }
    freed
}
