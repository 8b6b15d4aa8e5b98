//! The executor of a control restore plan: files through a temporary file
//! renamed into place, directories' modes and times last, nothing written
//! through a symlink.

use super::{blocked_ancestor, target, Item};
use crate::restore::plan::owner_ids;
use crate::restore::Action;
use crate::source::accounts::Accounts;
use crate::vault::manifest::{Entry, Kind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn cpath(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets owner (when `owners`), mode and mtime of `p` without following a symlink.
fn set_meta(p: &Path, e: &Entry, ids: (u32, u32), owners: bool) -> std::io::Result<()> {
    let c = cpath(p)?;
    if owners {
        // SAFETY: `c` is a valid NUL-terminated path.
        check(unsafe { libc::lchown(c.as_ptr(), ids.0, ids.1) })?;
    }
    if e.kind != Kind::Symlink {
        // After chown, which clears set-id bits.
        // SAFETY: as above; fchmodat without AT_SYMLINK_NOFOLLOW on a path
        // just checked not to be a symlink.
        check(unsafe { libc::fchmodat(libc::AT_FDCWD, c.as_ptr(), e.mode as libc::mode_t, 0) })?;
    }
    let t = libc::timespec {
        tv_sec: e.mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `times` holds two timespecs as utimensat requires.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Creates the missing ancestors of `path` below `to` (0755).
fn make_parents(to: &Path, path: &str) -> std::io::Result<()> {
    if let Some(why) = blocked_ancestor(to, path) {
        return Err(std::io::Error::other(format!(
            "{why}; refusing to write through it"
        )));
    }
    let dest = target(to, path);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

fn write_file(
    dest: &Path,
    data: &[u8],
    e: &Entry,
    ids: (u32, u32),
    owners: bool,
) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".sprayvault-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        set_meta(&tmp, e, ids, owners)?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What the executor did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Applied {
    pub created: usize,
    pub replaced: usize,
    pub updated: usize,
    pub left: usize,
    pub errors: Vec<(String, String)>,
}

/// Carries out `items` (from [`super::plan`] over `entries`) into `to`.
pub fn apply(
    to: &Path,
    entries: &[Entry],
    items: &[Item],
    contents: &BTreeMap<String, Vec<u8>>,
    accounts: &Accounts,
    owners: bool,
) -> Applied {
    let mut done = Applied::default();
    let mut dirs: Vec<&Entry> = Vec::new();
    for (e, item) in entries.iter().zip(items) {
        let ids = owner_ids(e, accounts);
        let dest = target(to, &e.path);
        let r: std::io::Result<()> = (|| {
            match item.action {
                Action::Leave => return Ok(()),
                Action::Update if e.kind == Kind::Dir => {
                    dirs.push(e);
                    return Ok(());
                }
                Action::Update => return set_meta(&dest, e, ids, owners),
                Action::Create | Action::Replace => {}
            }
            make_parents(to, &e.path)?;
            match e.kind {
                Kind::File => {
                    let data = contents
                        .get(&e.path)
                        .ok_or_else(|| std::io::Error::other("no content decrypted"))?;
                    if let Ok(m) = dest.symlink_metadata() {
                        if m.is_dir() {
                            std::fs::remove_dir_all(&dest)?;
                        }
                    }
                    write_file(&dest, data, e, ids, owners)
                }
                Kind::Dir => {
                    if let Ok(m) = dest.symlink_metadata() {
                        if !m.is_dir() {
                            std::fs::remove_file(&dest)?;
                        }
                    }
                    if dest.symlink_metadata().is_err() {
                        std::fs::create_dir(&dest)?;
                    }
                    dirs.push(e);
                    Ok(())
                }
                Kind::Symlink => {
                    if let Ok(m) = dest.symlink_metadata() {
                        if m.is_dir() {
                            std::fs::remove_dir_all(&dest)?;
                        } else {
                            std::fs::remove_file(&dest)?;
                        }
                    }
                    std::os::unix::fs::symlink(e.target.as_deref().unwrap_or_default(), &dest)?;
                    set_meta(&dest, e, ids, owners)
                }
            }
        })();
        match (r, item.action) {
            (Err(err), _) => done.errors.push((e.path.clone(), err.to_string())),
            (Ok(()), Action::Create) => done.created += 1,
            (Ok(()), Action::Replace) => done.replaced += 1,
            (Ok(()), Action::Update) => done.updated += 1,
            (Ok(()), Action::Leave) => done.left += 1,
        }
    }
    // Directory modes and times last, deepest first: writing below a
    // directory changes its mtime, and a 0500 directory blocks writing.
    for e in dirs.iter().rev() {
        let ids = owner_ids(e, accounts);
        if let Err(err) = set_meta(&target(to, &e.path), e, ids, owners) {
            done.errors.push((e.path.clone(), err.to_string()));
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::super::tests::e;
    use super::super::{observe, plan};
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn apply_writes_modes_and_refuses_symlinked_parents() {
        let t = tempfile::tempdir().unwrap();
        let to = t.path().join("out");
        std::fs::create_dir(&to).unwrap();
        let entries = vec![
            e(Kind::Dir, "/inventory/c", 0o750),
            e(Kind::File, "/inventory/c/a", 0o640),
            e(Kind::Symlink, "/inventory/c/l", 0o777),
        ];
        let contents: BTreeMap<String, Vec<u8>> =
            [("/inventory/c/a".to_string(), b"abc".to_vec())].into();
        let observed = observe(&to, &entries);
        let items = plan(&entries, &observed, &contents, false, &|_| (0, 0));
        let done = apply(
            &to,
            &entries,
            &items,
            &contents,
            &Accounts::default(),
            false,
        );
        assert!(done.errors.is_empty(), "{:?}", done.errors);
        assert_eq!(done.created, 3);
        let m = std::fs::metadata(to.join("inventory/c/a")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o640, 100));
        assert_eq!(std::fs::read(to.join("inventory/c/a")).unwrap(), b"abc");
        assert_eq!(
            std::fs::metadata(to.join("inventory/c")).unwrap().mode() & 0o7777,
            0o750
        );
        assert_eq!(
            std::fs::read_link(to.join("inventory/c/l")).unwrap(),
            Path::new("/x")
        );
        // A second run leaves everything alone.
        let items = plan(&entries, &observe(&to, &entries), &contents, false, &|_| {
            (0, 0)
        });
        assert!(items.iter().all(|i| i.action == Action::Leave), "{items:?}");

        // A symlinked parent is never written through.
        let other = t.path().join("out2");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(other.join("inventory")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, other.join("inventory/c")).unwrap();
        let observed = observe(&other, &entries);
        let items = plan(&entries, &observed, &contents, false, &|_| (0, 0));
        assert_eq!(items[1].action, Action::Replace);
        let done = apply(
            &other,
            &entries[1..2],
            &items[1..2],
            &contents,
            &Accounts::default(),
            false,
        );
        assert_eq!(done.errors.len(), 1);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
