//! Streaming to and from a node: a command's output handed on in pieces as
//! it arrives, and a file written in pieces.

use super::{chain, Remote, SourceError};
use openssh_sftp_client::metadata::Permissions;
use openssh_sftp_client::Error as SftpError;
use std::process::Stdio;

impl Remote {
    /// Runs a fixed command line on the node like [`Remote::run_privileged`],
    /// handing its standard output to `sink` in pieces of at most `piece`
    /// bytes as it arrives; returns the bytes seen. Fails if the command
    /// exits non-zero (with its stderr) or `sink` fails.
    pub async fn stream_privileged<F>(
        &self,
        cmd: &str,
        what: &str,
        piece: usize,
        mut sink: F,
    ) -> Result<u64, SourceError>
    where
        F: FnMut(&[u8]) -> Result<(), String>,
    {
        use tokio::io::AsyncReadExt;
        let node = &self.target.node;
        let failed = |why: String| SourceError::Command {
            node: node.clone(),
            what: what.into(),
            why,
        };
        let mut child = self
            .command(&self.privileged(cmd))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start ssh: {e}")))?;
        let mut out = child.stdout.take().expect("stdout was piped");
        let mut err = child.stderr.take().expect("stderr was piped");
        let errors = async {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text).await;
            text
        };
        let reading = async {
            let mut buf = vec![0u8; piece];
            let mut total = 0u64;
            loop {
                // Fill the buffer before handing it on: pipes deliver small reads.
                let mut filled = 0;
                while filled < buf.len() {
                    match out.read(&mut buf[filled..]).await {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) => return (total, Err(e.to_string())),
                    }
                }
                if filled == 0 {
                    return (total, Ok(()));
                }
                total += filled as u64;
                // On a failing sink, stop reading and end ssh: the closed
                // channel ends the command on the node.
                if let Err(e) = sink(&buf[..filled]) {
                    let _ = child.start_kill();
                    return (total, Err(e));
                }
            }
        };
        let ((total, sunk), text) = tokio::join!(reading, errors);
        let status = child.wait().await.map_err(|e| failed(e.to_string()))?;
        sunk.map_err(|why| SourceError::Io {
            node: node.clone(),
            path: what.into(),
            why,
        })?;
        if !status.success() {
            return Err(failed(String::from_utf8_lossy(&text).trim().to_string()));
        }
        Ok(total)
    }

    /// Creates `path` exclusively (mode 0600) for writing in pieces: see
    /// [`Upload`]. The caller removes it if it gives up half way.
    pub async fn create_new(&self, path: &str) -> Result<Upload, SourceError> {
        let mut opts = self.sftp.options();
        opts.write(true).create_new(true);
        let mut file = opts.open(path).await.map_err(|e| self.io(path, e))?;
        file.set_permissions(Permissions::from(0o600u16))
            .await
            .map_err(|e| self.io(path, e))?;
        Ok(Upload {
            file,
            node: self.target.node.clone(),
            path: path.to_string(),
            fsync: self.sftp.support_fsync(),
        })
    }
}

/// A file on a node being written in pieces.
pub struct Upload {
    file: openssh_sftp_client::file::File,
    node: String,
    path: String,
    fsync: bool,
}

impl Upload {
    fn io(&self, e: SftpError) -> SourceError {
        SourceError::Io {
            node: self.node.clone(),
            path: self.path.clone(),
            why: chain(&e),
        }
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), SourceError> {
        match self.file.write_all(data).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Syncs the file to the node's disk and closes it.
    pub async fn finish(mut self) -> Result<(), SourceError> {
        if self.fsync {
            if let Err(e) = self.file.sync_all().await {
                return Err(self.io(e));
            }
        }
        let (node, path) = (self.node, self.path);
        self.file.close().await.map_err(|e| SourceError::Io {
            node,
            path,
            why: chain(&e),
        })
    }
}
