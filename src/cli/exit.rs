//! The exit codes of the `sprayvault` binary, in one table.
//!
//! Cron jobs and systemd units alert on these, so they are part of the
//! interface: never renumber one, only add.

use sprayvault::exit::Exit;

/// The numbers and meanings of [`Exit`].
pub trait Numbered {
    fn code(self) -> u8;
    fn meaning(self) -> &'static str;
}

/// Every exit status, in table order (the README and `--help` list them).
pub const ALL: [Exit; 13] = [
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
    Exit::PreflightFailed,
];

impl Numbered for Exit {
    fn code(self) -> u8 {
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
            Exit::PreflightFailed => 12,
        }
    }

    fn meaning(self) -> &'static str {
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
                "vault not trusted: signer not pinned or named, history forged or re-keyed, or rolled back"
            }
            Exit::PreflightFailed => {
                "preflight: a check failed; kubespray's --limit run would stop (the fix is named)"
            }
        }
    }
}

/// The table as text, for `--help`.
pub fn table() -> String {
    let mut s = String::from("Exit codes:\n");
    for e in ALL {
        s.push_str(&format!("  {}  {}\n", e.code(), e.meaning()));
    }
    s
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = ALL.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }
}
