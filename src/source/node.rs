//! The edge between the core and a node: the operations a restore (and the
//! code that plans it) needs from a node's file system and shell. The SSH
//! remote ([`super::Remote`]) implements it for real machines; an in-memory
//! fake ([`super::fake::FakeNode`]) implements it for unit tests, so that
//! plans and the executor's rules run without root, a lab or a network.
//!
//! Every operation keeps the remote's guarantees: `lstat` never follows a
//! link, `write_private` creates a file no other account can open and sets
//! its metadata before it appears under its name, `set_meta` refuses a
//! symlink.

use super::accounts::Accounts;
use super::remote::{Attrs, Meta};
use super::SourceError;

// Used with generics inside the crate only (never as `dyn`), and the futures
// of the real implementation are Send: no bound needs spelling out.
#[allow(async_fn_in_trait)]
pub trait NodeFs {
    /// The node's inventory name.
    fn node(&self) -> &str;
    /// How the node is reached, as messages show it (`user@address:port`).
    fn display(&self) -> String;
    /// The node's account and group names.
    fn accounts(&self) -> &Accounts;
    async fn hostname(&self) -> Result<String, SourceError>;
    /// Metadata of `path`, not following a link; `None` when absent.
    async fn lstat(&self, path: &str) -> Result<Option<Meta>, SourceError>;
    /// The entries of a directory (names and lstat metadata).
    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, SourceError>;
    /// A regular file's content, refused when it is larger than `limit`.
    async fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError>;
    async fn read_link(&self, path: &str) -> Result<String, SourceError>;
    /// Writes `data` to `path` atomically and privately with `attrs`.
    async fn write_private(&self, path: &str, data: &[u8], attrs: Attrs)
        -> Result<(), SourceError>;
    /// Creates a directory (private to root until its metadata is set).
    async fn mkdir(&self, path: &str) -> Result<(), SourceError>;
    /// Sets owner, mode and mtime of a file or directory; refuses a link.
    async fn set_meta(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    ) -> Result<(), SourceError>;
    async fn rename(&self, from: &str, to: &str) -> Result<(), SourceError>;
    async fn symlink(&self, target: &str, path: &str) -> Result<(), SourceError>;
    async fn remove_file(&self, path: &str) -> Result<(), SourceError>;
    /// Runs a shell command line as root; its stdout.
    async fn run_privileged(&self, cmd: &str, what: &str) -> Result<String, SourceError>;
    /// A file written in pieces, as [`NodeFs::create_new`] opens it.
    type Upload: NewFile;
    /// Creates a directory that must not exist yet and checks that it is
    /// root's and private.
    async fn make_private_dir(&self, path: &str) -> Result<(), SourceError>;
    /// Creates `path` exclusively, mode 0600, for writing in pieces.
    async fn create_new(&self, path: &str) -> Result<Self::Upload, SourceError>;
}

/// A new file on a node being written in pieces.
#[allow(async_fn_in_trait)]
pub trait NewFile {
    async fn write(&mut self, data: &[u8]) -> Result<(), SourceError>;
    /// Syncs the file to the node's disk and closes it.
    async fn finish(self) -> Result<(), SourceError>;
}

impl NewFile for super::remote::Upload {
    async fn write(&mut self, data: &[u8]) -> Result<(), SourceError> {
        super::remote::Upload::write(self, data).await
    }
    async fn finish(self) -> Result<(), SourceError> {
        super::remote::Upload::finish(self).await
    }
}

impl NodeFs for super::Remote {
    fn node(&self) -> &str {
        &self.target.node
    }
    fn display(&self) -> String {
        self.target.display()
    }
    fn accounts(&self) -> &Accounts {
        &self.accounts
    }
    async fn hostname(&self) -> Result<String, SourceError> {
        super::Remote::hostname(self).await
    }
    async fn lstat(&self, path: &str) -> Result<Option<Meta>, SourceError> {
        super::Remote::lstat(self, path).await
    }
    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, SourceError> {
        super::Remote::list(self, path).await
    }
    async fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        super::Remote::read(self, path, limit).await
    }
    async fn read_link(&self, path: &str) -> Result<String, SourceError> {
        super::Remote::read_link(self, path).await
    }
    async fn write_private(
        &self,
        path: &str,
        data: &[u8],
        attrs: Attrs,
    ) -> Result<(), SourceError> {
        super::Remote::write_private(self, path, data, attrs).await
    }
    async fn mkdir(&self, path: &str) -> Result<(), SourceError> {
        super::Remote::mkdir(self, path).await
    }
    async fn set_meta(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    ) -> Result<(), SourceError> {
        super::Remote::set_meta(self, path, mode, uid, gid, mtime).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), SourceError> {
        super::Remote::rename(self, from, to).await
    }
    async fn symlink(&self, target: &str, path: &str) -> Result<(), SourceError> {
        super::Remote::symlink(self, target, path).await
    }
    async fn remove_file(&self, path: &str) -> Result<(), SourceError> {
        super::Remote::remove_file(self, path).await
    }
    async fn run_privileged(&self, cmd: &str, what: &str) -> Result<String, SourceError> {
        super::Remote::run_privileged(self, cmd, what).await
    }
    type Upload = super::remote::Upload;
    async fn make_private_dir(&self, path: &str) -> Result<(), SourceError> {
        super::Remote::make_private_dir(self, path).await
    }
    async fn create_new(&self, path: &str) -> Result<Self::Upload, SourceError> {
        super::Remote::create_new(self, path).await
    }
}
