//! What an outcome means for the caller: the kinds of exit status. Every
//! public error type of the library says which one it is ([`ExitStatus`]);
//! the numbers and their table live on the CLI side (`src/cli/exit.rs`).

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
    /// `preflight`: a check failed; kubespray's `--limit` run would stop there.
    PreflightFailed,
}

/// An error that knows which exit status it means.
pub trait ExitStatus {
    fn exit(&self) -> Exit;
}

// Which exit status each of the library's errors means (the numbers are
// the CLI's, src/cli/exit.rs).

impl ExitStatus for crate::vault::crypto::CryptoError {
    fn exit(&self) -> Exit {
        match self {
            crate::vault::crypto::CryptoError::Decrypt { .. } => Exit::CannotDecrypt,
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::backup::BackupError {
    fn exit(&self) -> Exit {
        match self {
            crate::backup::BackupError::Vault(v) => v.exit(),
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::restore::RestoreError {
    fn exit(&self) -> Exit {
        match self {
            crate::restore::RestoreError::Vault(v) => v.exit(),
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::facts::FactsError {
    fn exit(&self) -> Exit {
        match self {
            crate::facts::FactsError::Vault(v) => v.exit(),
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::export::ExportError {
    fn exit(&self) -> Exit {
        match self {
            crate::export::ExportError::Vault(v) => v.exit(),
            crate::export::ExportError::Crypto(c) => c.exit(),
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::vault::replicate::ReplicateError {
    fn exit(&self) -> Exit {
        match self {
            crate::vault::replicate::ReplicateError::Trust(t) => t.exit(),
            crate::vault::replicate::ReplicateError::Vault(v) => v.exit(),
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::etcd::restore::EtcdRestoreError {
    fn exit(&self) -> Exit {
        use crate::etcd::restore::EtcdRestoreError as E;
        match self {
            E::Refused(_) => Exit::Refused,
            E::Vault(v) => v.exit(),
            _ => Exit::Failure,
        }
    }
}

impl ExitStatus for crate::replace::ReplaceError {
    fn exit(&self) -> Exit {
        match self {
            crate::replace::ReplaceError::Vault(v) => v.exit(),
            crate::replace::ReplaceError::Restore(r) => r.exit(),
            _ => Exit::Failure,
        }
    }
}

/// Errors that only ever mean a plain failure (exit 1): what went wrong is
/// in their message, and nothing was committed or written.
macro_rules! plain_failure {
    ($($t:ty),* $(,)?) => {
        $(impl ExitStatus for $t {
            fn exit(&self) -> Exit {
                Exit::Failure
            }
        })*
    };
}

plain_failure!(
    crate::facts::config::FactsConfigError,
    crate::etcd::trial::TrialError,
    crate::source::SourceError,
    crate::paths::PathError,
    crate::vault::lock::LockError,
    crate::vault::config::ConfigError,
    crate::vault::manifest::ManifestError,
    crate::inventory::InventoryError,
);
