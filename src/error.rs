//! What kind of failure a library error is. Every public error type of the
//! library says which class it is ([`Classify`], implemented beside the
//! type); a wrapper passes its inner error's class through. The CLI turns a
//! class into an exit status (`src/cli/exit.rs`), and adds the statuses that
//! are not failures of the library (success, usage, partial, expiring,
//! push failed, preflight failed).

/// The classes of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing more specific: what went wrong is in the message, and
    /// nothing was committed or written.
    Failed,
    /// The vault directory does not exist or is not a sprayvault vault.
    NoVault,
    /// Another run holds the vault's lock.
    Locked,
    /// The identity given cannot decrypt the vault (wrong key or corrupt object).
    CannotDecrypt,
    /// A change was refused: the target differs from the backup, or it was
    /// not confirmed.
    Refused,
    /// Objects are missing or damaged, or a snapshot does not restore as
    /// recorded.
    Damaged,
    /// The vault is not the one this machine trusts: its signer is not
    /// pinned or named, its history is forged or re-keyed, or rolled back.
    Untrusted,
}

/// An error that knows its class.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}
