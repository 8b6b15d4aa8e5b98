//! Reading the control host's files: each root recursively, symlinks as
//! links (never followed), with owners by name from this host's accounts.
//! An entry that cannot be read is a per-entry error; the rest is read.

use crate::paths::{check_link_target, check_path};
use crate::source::accounts::Accounts;
use crate::vault::mac::MacKey;
use crate::vault::manifest::{Entry, Kind};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// An entry read, with its content for regular files.
pub struct LocalEntry {
    pub entry: Entry,
    pub content: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct LocalRead {
    pub entries: Vec<LocalEntry>,
    /// `(control-relative path, reason)`.
    pub errors: Vec<(String, String)>,
}

/// This host's user and group names.
pub fn accounts() -> Accounts {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    Accounts::from_files(&read("/etc/passwd"), &read("/etc/group"))
}

fn entry(meta: &std::fs::Metadata, kind: Kind, rel: &str, accounts: &Accounts) -> Entry {
    Entry {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        owner: accounts.user_name(meta.uid()).map(str::to_string),
        group: accounts.group_name(meta.gid()).map(str::to_string),
        size: if kind == Kind::Dir { 0 } else { meta.size() },
        mtime: meta.mtime(),
        mac: None,
        path: rel.to_string(),
        target: None,
    }
}

/// Reads a regular file without following a symlink put in its place.
fn read_file(src: &Path) -> std::io::Result<(std::fs::Metadata, Vec<u8>)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(src)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("no longer a regular file"));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut data)?;
    Ok((meta, data))
}

/// Reads `src` (recorded as `rel`) and everything below it into `out`.
pub fn read_tree(src: &Path, rel: &str, accounts: &Accounts, key: &MacKey, out: &mut LocalRead) {
    if let Err(e) = check_path(rel) {
        out.errors
            .push((rel.escape_debug().to_string(), e.to_string()));
        return;
    }
    let meta = match src.symlink_metadata() {
        Ok(m) => m,
        Err(e) => {
            out.errors.push((rel.to_string(), e.to_string()));
            return;
        }
    };
    let ft = meta.file_type();
    if ft.is_file() {
        match read_file(src) {
            Ok((meta, data)) => {
                let mut e = entry(&meta, Kind::File, rel, accounts);
                e.size = data.len() as u64;
                e.mac = Some(key.mac(&data));
                out.entries.push(LocalEntry {
                    entry: e,
                    content: Some(data),
                });
            }
            Err(e) => out.errors.push((rel.to_string(), e.to_string())),
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let t = t
                    .to_str()
                    .ok_or("the link target is not UTF-8")?
                    .to_string();
                check_link_target(&t).map_err(|e| e.to_string())?;
                Ok(t)
            });
        match target {
            Ok(t) => {
                let mut e = entry(&meta, Kind::Symlink, rel, accounts);
                e.mode = 0o777;
                e.size = t.len() as u64;
                e.target = Some(t);
                out.entries.push(LocalEntry {
                    entry: e,
                    content: None,
                });
            }
            Err(why) => out.errors.push((rel.to_string(), why)),
        }
    } else if ft.is_dir() {
        let mut names = Vec::new();
        match std::fs::read_dir(src) {
            Ok(it) => {
                for d in it {
                    match d {
                        Ok(d) => names.push(d.file_name()),
                        Err(e) => out.errors.push((rel.to_string(), e.to_string())),
                    }
                }
            }
            Err(e) => {
                out.errors.push((rel.to_string(), e.to_string()));
                return;
            }
        }
        out.entries.push(LocalEntry {
            entry: entry(&meta, Kind::Dir, rel, accounts),
            content: None,
        });
        names.sort();
        for n in names {
            let Some(name) = n.to_str() else {
                out.errors.push((
                    format!("{rel}/{}", n.to_string_lossy()),
                    "the name is not UTF-8; skipped".into(),
                ));
                continue;
            };
            // A git repository's own metadata is not inventory.
            if name == ".git" {
                continue;
            }
            read_tree(
                &src.join(name),
                &format!("{rel}/{name}"),
                accounts,
                key,
                out,
            );
        }
    } else {
        out.errors.push((
            rel.to_string(),
            "not a regular file, directory or symlink; skipped".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_files_dirs_and_links_without_following() {
        let t = tempfile::tempdir().unwrap();
        let inv = t.path().join("mycluster");
        std::fs::create_dir_all(inv.join("credentials")).unwrap();
        std::fs::create_dir_all(inv.join(".git")).unwrap();
        std::fs::write(inv.join("hosts.yaml"), "all: {}\n").unwrap();
        std::fs::write(inv.join("credentials/token.creds"), "s3cret").unwrap();
        std::fs::set_permissions(
            inv.join("credentials/token.creds"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", inv.join("link")).unwrap();
        let key = MacKey::generate();
        let mut out = LocalRead::default();
        read_tree(&inv, "/inventory/mycluster", &accounts(), &key, &mut out);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let paths: Vec<(&str, char, u32)> = out
            .entries
            .iter()
            .map(|e| (e.entry.path.as_str(), e.entry.kind.letter(), e.entry.mode))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/inventory/mycluster", 'd', paths[0].2),
                ("/inventory/mycluster/credentials", 'd', paths[1].2),
                ("/inventory/mycluster/credentials/token.creds", 'f', 0o600),
                ("/inventory/mycluster/hosts.yaml", 'f', paths[3].2),
                ("/inventory/mycluster/link", 'l', 0o777),
            ]
        );
        assert_eq!(out.entries[4].entry.target.as_deref(), Some("/etc/passwd"));
        assert_eq!(out.entries[2].content.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(out.entries[2].entry.mac, Some(key.mac(b"s3cret")));
    }
}
