//! Writing a file to a node in pieces.

use super::{chain, Remote, SourceError};
use openssh_sftp_client::metadata::Permissions;
use openssh_sftp_client::Error as SftpError;

impl Remote {
    /// Creates `path` exclusively (mode 0600) for writing in pieces: see
    /// [`Upload`]. The caller removes it if it gives up half way.
    pub async fn create_new(&self, path: &str) -> Result<Upload, SourceError> {
        let mut opts = self.sftp.options();
        opts.write(true).create_new(true).mode(0o600);
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
