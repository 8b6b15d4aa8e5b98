//! Reading a listed file so that what is recorded is the file that was
//! listed: the opened handle is checked (fstat) against the listing before
//! a byte is read, its size against a limit, and again after the read. The
//! bytes go to the caller's pass a piece at a time; each piece is wiped once
//! it was fed.
//!
//! SFTP opens follow symlinks and have no O_NONBLOCK: a symlink swapped in
//! after the listing is caught here by its other owner, size or time and
//! skipped unread; a FIFO swapped in blocks the node's SFTP server in its
//! open, which the connection's [`super::Watch`] tells the caller.

use super::{Meta, Remote, SourceError};
use crate::source::content::{Ended, Pass, PIECE};
use crate::vault::manifest::Kind;
use bytes::BytesMut;
use zeroize::Zeroize;

/// Why a listed file's handle does not match its listing; `None` when it does.
pub fn mismatch(listed: &Meta, opened: &Meta) -> Option<String> {
    if opened.kind != Some(Kind::File) {
        return Some("is no longer a regular file".into());
    }
    let fields = [
        ("owner", listed.uid as i64, opened.uid as i64),
        ("group", listed.gid as i64, opened.gid as i64),
        ("mode", listed.mode as i64, opened.mode as i64),
        ("size", listed.size as i64, opened.size as i64),
        ("mtime", listed.mtime, opened.mtime),
    ];
    let diff: Vec<String> = fields
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(what, a, b)| format!("{what} {a} listed, {b} opened"))
        .collect();
    (!diff.is_empty()).then(|| diff.join(", "))
}

impl Remote {
    fn refused(&self, path: &str, why: String) -> SourceError {
        SourceError::Io {
            node: self.target.node.clone(),
            path: path.to_string(),
            why,
        }
    }

    /// Reads the regular file `path` that a listing described as `listed`
    /// through `pass` (and its second pass, if it asks for one), refusing it
    /// (a per-file error, nothing read) when the opened file is not that file
    /// or is larger than `limit` bytes, and when it changed while being read.
    pub async fn read_checked<P: Pass>(
        &self,
        path: &str,
        listed: &Meta,
        limit: u64,
        pass: P,
    ) -> Result<P::Kept, SourceError> {
        let pass = self.read_once(path, listed, limit, pass).await?;
        match pass
            .end()
            .map_err(|why| self.refused(path, why.to_string()))?
        {
            Ended::Kept(kept) => Ok(kept),
            Ended::Again(again) => {
                let again = self.read_once(path, listed, limit, again).await?;
                match again
                    .end()
                    .map_err(|why| self.refused(path, why.to_string()))?
                {
                    Ended::Kept(kept) => Ok(kept),
                    Ended::Again(_) => Err(self.refused(
                        path,
                        "asked for a third read; skipped (a bug in sprayvault: report it)".into(),
                    )),
                }
            }
        }
    }

    /// One checked read of `path` from its first byte to its last, each
    /// piece fed to `pass` and wiped after.
    async fn read_once<P: Pass>(
        &self,
        path: &str,
        listed: &Meta,
        limit: u64,
        mut pass: P,
    ) -> Result<P, SourceError> {
        let opening = self.watch.opening(path);
        let mut f = self
            .sftp
            .options()
            .read(true)
            .open(path)
            .await
            .map_err(|e| self.io(path, e))?;
        drop(opening);
        let stat = |m: openssh_sftp_client::metadata::MetaData| Meta::from_sftp(&m);
        let opened = stat(f.metadata().await.map_err(|e| self.io(path, e))?);
        self.watch.answered();
        if let Some(why) = mismatch(listed, &opened) {
            let _ = f.close().await;
            return Err(self.refused(
                path,
                format!("changed between listing and opening ({why}): a swapped-in symlink or file? skipped unread, never followed; its previous record is kept"),
            ));
        }
        if opened.size > limit {
            let _ = f.close().await;
            return Err(self.refused(
                path,
                format!("is {} bytes, above the per-file limit of {limit} bytes; skipped (raise --max-file-size, or exclude it in the vault's configuration)", opened.size),
            ));
        }
        let mut got: u64 = 0;
        let mut buf = BytesMut::with_capacity(PIECE as usize);
        let fed = loop {
            let piece = match f.read(PIECE as u32, buf).await {
                Ok(Some(piece)) => piece,
                Ok(None) => break Ok(()),
                Err(e) => break Err(self.io(path, e)),
            };
            self.watch.answered();
            got += piece.len() as u64;
            if got > opened.size {
                break Err(self.refused(
                    path,
                    format!("grew while being read (past its {} bytes); skipped, its previous record is kept; run the backup again", opened.size),
                ));
            }
            let fed = pass.feed(&piece);
            buf = piece;
            buf.as_mut().zeroize();
            buf.clear();
            if let Err(why) = fed {
                break Err(self.refused(path, why.to_string()));
            }
        };
        let after = match fed {
            Ok(()) => f.metadata().await.map_err(|e| self.io(path, e)).map(stat),
            Err(e) => Err(e),
        };
        let _ = f.close().await;
        let after = after?;
        if after != opened || got != opened.size {
            return Err(self.refused(
                path,
                format!(
                    "changed while being read ({got} bytes read, {} then {} bytes, mtime {} then {}); skipped, its previous record is kept; run the backup again",
                    opened.size,
                    after.size,
                    opened.mtime,
                    after.mtime
                ),
            ));
        }
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(uid: u32, size: u64, mtime: i64) -> Meta {
        Meta {
            kind: Some(Kind::File),
            mode: 0o600,
            uid,
            gid: 0,
            size,
            mtime,
        }
    }

    #[test]
    fn the_listed_file_matches() {
        assert_eq!(mismatch(&file(5, 10, 7), &file(5, 10, 7)), None);
    }

    #[test]
    fn a_symlink_to_a_root_file_shows_its_other_owner() {
        let why = mismatch(&file(10011, 241, 7), &file(0, 241, 7)).unwrap();
        assert_eq!(why, "owner 10011 listed, 0 opened");
    }

    #[test]
    fn another_file_of_the_same_owner_shows_its_size_and_time() {
        let why = mismatch(&file(0, 241, 7), &file(0, 900, 8)).unwrap();
        assert!(why.contains("size 241 listed, 900 opened"), "{why}");
        assert!(why.contains("mtime 7 listed, 8 opened"), "{why}");
    }

    #[test]
    fn anything_but_a_regular_file_is_refused() {
        let mut fifo = file(0, 0, 7);
        fifo.kind = None;
        assert_eq!(
            mismatch(&file(0, 0, 7), &fifo).as_deref(),
            Some("is no longer a regular file")
        );
    }
}
