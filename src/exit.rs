//! The exit codes of the `sprayvault` binary, in one table.
//!
//! Cron jobs and systemd units alert on these, so they are part of the
//! interface: never renumber one, only add.

/// One exit status of the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Success,
    /// The run failed and nothing was committed or written.
    Failure,
    /// The command line was wrong (clap's own usage errors use it too).
    Usage,
    /// Committed, but some nodes or files failed; the commit says which.
    Partial,
    /// The vault directory does not exist or is not a sprayvault vault.
    NoVault,
    /// Another run holds the vault's lock.
    Locked,
    /// The identity given cannot decrypt the vault (wrong key or corrupt object).
    CannotDecrypt,
    /// A restore was refused: the target differs from the backup and `--force`
    /// was not given, or `etcd restore` was not confirmed with `--yes`.
    Refused,
    /// `certs --expiring-within`: some certificate expires within the window.
    Expiring,
    /// The backup was committed but pushing it to the off-site remote failed.
    PushFailed,
    /// `verify` found missing or damaged objects, or (`--trial`) an etcd
    /// snapshot that does not restore to what its backup recorded.
    Damaged,
    /// The vault's history is unsigned, signed by another key, or re-keyed
    /// (not the pinned fingerprint); `--accept-new-key` accepts a new one.
    Untrusted,
}

impl Exit {
    /// Every exit status, in table order (the README and `--help` list them).
    pub const ALL: [Exit; 12] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::Partial,
        Exit::NoVault,
        Exit::Locked,
        Exit::CannotDecrypt,
        Exit::Refused,
        Exit::Expiring,
        Exit::PushFailed,
        Exit::Damaged,
        Exit::Untrusted,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Partial => 3,
            Exit::NoVault => 4,
            Exit::Locked => 5,
            Exit::CannotDecrypt => 6,
            Exit::Refused => 7,
            Exit::Expiring => 8,
            Exit::PushFailed => 9,
            Exit::Damaged => 10,
            Exit::Untrusted => 11,
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure, nothing committed or written",
            Exit::Usage => "usage error",
            Exit::Partial => "partial: committed, but some nodes or files failed",
            Exit::NoVault => "no vault at the given path",
            Exit::Locked => "vault locked by another run",
            Exit::CannotDecrypt => "cannot decrypt: wrong identity or corrupt object",
            Exit::Refused => {
                "restore refused: target differs from the backup (use --force), or not confirmed (--yes)"
            }
            Exit::Expiring => "certs: a certificate expires within --expiring-within",
            Exit::PushFailed => "backup committed, but the push to the off-site remote failed",
            Exit::Damaged => {
                "verify found missing or damaged objects, or a snapshot that does not restore as recorded"
            }
            Exit::Untrusted => {
                "history not signed by the vault's pinned key, or re-keyed (see `trust`, --accept-new-key)"
            }
        }
    }

    /// The table as text, for `--help`.
    pub fn table() -> String {
        let mut s = String::from("Exit codes:\n");
        for e in Exit::ALL {
            s.push_str(&format!("  {}  {}\n", e.code(), e.meaning()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
    }
}
