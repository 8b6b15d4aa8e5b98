//! Why a line-oriented file of the vault (vault-layout's facts index,
//! record of pruned snapshots, ...) cannot be read: what the file is, and
//! the line and reason where there is one.

/// A file that does not follow its format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("{0} lacks its final newline")]
    NoFinalNewline(&'static str),
    #[error("{what} does not start with {header:?}")]
    Header {
        what: &'static str,
        header: &'static str,
    },
    #[error("{what} line {line}: {why}")]
    Line {
        what: &'static str,
        line: usize,
        why: String,
    },
}
