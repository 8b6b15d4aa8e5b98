//! What the walk does with a regular file's bytes: it hands them, piece by
//! piece as the node sends them, to the caller's [`Pass`], so that no file is
//! held whole unless the caller chooses to. A pass may ask for the file to be
//! read once more (the backup hashes a large file first, and reads it again
//! to store it only when the hash is new).
//!
//! Memory is bounded by a budget shared by every node of a run: before a file
//! is read, the walk takes from it what the pass may hold of that file
//! ([`Reader::holds`]) plus the piece in flight.

/// The bytes asked for in one read request (OpenSSH's sftp-server answers
/// at most about 256 KiB per request).
pub const PIECE: u64 = 256 << 10;

/// Starts a pass over each regular file the walk reads.
pub trait Reader: Send + Sync {
    type Pass: Pass<Kept = Self::Kept>;
    /// What the caller keeps of a file once it was read.
    type Kept: Send;
    /// The bytes a pass over a file of `size` bytes may hold, besides the
    /// piece in flight.
    fn holds(&self, size: u64) -> u64;
    /// A first pass over the file `path` of `size` bytes.
    fn begin(&self, path: &str, size: u64) -> Self::Pass;
}

/// One read of a file, from its first byte to its last.
pub trait Pass: Send + Sized {
    type Kept: Send;
    /// Why a file is skipped: the reason the walk records for it.
    type Skip: std::fmt::Display;
    /// The next piece, in order. An error skips the file with that reason.
    fn feed(&mut self, piece: &[u8]) -> Result<(), Self::Skip>;
    /// The whole file was fed: what is kept of it, or the pass for a second
    /// read of the same file (which must end with `Kept`).
    fn end(self) -> Result<Ended<Self>, Self::Skip>;
}

pub enum Ended<P: Pass> {
    Kept(P::Kept),
    Again(P),
}

/// A budget of memory in KiB, shared by the readers of a run.
pub type Budget = tokio::sync::Semaphore;

/// The KiB of budget a file of `size` bytes needs, with `holds` held.
pub fn kib_for(size: u64, holds: u64) -> u32 {
    let bytes = holds + size.min(PIECE);
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_needs_what_its_pass_holds_and_one_piece_at_most() {
        assert_eq!(kib_for(0, 0), 1);
        assert_eq!(kib_for(1000, 1000), 2);
        assert_eq!(kib_for(20 << 30, 0), 256);
        assert_eq!(kib_for(1 << 20, 1 << 20), 1024 + 256);
    }
}
