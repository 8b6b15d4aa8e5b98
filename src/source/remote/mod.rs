//! One live connection to a node: a single `ssh` process whose only channel
//! is an SFTP server on the node (as root through `sudo -n` when needed), and
//! the node's account names. Commands (etcd snapshots and restores) start an
//! `ssh` process of their own each; file access never does.

use super::accounts::Accounts;
use super::{chain, hint_for, SourceError, SshOptions, Target};
use crate::vault::manifest::Kind;
use commands::Sudo;
use futures_util::StreamExt;
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::metadata::MetaData;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::task::JoinHandle;

mod commands;
mod private;
mod read;
mod ssh;
mod stream;
mod watch;
pub use commands::{Commands, Finished};
pub use private::{chain_of, components, root_only, Attrs, Chain, STAGE_PREFIX};
pub use stream::Upload;
pub use watch::Watch;

/// How much of ssh's stderr is kept for error messages.
const STDERR_KEPT: usize = 16 << 10;

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
    /// Command lines, each in an `ssh` process of its own.
    pub commands: Commands,
    sftp: Sftp,
    /// The `ssh` process carrying the SFTP channel.
    child: Child,
    stderr: JoinHandle<Vec<u8>>,
    pub accounts: Accounts,
    /// Directories already cleared of an earlier run's leftovers.
    swept: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// What the SFTP server answered, to tell it stuck in an open.
    watch: std::sync::Arc<Watch>,
    /// How it was connected, to connect again.
    opts: SshOptions,
    read_only: bool,
}

fn is_missing(e: &SftpError) -> bool {
    matches!(e, SftpError::SftpError(SftpErrorKind::NoSuchFile, _))
}

impl Remote {
    /// Connects with one `ssh` process that starts the SFTP server (through
    /// `sudo -n` if needed) and reads the node's account names over it.
    pub async fn connect(target: &Target, opts: &SshOptions) -> Result<Remote, SourceError> {
        Remote::connect_with(target, opts, false).await
    }

    /// Like [`Remote::connect`], with an SFTP server that only reads
    /// (`sftp-server -R`): what a backup needs.
    pub async fn connect_read_only(
        target: &Target,
        opts: &SshOptions,
    ) -> Result<Remote, SourceError> {
        Remote::connect_with(target, opts, true).await
    }

    async fn connect_with(
        target: &Target,
        opts: &SshOptions,
        read_only: bool,
    ) -> Result<Remote, SourceError> {
        let node = target.node.clone();
        let ssh_args = ssh::args(target, opts);
        let mut cmd = ssh::command(&ssh_args);
        cmd.arg(ssh::sftp_command(target.become_, read_only))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| SourceError::Connect {
            node: node.clone(),
            target: target.display(),
            why: format!("cannot start ssh: {e}"),
            hint: "install the OpenSSH client (ssh) on this host",
        })?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let mut stdout = child.stdout.take().expect("stdout was piped");
        let stderr = tokio::spawn(keep_stderr(child.stderr.take().expect("stderr was piped")));
        // ConnectTimeout bounds the TCP connect only; this bounds the login.
        let limit = opts.connect_timeout + Duration::from_secs(30);
        let header = tokio::time::timeout(limit, read_header(&mut stdout))
            .await
            .unwrap_or_default();
        let Some(header) = header else {
            let mut why = failure(child, stderr).await;
            if why.is_empty() {
                why = "ssh exited without a word".into();
            }
            if why.contains(ssh::NO_SERVER) {
                return Err(SourceError::Sftp { node, why });
            }
            return Err(SourceError::Connect {
                node,
                target: target.display(),
                hint: hint_for(&why),
                why,
            });
        };
        let sftp = match Sftp::new(stdin, stdout, SftpOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                let said = failure(child, stderr).await;
                let why = if said.is_empty() { chain(&e) } else { said };
                if header.sudo {
                    let user = target.user.clone().unwrap_or_else(|| {
                        header
                            .uid
                            .map_or("the remote user".into(), |u| format!("uid {u}"))
                    });
                    return Err(SourceError::Sudo { node, user, why });
                }
                return Err(SourceError::Sftp { node, why });
            }
        };
        let mut remote = Remote {
            target: target.clone(),
            commands: Commands::with(
                target,
                ssh_args,
                if header.sudo {
                    Sudo::Always
                } else {
                    Sudo::Never
                },
            ),
            sftp,
            child,
            stderr,
            accounts: Accounts::default(),
            swept: Default::default(),
            watch: Watch::new(),
            opts: opts.clone(),
            read_only,
        };
        let (passwd, group) = futures_util::join!(
            remote.read_optional("/etc/passwd"),
            remote.read_optional("/etc/group")
        );
        remote.accounts = Accounts::from_files(
            &String::from_utf8_lossy(&passwd?.unwrap_or_default()),
            &String::from_utf8_lossy(&group?.unwrap_or_default()),
        );
        Ok(remote)
    }

    /// What this connection's SFTP server answered; see [`Watch`].
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// Cuts this connection (its `ssh` is killed, whatever its server is
    /// stuck in) and connects again the same way.
    pub async fn reconnect(&mut self) -> Result<(), SourceError> {
        let fresh = Remote::connect_with(&self.target, &self.opts, self.read_only).await?;
        let old = std::mem::replace(self, fresh);
        let mut child = old.child;
        let _ = child.kill().await;
        old.stderr.abort();
        Ok(())
    }

    fn io(&self, path: &str, e: SftpError) -> SourceError {
        SourceError::Io {
            node: self.target.node.clone(),
            path: path.to_string(),
            why: chain(&e),
        }
    }

    /// The node's hostname (`uname -n`), read over SFTP where Linux keeps it;
    /// control and format characters escaped (it reaches terminals).
    pub async fn hostname(&self) -> Result<String, SourceError> {
        let name = match self.read_optional("/proc/sys/kernel/hostname").await? {
            Some(b) if !b.is_empty() => String::from_utf8_lossy(&b).to_string(),
            _ => {
                self.commands
                    .run("uname -n", "reading the hostname")
                    .await?
            }
        };
        Ok(crate::term::escape(name.trim()).into_owned())
    }

    /// Runs a fixed command line on the node (through `sudo -n` when the
    /// connection needs it), in an `ssh` process of its own. Callers build
    /// `cmd` only from quoted values.
    pub async fn run_privileged(&self, cmd: &str, what: &str) -> Result<String, SourceError> {
        self.commands.run_privileged(cmd, what).await
    }

    /// Like [`Remote::run_privileged`], handing the command's standard output
    /// to `sink` in pieces of at most `piece` bytes as it arrives; returns the
    /// bytes seen. See [`Commands::stream_privileged`].
    pub async fn stream_privileged<F, E>(
        &self,
        cmd: &str,
        what: &str,
        piece: usize,
        sink: F,
    ) -> Result<u64, SourceError>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
        E: std::fmt::Display,
    {
        Ok(self
            .commands
            .stream_privileged(cmd, what, piece, sink)
            .await?
            .bytes)
    }

    /// lstat; `None` when the path does not exist.
    pub async fn lstat(&self, path: &str) -> Result<Option<Meta>, SourceError> {
        let got = self.sftp.fs().symlink_metadata(path).await;
        self.watch.answered();
        match got {
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
        self.watch.answered();
        let mut stream = std::pin::pin!(dir.read_dir());
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            self.watch.answered();
            let item = item.map_err(|e| self.io(path, e))?;
            let name = item.filename().to_string_lossy().to_string();
            if name == "." || name == ".." {
                continue;
            }
            if out.len() >= MAX_LISTING {
                return Err(SourceError::Io {
                    node: self.target.node.clone(),
                    path: path.to_string(),
                    why: format!("has more than {MAX_LISTING} entries, more than any directory kubespray writes; not read (check the node)"),
                });
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
        self.watch.answered();
        Ok(t.to_string_lossy().to_string())
    }

    /// Reads the regular file `path`, at most `limit` bytes: the open
    /// handle must be a regular file (fstat on the handle, so nothing swapped
    /// in after a check is read) no larger than `limit`, and reading stops
    /// past it, so a node cannot make the caller hold more than it asked for.
    pub async fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        match self.read_capped(path, limit).await? {
            Some(data) => Ok(data),
            None => Err(SourceError::Io {
                node: self.target.node.clone(),
                path: path.to_string(),
                why: "does not exist".into(),
            }),
        }
    }

    /// Reads a small file of the node (its accounts, its hostname), at most
    /// [`SMALL_FILE_LIMIT`] bytes: a node serving a huge or endless one is
    /// refused by name, in bounded memory. `None` when it does not exist.
    async fn read_optional(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        self.read_capped(path, SMALL_FILE_LIMIT).await
    }

    async fn read_capped(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let refused = |why: String| SourceError::Io {
            node: self.target.node.clone(),
            path: path.to_string(),
            why,
        };
        let too_large = || {
            refused(format!(
                "is larger than the {limit} bytes expected here; not read (check the node)"
            ))
        };
        let mut f = match self.sftp.options().read(true).open(path).await {
            Ok(f) => f,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(self.io(path, e)),
        };
        self.watch.answered();
        let checked = match f.metadata().await {
            Ok(m) => {
                let meta = Meta::from_sftp(&m);
                if meta.kind != Some(Kind::File) {
                    Err(refused("is not a regular file; not read".into()))
                } else if meta.size > limit {
                    Err(too_large())
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(self.io(path, e)),
        };
        if let Err(e) = checked {
            let _ = f.close().await;
            return Err(e);
        }
        let mut out = Vec::new();
        let mut buf = bytes::BytesMut::with_capacity(64 << 10);
        let read = loop {
            match f.read(64 << 10, buf).await {
                Ok(Some(piece)) => {
                    self.watch.answered();
                    if (out.len() + piece.len()) as u64 > limit {
                        break Err(too_large());
                    }
                    out.extend_from_slice(&piece);
                    buf = piece;
                    buf.clear();
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(self.io(path, e)),
            }
        };
        let _ = f.close().await;
        read.map(|()| Some(out))
    }

    /// Creates the directory `path`, private (0700 in the request itself):
    /// the caller sets its recorded owner and mode after.
    pub async fn mkdir(&self, path: &str) -> Result<(), SourceError> {
        let mut fs = self.sftp.fs();
        fs.dir_builder()
            .permissions(openssh_sftp_client::metadata::Permissions::from(0o700u16))
            .create(path)
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

    /// Ends the SFTP server and with it the `ssh` process.
    pub async fn close(self) {
        // A server stuck in a request (a FIFO's open) never answers the close.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.sftp.close()).await;
        let mut child = self.child;
        // The server exits on end of input, and ssh with it; a node that
        // does not let go is cut off.
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        self.stderr.abort();
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
/// The most a small file of a node ([`Remote::read_optional`]) may hold.
pub const SMALL_FILE_LIMIT: u64 = 4 << 20;

/// The most entries one directory listing may have.
pub const MAX_LISTING: usize = 50_000;

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Keeps the start of ssh's stderr and drains the rest, so ssh never blocks on it.
async fn keep_stderr(mut err: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match err.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = STDERR_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Reads lines (byte by byte: nothing after the header may be consumed, it
/// belongs to the SFTP client) until the header; `None` at end of output.
async fn read_header(out: &mut (impl AsyncRead + Unpin)) -> Option<ssh::Header> {
    let mut line = Vec::new();
    let mut seen = 0usize;
    loop {
        let b = out.read_u8().await.ok()?;
        seen += 1;
        if seen > 64 << 10 {
            return None;
        }
        if b != b'\n' {
            line.push(b);
            continue;
        }
        if let Some(h) = ssh::parse_header(&String::from_utf8_lossy(&line)) {
            return Some(h);
        }
        line.clear();
    }
}

/// What a failed ssh process said: waits for it (briefly), then its stderr.
async fn failure(mut child: Child, stderr: JoinHandle<Vec<u8>>) -> String {
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    let said = stderr.await.unwrap_or_default();
    let text = String::from_utf8_lossy(&said);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}
