//! Writing files and metadata on a node so that a local account there can
//! neither read them early nor redirect them.
//!
//! Invariants:
//! - a file is created exclusively by the SFTP server (umask 077: 0600 from
//!   its creation, no window where the recorded mode or owner applies to a
//!   half-written file), filled, and given its owner, mode and times on the
//!   open handle (fsetstat) before it is renamed into place;
//! - when the file's directory can be changed by an account other than root
//!   (owned by it, or group/other-writable), the file is staged in a fresh
//!   root-only directory beside the nearest root-only ancestor, so nobody can
//!   open, swap or watch it before the rename;
//! - metadata is set by path only below directories that only root can
//!   change, on something that lstat shows is not a symlink: nobody else can
//!   swap it in between, so nothing is followed.

use super::{Meta, Remote, SourceError};
use crate::paths::parent;
use crate::vault::manifest::Kind;
use openssh_sftp_client::metadata::{MetaDataBuilder, Permissions};
use openssh_sftp_client::UnixTimeStamp;

/// Owner, mode and modification time to give a file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
}

/// Prefix of the root-only directories files are staged in.
pub const STAGE_PREFIX: &str = ".sprayvault-stage-";

/// Whether only root can change the entries of a directory with `m`.
pub fn root_only(m: &Meta) -> bool {
    m.kind == Some(Kind::Dir) && m.uid == 0 && m.mode & 0o022 == 0
}

/// How far down a directory's path only root can change things.
#[derive(Debug, PartialEq, Eq)]
pub enum Chain {
    /// `/`, every ancestor and the directory itself are root-only.
    RootOnly,
    /// Every component above `first` is root-only, `first` is not (or is not
    /// a directory); `safe` is its parent.
    OpenAt { safe: String, first: String },
}

/// The directories from `/` down to `dir` itself (`/` excluded).
pub fn components(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        out.push(cur.clone());
    }
    out
}

/// Decides [`Chain`] from the lstat of `/` and of each of [`components`].
pub fn chain_of(dir: &str, root: Option<&Meta>, metas: &[Option<Meta>]) -> Chain {
    if !root.is_some_and(root_only) {
        return Chain::OpenAt {
            safe: "/".into(),
            first: "/".into(),
        };
    }
    let comps = components(dir);
    for (i, m) in metas.iter().enumerate() {
        if !m.as_ref().is_some_and(root_only) {
            let safe = if i == 0 {
                "/".to_string()
            } else {
                comps[i - 1].clone()
            };
            return Chain::OpenAt {
                safe,
                first: comps[i].clone(),
            };
        }
    }
    Chain::RootOnly
}

fn refuse(node: &str, path: &str, why: String) -> SourceError {
    SourceError::Io {
        node: node.to_string(),
        path: path.to_string(),
        why,
    }
}

impl Remote {
    /// How far down `dir` only root can change things on the node.
    pub async fn chain(&self, dir: &str) -> Result<Chain, SourceError> {
        let comps = components(dir);
        let (root, metas) = futures_util::join!(
            self.lstat("/"),
            futures_util::future::join_all(comps.iter().map(|c| self.lstat(c)))
        );
        let metas = metas.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(chain_of(dir, root?.as_ref(), &metas))
    }

    /// Writes `data` to `path` with `attrs`, atomically and privately (see the
    /// module's invariants). Refuses when a directory above the file's own
    /// can be changed by an account other than root.
    pub async fn write_private(
        &self,
        path: &str,
        data: &[u8],
        attrs: Attrs,
    ) -> Result<(), SourceError> {
        let node = &self.target.node;
        let dir = parent(path);
        let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
        let nonce: u128 = rand::random();
        let (tmp, stage) = match self.chain(dir).await? {
            Chain::RootOnly => {
                self.sweep(dir).await?;
                let d = if dir == "/" { "" } else { dir };
                (format!("{d}/.{name}.sprayvault-{nonce:032x}"), None)
            }
            Chain::OpenAt { safe, first } if first == dir && safe != first => {
                self.sweep(&safe).await?;
                let s = if safe == "/" { "" } else { safe.as_str() };
                let stage = format!("{s}/{STAGE_PREFIX}{nonce:032x}");
                self.make_private_dir(&stage).await?;
                (format!("{stage}/{name}"), Some(stage))
            }
            Chain::OpenAt { first, .. } => {
                return Err(refuse(
                    node,
                    path,
                    format!("{first} can be changed by an account other than root, above the file's directory; refusing to write through it (make {first} root-owned and not group/other-writable, or restore the file by hand)"),
                ))
            }
        };
        let written = async {
            self.fill_new(&tmp, data, attrs).await?;
            self.rename(&tmp, path).await
        }
        .await;
        if written.is_err() {
            let _ = self.remove_file(&tmp).await;
        }
        if let Some(stage) = stage {
            let _ = self.sftp.fs().remove_dir(&stage).await;
        }
        written
    }

    /// Removes, once per connection, what a cut-off earlier run left in the
    /// root-only directory `dir`: its temporary files and staging
    /// directories (only root can have made them there, and their names say
    /// whose they are).
    async fn sweep(&self, dir: &str) -> Result<(), SourceError> {
        if !self
            .swept
            .lock()
            .expect("never poisoned")
            .insert(dir.to_string())
        {
            return Ok(());
        }
        let d = if dir == "/" { "" } else { dir };
        for (name, m) in self.list(dir).await? {
            let path = format!("{d}/{name}");
            match leftover(&name) {
                Some(Kind::File) if m.kind == Some(Kind::File) => self.remove_file(&path).await?,
                Some(Kind::Dir) if m.kind == Some(Kind::Dir) && m.uid == 0 => {
                    for (inner, im) in self.list(&path).await? {
                        if im.kind != Some(Kind::Dir) {
                            self.remove_file(&format!("{path}/{inner}")).await?;
                        }
                    }
                    self.sftp
                        .fs()
                        .remove_dir(&path)
                        .await
                        .map_err(|e| self.io(&path, e))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Creates a directory exclusively (it must not exist: a name someone
    /// else made first is an error) and checks that it is root's and private.
    pub async fn make_private_dir(&self, stage: &str) -> Result<(), SourceError> {
        self.mkdir(stage).await?;
        match self.lstat(stage).await? {
            Some(m) if m.kind == Some(Kind::Dir) && m.uid == 0 && m.mode & 0o077 == 0 => Ok(()),
            _ => {
                let _ = self.sftp.fs().remove_dir(stage).await;
                Err(refuse(
                    &self.target.node,
                    stage,
                    "the directory is not root's and private after creating it (does the SFTP server run as root with -u 077?)".into(),
                ))
            }
        }
    }

    /// Creates `path` exclusively, writes `data`, sets `attrs` on the handle
    /// and syncs it.
    async fn fill_new(&self, path: &str, data: &[u8], attrs: Attrs) -> Result<(), SourceError> {
        let mut opts = self.sftp.options();
        opts.write(true).create_new(true).mode(0o600);
        let mut f = opts.open(path).await.map_err(|e| self.io(path, e))?;
        f.write_all(data).await.map_err(|e| self.io(path, e))?;
        // chown first: it clears setuid/setgid bits, which chmod then restores.
        f.set_metadata(MetaDataBuilder::new().id((attrs.uid, attrs.gid)).create())
            .await
            .map_err(|e| self.io(path, e))?;
        f.set_metadata(mode_and_time(attrs))
            .await
            .map_err(|e| self.io(path, e))?;
        if self.sftp.support_fsync() {
            f.sync_all().await.map_err(|e| self.io(path, e))?;
        }
        f.close().await.map_err(|e| self.io(path, e))
    }

    /// Sets owner, group, mode and mtime of an existing file or directory by
    /// path, only when only root can change its directory and it is not a
    /// symlink (so nothing can be swapped in and followed).
    pub async fn set_meta(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    ) -> Result<(), SourceError> {
        let node = &self.target.node;
        if let Chain::OpenAt { first, .. } = self.chain(parent(path)).await? {
            return Err(refuse(
                node,
                path,
                format!("{first} can be changed by an account other than root; refusing to set owner and mode through it (set them by hand)"),
            ));
        }
        match self.lstat(path).await?.and_then(|m| m.kind) {
            Some(Kind::Dir) | Some(Kind::File) => {}
            _ => {
                return Err(refuse(
                    node,
                    path,
                    "is no longer a file or directory (a symlink?); not following it".into(),
                ))
            }
        }
        let mut fs = self.sftp.fs();
        let attrs = Attrs {
            mode,
            uid,
            gid,
            mtime,
        };
        fs.set_metadata(path, MetaDataBuilder::new().id((uid, gid)).create())
            .await
            .map_err(|e| self.io(path, e))?;
        fs.set_metadata(path, mode_and_time(attrs))
            .await
            .map_err(|e| self.io(path, e))
    }
}

/// What kind of leftover of [`Remote::write_private`] `name` is: a temporary
/// file `.NAME.sprayvault-<32 hex>` or a staging directory.
pub fn leftover(name: &str) -> Option<Kind> {
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if name.strip_prefix(STAGE_PREFIX).is_some_and(hex32) {
        return Some(Kind::Dir);
    }
    let (head, nonce) = name.rsplit_once(".sprayvault-")?;
    (head.starts_with('.') && head.len() > 1 && hex32(nonce)).then_some(Kind::File)
}

fn mode_and_time(attrs: Attrs) -> openssh_sftp_client::metadata::MetaData {
    let mut b = MetaDataBuilder::new();
    b.permissions(Permissions::from((attrs.mode & 0o7777) as u16));
    if let Some(t) = attrs
        .mtime
        .and_then(|t| u32::try_from(t).ok())
        .and_then(UnixTimeStamp::from_raw)
    {
        b.time(t, t);
    }
    b.create()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(uid: u32, mode: u32) -> Option<Meta> {
        Some(Meta {
            kind: Some(Kind::Dir),
            mode,
            uid,
            gid: 0,
            size: 0,
            mtime: 0,
        })
    }

    #[test]
    fn a_root_only_path_needs_no_staging() {
        let root = dir(0, 0o755);
        let c = chain_of(
            "/etc/kubernetes",
            root.as_ref(),
            &[dir(0, 0o755), dir(0, 0o700)],
        );
        assert_eq!(c, Chain::RootOnly);
    }

    #[test]
    fn a_directory_owned_by_another_account_is_open() {
        let root = dir(0, 0o755);
        let c = chain_of(
            "/etc/kubernetes/ssl",
            root.as_ref(),
            &[dir(0, 0o755), dir(0, 0o755), dir(10011, 0o755)],
        );
        assert_eq!(
            c,
            Chain::OpenAt {
                safe: "/etc/kubernetes".into(),
                first: "/etc/kubernetes/ssl".into()
            }
        );
    }

    #[test]
    fn world_or_group_writable_directories_are_open_even_when_root_owns_them() {
        let root = dir(0, 0o755);
        for mode in [0o1777, 0o775, 0o757] {
            let c = chain_of("/var/tmp", root.as_ref(), &[dir(0, 0o755), dir(0, mode)]);
            assert_eq!(
                c,
                Chain::OpenAt {
                    safe: "/var".into(),
                    first: "/var/tmp".into()
                },
                "{mode:o}"
            );
        }
    }

    #[test]
    fn a_symlink_or_missing_component_is_open() {
        let root = dir(0, 0o755);
        let link = Some(Meta {
            kind: Some(Kind::Symlink),
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
        });
        let c = chain_of("/etc/pki", root.as_ref(), &[dir(0, 0o755), link]);
        assert!(matches!(c, Chain::OpenAt { first, .. } if first == "/etc/pki"));
        let c = chain_of("/etc/x", root.as_ref(), &[dir(0, 0o755), None]);
        assert!(matches!(c, Chain::OpenAt { first, .. } if first == "/etc/x"));
    }

    #[test]
    fn only_the_names_of_its_own_leftovers_are_swept() {
        let n = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            leftover(&format!(".ca.key.sprayvault-{n}")),
            Some(Kind::File)
        );
        assert_eq!(leftover(&format!(".sprayvault-stage-{n}")), Some(Kind::Dir));
        for other in [
            "ca.key".to_string(),
            format!("ca.key.sprayvault-{n}"),
            format!(".ca.key.sprayvault-{}", &n[..16]),
            format!(".sprayvault-stage-{n}x"),
            format!("..sprayvault-{n}x"),
        ] {
            assert_eq!(leftover(&other), None, "{other}");
        }
    }

    #[test]
    fn the_root_directory_itself_is_checked() {
        assert_eq!(
            chain_of("/", dir(5, 0o755).as_ref(), &[]),
            Chain::OpenAt {
                safe: "/".into(),
                first: "/".into()
            }
        );
        assert_eq!(chain_of("/", dir(0, 0o755).as_ref(), &[]), Chain::RootOnly);
    }
}
