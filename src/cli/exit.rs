//! The exit codes of the `sprayvault` binary, in one table.
//!
//! Cron jobs and systemd units alert on these, so they are part of the
//! interface: never renumber one, only add.

use sprayvault::error::ErrorClass;

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
    NoVault,
    Locked,
    CannotDecrypt,
    Refused,
    /// `certs --expiring-within`: some certificate expires within the window.
    Expiring,
    /// The backup was committed but pushing it to the off-site remote failed.
    PushFailed,
    Damaged,
    Untrusted,
    /// `preflight`: a check failed; kubespray's `--limit` run would stop there.
    PreflightFailed,
}

/// The exit status of each class of the library's errors.
impl From<ErrorClass> for Exit {
    fn from(c: ErrorClass) -> Exit {
        match c {
            ErrorClass::Failed => Exit::Failure,
            ErrorClass::NoVault => Exit::NoVault,
            ErrorClass::Locked => Exit::Locked,
            ErrorClass::CannotDecrypt => Exit::CannotDecrypt,
            ErrorClass::Refused => Exit::Refused,
            ErrorClass::Damaged => Exit::Damaged,
            ErrorClass::Untrusted => Exit::Untrusted,
        }
    }
}

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

    use sprayvault::vault::crypto::CryptoError;
    use sprayvault::vault::VaultError;

    /// One vault error of each class a vault error can have, and the exit
    /// status it must give.
    fn vault_errors() -> Vec<(fn() -> VaultError, Exit)> {
        vec![
            (
                || VaultError::Rev(sprayvault::vault::rev::RevError::NoneBefore("x".into())),
                Exit::Failure,
            ),
            (
                || VaultError::NoVault {
                    dir: "/v".into(),
                    why: "x".into(),
                },
                Exit::NoVault,
            ),
            (
                || VaultError::Locked {
                    dir: "/v".into(),
                    holder: None,
                },
                Exit::Locked,
            ),
            (
                || {
                    VaultError::Crypto(CryptoError::Decrypt {
                        what: "x".into(),
                        why: "x".into(),
                    })
                },
                Exit::CannotDecrypt,
            ),
            (
                || VaultError::Tampered {
                    rev: "x".into(),
                    node: "n".into(),
                    path: "/p".into(),
                    why: "x".into(),
                },
                Exit::Damaged,
            ),
            (
                || VaultError::NotOurs {
                    dir: "/v".into(),
                    commit: "x".into(),
                    why: "x".into(),
                },
                Exit::Untrusted,
            ),
        ]
    }

    /// Every class, wrapped in every wrapper type of the library (and in
    /// anyhow context), gives its own exit status: no wrapper hides it.
    #[test]
    fn every_class_passes_through_every_wrapper() {
        use sprayvault::{backup, etcd, export, facts, replace, restore, vault};
        type Wrap = fn(VaultError) -> anyhow::Error;
        let wrappers: Vec<(&str, Wrap)> = vec![
            ("plain", |v| v.into()),
            ("context", |v| {
                anyhow::Error::new(v).context("while testing")
            }),
            ("trust", |v| vault::trust::TrustError::Vault(v).into()),
            ("replicate", |v| {
                vault::replicate::ReplicateError::Vault(v).into()
            }),
            ("replicate/trust", |v| {
                vault::replicate::ReplicateError::Trust(vault::trust::TrustError::Vault(v)).into()
            }),
            ("backup", |v| backup::BackupError::Vault(v).into()),
            ("restore", |v| restore::RestoreError::Vault(v).into()),
            ("facts", |v| facts::FactsError::Vault(v).into()),
            ("export", |v| export::ExportError::Vault(v).into()),
            ("etcd restore", |v| {
                etcd::restore::EtcdRestoreError::Vault(v).into()
            }),
            ("replace", |v| replace::ReplaceError::Vault(v).into()),
            ("replace/restore", |v| {
                replace::ReplaceError::Restore(restore::RestoreError::Vault(v)).into()
            }),
            ("trial", |v| etcd::trial::TrialError::Vault(v).into()),
            ("etcd --at", |v| etcd::select::PickError::Vault(v).into()),
        ];
        for (name, wrap) in &wrappers {
            for (make, want) in vault_errors() {
                let e = wrap(make());
                assert_eq!(super::super::exit_for(&e), want, "{name}: {e:#}");
            }
        }
        // The classes no vault error has.
        let refused: anyhow::Error =
            etcd::restore::EtcdRestoreError::Refused("not confirmed".into()).into();
        assert_eq!(super::super::exit_for(&refused), Exit::Refused);
        let usage: anyhow::Error = super::super::UsageError("x".into()).into();
        assert_eq!(super::super::exit_for(&usage), Exit::Usage);
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = ALL.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }
}
