//! One live connection to a node: an OpenSSH session, an SFTP server running
//! on the node (as root through `sudo -n` when needed), and the node's account
//! names.

use super::accounts::Accounts;
use super::{chain, hint_for, SourceError, SshOptions, Target};
use crate::vault::manifest::Kind;
use futures_util::StreamExt;
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::metadata::{MetaData, MetaDataBuilder, Permissions};
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use std::sync::Arc;

mod stream;
pub use stream::Upload;

/// Starts the first SFTP server found at the usual places (Debian, RHEL, Arch, Alpine).
const SFTP_SERVER: &str = "sh -c 'for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server; do if [ -x \"$p\" ]; then exec \"$p\"; fi; done; echo \"no sftp-server found\" >&2; exit 127'";

/// Metadata of one path on a node (from lstat: links are not followed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// None for sockets, fifos and devices.
    pub kind: Option<Kind>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
}

impl Meta {
    fn from_sftp(m: &MetaData) -> Meta {
        let kind = m.file_type().and_then(|t| {
            if t.is_dir() {
                Some(Kind::Dir)
            } else if t.is_file() {
                Some(Kind::File)
            } else if t.is_symlink() {
                Some(Kind::Symlink)
            } else {
                None
            }
        });
        Meta {
            kind,
            mode: m
                .permissions()
                .map(|p| p.as_raw().bits() & 0o7777)
                .unwrap_or(0),
            uid: m.uid().unwrap_or(0),
            gid: m.gid().unwrap_or(0),
            size: m.len().unwrap_or(0),
            mtime: m.modified().map(|t| t.into_raw() as i64).unwrap_or(0),
        }
    }
}

pub struct Remote {
    pub target: Target,
    session: Arc<Session>,
    sftp: Sftp,
    server: openssh::Child<Arc<Session>>,
    pub accounts: Accounts,
    /// Commands and files go through `sudo -n`.
    sudo: bool,
}

fn is_missing(e: &SftpError) -> bool {
    matches!(e, SftpError::SftpError(SftpErrorKind::NoSuchFile, _))
}

impl Remote {
    /// Connects, checks sudo if needed, starts the SFTP server and reads the
    /// node's account names.
    pub async fn connect(target: &Target, opts: &SshOptions) -> Result<Remote, SourceError> {
        let node = target.node.clone();
        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .connect_timeout(opts.connect_timeout)
            .control_directory(std::env::temp_dir());
        if let Some(f) = &opts.config_file {
            b.config_file(f);
        }
        if let Some(p) = target.port {
            b.port(p);
        }
        if let Some(u) = &target.user {
            b.user(u.clone());
        }
        if let Some(k) = &target.key_file {
            b.keyfile(k);
        }
        let session = b.connect(&target.address).await.map_err(|e| {
            let why = chain(&e);
            SourceError::Connect {
                node: node.clone(),
                target: target.display(),
                hint: hint_for(&why),
                why,
            }
        })?;
        let session = Arc::new(session);

        let uid = run(&session, &node, "id -u", "checking the remote user").await?;
        let sudo = target.become_ && uid.trim() != "0";
        if sudo {
            let out = session
                .raw_command("sudo -n true")
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| SourceError::Command {
                    node: node.clone(),
                    what: "sudo -n true".into(),
                    why: chain(&e),
                })?;
            if !out.status.success() {
                let user = target
                    .user
                    .clone()
                    .unwrap_or_else(|| format!("uid {}", uid.trim()));
                let why = String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', " ");
                return Err(SourceError::Sudo {
                    node,
                    user,
                    why: if why.is_empty() {
                        "sudo failed".into()
                    } else {
                        why
                    },
                });
            }
        }
        let cmd = if sudo {
            format!("sudo -n {SFTP_SERVER}")
        } else {
            SFTP_SERVER.to_string()
        };
        let mut server = Arc::clone(&session)
            .arc_raw_command(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .await
            .map_err(|e| SourceError::Sftp {
                node: node.clone(),
                why: chain(&e),
            })?;
        let stdin = server.stdin().take().expect("stdin was piped");
        let stdout = server.stdout().take().expect("stdout was piped");
        let sftp = Sftp::new(stdin, stdout, SftpOptions::default())
            .await
            .map_err(|e| SourceError::Sftp {
                node: node.clone(),
                why: chain(&e),
            })?;
        let mut remote = Remote {
            target: target.clone(),
            session,
            sftp,
            server,
            accounts: Accounts::default(),
            sudo,
        };
        let passwd = remote
            .read_optional("/etc/passwd")
            .await?
            .unwrap_or_default();
        let group = remote
            .read_optional("/etc/group")
            .await?
            .unwrap_or_default();
        remote.accounts = Accounts::from_files(
            &String::from_utf8_lossy(&passwd),
            &String::from_utf8_lossy(&group),
        );
        Ok(remote)
    }

    fn io(&self, path: &str, e: SftpError) -> SourceError {
        SourceError::Io {
            node: self.target.node.clone(),
            path: path.to_string(),
            why: chain(&e),
        }
    }

    /// The node's hostname (`uname -n`).
    pub async fn hostname(&self) -> Result<String, SourceError> {
        Ok(run(
            &self.session,
            &self.target.node,
            "uname -n",
            "reading the hostname",
        )
        .await?
        .trim()
        .to_string())
    }

    /// Runs a fixed command line on the node (through `sudo -n` when the
    /// connection needs it). Callers build `cmd` only from quoted values.
    pub async fn run_privileged(&self, cmd: &str, what: &str) -> Result<String, SourceError> {
        let full = if self.sudo {
            format!("sudo -n sh -c {}", shell_quote(cmd))
        } else {
            cmd.to_string()
        };
        run(&self.session, &self.target.node, &full, what).await
    }

    /// lstat; `None` when the path does not exist.
    pub async fn lstat(&self, path: &str) -> Result<Option<Meta>, SourceError> {
        match self.sftp.fs().symlink_metadata(path).await {
            Ok(m) => Ok(Some(Meta::from_sftp(&m))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.io(path, e)),
        }
    }

    /// The entries of a directory (without `.` and `..`), with their lstat metadata.
    pub async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, SourceError> {
        let dir = self
            .sftp
            .fs()
            .open_dir(path)
            .await
            .map_err(|e| self.io(path, e))?;
        let mut stream = std::pin::pin!(dir.read_dir());
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let item = item.map_err(|e| self.io(path, e))?;
            let name = item.filename().to_string_lossy().to_string();
            if name == "." || name == ".." {
                continue;
            }
            out.push((name, Meta::from_sftp(&item.metadata())));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub async fn read_link(&self, path: &str) -> Result<String, SourceError> {
        let t = self
            .sftp
            .fs()
            .read_link(path)
            .await
            .map_err(|e| self.io(path, e))?;
        Ok(t.to_string_lossy().to_string())
    }

    pub async fn read(&self, path: &str) -> Result<Vec<u8>, SourceError> {
        let b = self
            .sftp
            .fs()
            .read(path)
            .await
            .map_err(|e| self.io(path, e))?;
        Ok(b.to_vec())
    }

    async fn read_optional(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.sftp.fs().read(path).await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.io(path, e)),
        }
    }

    /// Creates `path` exclusively (fails if it exists) with `data`, mode 0600
    /// while being written, and syncs it to disk.
    pub async fn write_new(&self, path: &str, data: &[u8]) -> Result<(), SourceError> {
        let mut opts = self.sftp.options();
        opts.write(true).create_new(true);
        let mut f = opts.open(path).await.map_err(|e| self.io(path, e))?;
        f.set_permissions(Permissions::from(0o600u16))
            .await
            .map_err(|e| self.io(path, e))?;
        f.write_all(data).await.map_err(|e| self.io(path, e))?;
        if self.sftp.support_fsync() {
            f.sync_all().await.map_err(|e| self.io(path, e))?;
        }
        f.close().await.map_err(|e| self.io(path, e))?;
        Ok(())
    }

    /// Sets owner, group, permission bits and (for non-links) mtime.
    pub async fn set_meta(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    ) -> Result<(), SourceError> {
        let mut fs = self.sftp.fs();
        // chown first: it clears setuid/setgid bits, which chmod then restores.
        let owner = MetaDataBuilder::new().id((uid, gid)).create();
        fs.set_metadata(path, owner)
            .await
            .map_err(|e| self.io(path, e))?;
        let mut b = MetaDataBuilder::new();
        b.permissions(Permissions::from((mode & 0o7777) as u16));
        if let Some(t) = mtime
            .and_then(|t| u32::try_from(t).ok())
            .and_then(openssh_sftp_client::UnixTimeStamp::from_raw)
        {
            b.time(t, t);
        }
        fs.set_metadata(path, b.create())
            .await
            .map_err(|e| self.io(path, e))
    }

    pub async fn mkdir(&self, path: &str) -> Result<(), SourceError> {
        self.sftp
            .fs()
            .create_dir(path)
            .await
            .map_err(|e| self.io(path, e))
    }

    /// Atomically replaces `to` with `from` (posix-rename).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), SourceError> {
        self.sftp
            .fs()
            .rename(from, to)
            .await
            .map_err(|e| self.io(to, e))
    }

    /// Creates a symlink at `path` pointing to `target`.
    pub async fn symlink(&self, target: &str, path: &str) -> Result<(), SourceError> {
        // OpenSSH's sftp-server swaps the arguments of SSH_FXP_SYMLINK relative
        // to the draft; the client library sends (target, linkpath) in the
        // order OpenSSH expects when given (target, path).
        self.sftp
            .fs()
            .symlink(target, path)
            .await
            .map_err(|e| self.io(path, e))
    }

    pub async fn remove_file(&self, path: &str) -> Result<(), SourceError> {
        self.sftp
            .fs()
            .remove_file(path)
            .await
            .map_err(|e| self.io(path, e))
    }

    /// Ends the SFTP server and the ssh session.
    pub async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self.server.wait().await;
        if let Ok(s) = Arc::try_unwrap(self.session) {
            let _ = s.close().await;
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("target", &self.target)
            .finish()
    }
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

async fn run(session: &Session, node: &str, cmd: &str, what: &str) -> Result<String, SourceError> {
    let out = session
        .raw_command(cmd)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| SourceError::Command {
            node: node.into(),
            what: what.into(),
            why: chain(&e),
        })?;
    if !out.status.success() {
        return Err(SourceError::Command {
            node: node.into(),
            what: what.into(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}
