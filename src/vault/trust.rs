//! Authenticated history on the operator's side (vault-layout,
//! "Signatures"): a vault is trusted only when its signer is pinned on this
//! machine (`pins`) or named by the operator (`--expect-signer`). Every
//! command that writes what a vault holds somewhere gets it through a
//! [`TrustedVault`], which only [`Vault::authenticate`] makes: it checks
//! the signatures of the history, the pinned mac-key, and that `main` is no
//! older than the newest backup this machine has seen from that signer.

use super::pins::{self, Pin, PinFileError};
use super::signing::SigStatus;
use super::{rev, Backup, Vault, VaultError, MAC_KEY_AGE};
use crate::error::{Classify, ErrorClass};
use git2::Oid;
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("vault {dir}: commit {commit} is not signed; history appended by someone other than the backup host is refused; compare with another copy of the vault, and move refs/heads/main back to the newest commit that `git verify-commit` accepts (`sprayvault trust --allowed-signers` prints the signer); a vault written before signatures (format 1) is signed by its next backup with this sprayvault")]
    Unsigned { dir: PathBuf, commit: String },
    #[error("vault {dir}: commit {commit}: {why}; the vault's signer is {pinned}; check the vault's origin, or run `sprayvault trust --accept-new-key` if the backup host's key was replaced on purpose")]
    Foreign {
        dir: PathBuf,
        commit: String,
        why: String,
        pinned: String,
    },
    #[error("vault {dir} is signed by {signer}, which this machine does not trust yet (no pin in {pins}); nothing was read or written. Compare that fingerprint with the one the backup host printed (`sprayvault init`, or `sprayvault trust --backup-host` there), then re-run with --expect-signer {signer} (or SPRAYVAULT_EXPECT_SIGNER), or pin it first with `sprayvault trust --pin {signer}`")]
    Unpinned {
        dir: PathBuf,
        signer: String,
        pins: PathBuf,
    },
    #[error("vault {dir} is signed by {found}, not by {expected} as --expect-signer (or SPRAYVAULT_EXPECT_SIGNER) says; this is not the vault you named, or the git host serves a forged one; nothing was read or written")]
    NotExpected {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("vault {dir}: {what} that this machine already read from signer {signer}; the copy is rolled back or frozen (a git host serving old history, or an off-site copy not pushed since); use a current copy, or, if the vault was rolled back on purpose, re-pin it with `sprayvault trust --pin {signer}`")]
    RolledBack {
        dir: PathBuf,
        signer: String,
        /// `main is backup X (TIME), which does not descend from backup Y (TIME)`.
        what: String,
    },
    #[error("vault {dir}: commit {commit} carries another mac-key.age ({found}, pinned {pinned}); the vault was re-keyed or tampered with; run `sprayvault trust --accept-new-key` only if you know why")]
    Rekeyed {
        dir: PathBuf,
        commit: String,
        found: String,
        pinned: String,
    },
    #[error("vault {dir}: the newest backup {backup} took etcd snapshot {snapshot}, which this copy does not have (and did not prune): newer snapshot refs were dropped, so `latest` would pick an older snapshot; use a complete copy (`sprayvault pull`), or name the snapshot with --at")]
    SnapshotMissing {
        dir: PathBuf,
        backup: String,
        snapshot: String,
    },
    #[error("--expect-signer {0:?} is not a signer fingerprint; give it as `sprayvault init` prints it, SHA256: and 43 characters")]
    BadSigner(String),
    #[error(transparent)]
    PinFile(#[from] PinFileError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl Classify for TrustError {
    fn class(&self) -> ErrorClass {
        match self {
            TrustError::Vault(v) => v.class(),
            TrustError::PinFile(_) | TrustError::BadSigner(_) => ErrorClass::Failed,
            _ => ErrorClass::Untrusted,
        }
    }
}

/// What a vault is pinned to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub signer: PublicKey,
    pub mac_key: Oid,
}

impl Fingerprint {
    /// `signer SHA256:... mac-key BLOB`, as `init` and `trust` print it.
    pub fn display(&self) -> String {
        format!(
            "signer {} mac-key {}",
            self.signer.fingerprint(HashAlg::Sha256),
            self.mac_key
        )
    }
}

/// How the operator names the vault they trust, besides the pin file.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    /// `--expect-signer` / `SPRAYVAULT_EXPECT_SIGNER`: the signer's
    /// fingerprint; the vault is pinned when it matches.
    pub expect_signer: Option<String>,
    /// `--accept-new-key`: pin the signer and mac-key found.
    pub accept_new_key: bool,
}

/// The outcome of authenticating a vault's history.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub fingerprint: Fingerprint,
    /// True when this run pinned the signer (named or accepted now).
    pub pinned_now: bool,
    /// Signed commits checked.
    pub checked: usize,
    /// The authenticated newest backup on main, and its time.
    pub head: Oid,
    pub head_time: i64,
}

/// A vault whose history was authenticated against what the operator
/// trusts. Only [`Vault::authenticate`] makes one; the backups and
/// snapshots that restore, replace and export read come from it.
pub struct TrustedVault<'v> {
    vault: &'v Vault,
    signer: PublicKey,
    pub trusted: Trusted,
}

/// Something read from a vault through a [`TrustedVault`]: a backup of the
/// authenticated history, or a snapshot whose commit is signed by the
/// vault's signer. It cannot be made any other way.
#[derive(Debug)]
pub struct Authentic<T>(T);

impl<T> std::ops::Deref for Authentic<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
impl<T> Authentic<T> {
    /// For unit tests of what reads a backup, not of how it is trusted.
    pub(crate) fn assume(t: T) -> Authentic<T> {
        Authentic(t)
    }
}

/// A record stored in a commit of its own (an etcd snapshot), which a
/// [`TrustedVault`] authenticates by that commit's signature.
pub trait SignedRecord {
    fn record_commit(&self) -> Option<Oid>;
    fn record_name(&self) -> String;
}

impl<'v> TrustedVault<'v> {
    pub fn vault(&self) -> &'v Vault {
        self.vault
    }

    /// Resolves `--at` (None = latest) within the authenticated history:
    /// first-parent from the authenticated newest backup, not from the ref.
    pub fn resolve(&self, at: Option<&str>) -> Result<Oid, VaultError> {
        rev::resolve_from(&self.vault.repo, self.trusted.head, at.unwrap_or("latest"))
            .map_err(VaultError::Rev)
    }

    /// The backup `--at` names, read.
    pub fn backup(&self, at: Option<&str>) -> Result<Authentic<Backup>, VaultError> {
        Ok(Authentic(self.vault.backup(self.resolve(at)?)?))
    }

    /// The authenticated history, newest first.
    pub fn history(&self) -> Result<Vec<Oid>, VaultError> {
        rev::first_parents(&self.vault.repo, self.trusted.head).map_err(VaultError::Rev)
    }

    /// The backup `commit`, which must lie on the authenticated history.
    pub fn backup_at(&self, commit: Oid) -> Result<Authentic<Backup>, VaultError> {
        if !self.history()?.contains(&commit) {
            return Err(VaultError::Rev(rev::RevError::NotAuthenticated {
                backup: commit.to_string()[..10].to_string(),
                vault: self.vault.dir.display().to_string(),
            }));
        }
        Ok(Authentic(self.vault.backup(commit)?))
    }

    /// `record` (an etcd snapshot), once its commit's signature is the
    /// vault's signer's.
    pub fn signed<T: SignedRecord>(&self, record: T) -> Result<Authentic<T>, TrustError> {
        let dir = self.vault.dir.clone();
        let Some(commit) = record.record_commit() else {
            return Err(TrustError::Unsigned {
                dir,
                commit: record.record_name(),
            });
        };
        let short = format!("{} ({})", &commit.to_string()[..10], record.record_name());
        match self.vault.signature_of(commit, &self.signer) {
            SigStatus::Good(_) => Ok(Authentic(record)),
            SigStatus::Unsigned => Err(TrustError::Unsigned { dir, commit: short }),
            SigStatus::Bad(why) => Err(TrustError::Foreign {
                dir,
                commit: short,
                why,
                pinned: pins::signer_text(&self.signer),
            }),
        }
    }
}

/// Whether the signer of `vault`'s newest commit is pinned on this machine
/// (for read-only commands, which show an unpinned vault but say so):
/// `None` when it is, else the signer found (or why none was).
pub fn unpinned_signer(vault: &Vault) -> Option<String> {
    let head = vault.head().ok()?;
    let signer = match vault.signer_of(head) {
        Ok(Some(k)) => pins::signer_text(&k),
        Ok(None) => return Some("no signer (the newest commit is unsigned)".into()),
        Err(why) => return Some(format!("no readable signer ({why})")),
    };
    let pinned = pins::read(&pins::pin_file())
        .map(|p| p.iter().any(|p| p.signer == signer))
        .unwrap_or(false);
    (!pinned).then_some(signer)
}

/// Why a commit's signature cannot be read.
#[derive(Debug, thiserror::Error)]
enum SignatureError {
    #[error("{}", .0.message())]
    Unreadable(git2::Error),
    #[error("not an SSH signature ({0})")]
    NotSsh(ssh_key::Error),
}

impl Vault {
    /// The fingerprint the backup host's own state gives: its signing key
    /// and the newest commit's `mac-key.age`.
    pub fn fingerprint(&self) -> Result<Fingerprint, VaultError> {
        let signer = self.signing_key()?.public_key().clone();
        let mac_key = self
            .mac_key_blob(self.head()?)?
            .ok_or_else(|| VaultError::Damaged {
                rev: "main".into(),
                what: format!("no {MAC_KEY_AGE}"),
            })?;
        Ok(Fingerprint { signer, mac_key })
    }

    /// The key that signed `commit`, whatever it is (checked against itself).
    fn signer_of(&self, commit: Oid) -> Result<Option<PublicKey>, SignatureError> {
        match self.repo.extract_signature(&commit, None) {
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(SignatureError::Unreadable(e)),
            Ok((sig, _)) => SshSig::from_pem(&*sig)
                .map(|s| Some(PublicKey::from(s.public_key().clone())))
                .map_err(SignatureError::NotSsh),
        }
    }

    /// Authenticates the branch (and `extra` commits, such as every
    /// snapshot ref `pull` fetched) against what this machine trusts:
    ///
    /// * the newest commit's signer is pinned, or named by `naming`
    ///   (`--expect-signer`, which must match; `--accept-new-key`);
    /// * every first-parent commit from the newest one down to the first
    ///   unsigned one (the history of a version 1 vault before it was
    ///   signed, authenticated by the signed commits above it) is signed by
    ///   that signer, and the newest one carries the pinned `mac-key.age`;
    /// * main is, or descends from, the newest backup this machine has read
    ///   from that signer.
    ///
    /// Then the pin records the signer, mac-key and newest backup.
    pub fn authenticate(
        &self,
        extra: &[Oid],
        naming: &Naming,
    ) -> Result<TrustedVault<'_>, TrustError> {
        let dir = self.dir.clone();
        let expected = match &naming.expect_signer {
            Some(e) => Some(pins::parse_signer(e).ok_or_else(|| TrustError::BadSigner(e.clone()))?),
            None => None,
        };
        let head = self.head()?;
        let short = |c: Oid| c.to_string()[..10].to_string();
        let signer = match self.signer_of(head) {
            Ok(Some(k)) => k,
            Ok(None) => {
                return Err(TrustError::Unsigned {
                    dir,
                    commit: short(head),
                })
            }
            Err(why) => {
                return Err(TrustError::Foreign {
                    dir,
                    commit: short(head),
                    why: why.to_string(),
                    pinned: "-".into(),
                })
            }
        };
        let signer_fp = pins::signer_text(&signer);
        if let Some(e) = &expected {
            if *e != signer_fp {
                return Err(TrustError::NotExpected {
                    dir,
                    found: signer_fp,
                    expected: e.clone(),
                });
            }
        }
        let pin_path = pins::pin_file();
        let pin = pins::read(&pin_path)?
            .into_iter()
            .find(|p| p.signer == signer_fp);
        if pin.is_none() && expected.is_none() && !naming.accept_new_key {
            return Err(TrustError::Unpinned {
                dir,
                signer: signer_fp,
                pins: pin_path,
            });
        }
        let mac_key = self
            .mac_key_blob(head)?
            .ok_or_else(|| VaultError::Damaged {
                rev: short(head),
                what: format!("no {MAC_KEY_AGE}"),
            })?;
        // A re-key shows at the newest commit; older commits keep the key
        // they were written with, authenticated by the signatures above.
        if let Some(pinned) = pin.as_ref().and_then(|p| p.mac_key) {
            if pinned != mac_key && !naming.accept_new_key {
                return Err(TrustError::Rekeyed {
                    dir,
                    commit: short(head),
                    found: mac_key.to_string(),
                    pinned: pinned.to_string(),
                });
            }
        }
        // The whole signed part of history, then the extra commits.
        let mut commits = self.history()?;
        let signed_len = commits
            .iter()
            .position(|c| matches!(self.signature_of(*c, &signer), SigStatus::Unsigned))
            .unwrap_or(commits.len());
        if signed_len == 0 {
            return Err(TrustError::Unsigned {
                dir,
                commit: short(head),
            });
        }
        // Below the signed part only a version 1 vault's history may lie
        // (written before signatures); unsigned format 2 history is forged.
        if let Some(&first_unsigned) = commits.get(signed_len) {
            if self.backup(first_unsigned)?.config.format >= 2 {
                return Err(TrustError::Unsigned {
                    dir,
                    commit: short(first_unsigned),
                });
            }
        }
        commits.truncate(signed_len);
        let mut checked = 0;
        for c in commits.iter().chain(extra) {
            match self.signature_of(*c, &signer) {
                SigStatus::Good(_) => {}
                SigStatus::Unsigned => {
                    return Err(TrustError::Unsigned {
                        dir,
                        commit: short(*c),
                    })
                }
                SigStatus::Bad(why) => {
                    return Err(TrustError::Foreign {
                        dir,
                        commit: short(*c),
                        why,
                        pinned: signer_fp,
                    })
                }
            }
            checked += 1;
        }
        let (head_time, _) = self.commit_info(head)?;
        // Freshness: never older than what this machine has already read.
        if let Some((newest, newest_time)) = pin.as_ref().and_then(|p| p.newest) {
            let descends =
                newest == head || self.repo.graph_descendant_of(head, newest).unwrap_or(false);
            if !descends {
                return Err(TrustError::RolledBack {
                    dir,
                    signer: signer_fp,
                    what: format!(
                        "main is backup {} ({}), which does not descend from backup {} ({})",
                        short(head),
                        super::rfc3339(head_time),
                        short(newest),
                        super::rfc3339(newest_time)
                    ),
                });
            }
        }
        let pinned_now = pin.is_none();
        let fresh = Pin {
            signer: signer_fp.clone(),
            mac_key: Some(mac_key),
            newest: Some((head, head_time)),
        };
        if pin.as_ref() != Some(&fresh) {
            pins::update(&pin_path, |all| {
                // Another run may have read a newer backup meanwhile.
                let newer = all
                    .iter()
                    .find(|p| p.signer == signer_fp)
                    .and_then(|p| p.newest)
                    .filter(|(c, _)| {
                        *c != head && self.repo.graph_descendant_of(*c, head).unwrap_or(false)
                    });
                all.retain(|p| p.signer != signer_fp);
                all.push(Pin {
                    newest: newer.or(fresh.newest),
                    ..fresh.clone()
                });
            })?;
        }
        Ok(TrustedVault {
            vault: self,
            signer: signer.clone(),
            trusted: Trusted {
                fingerprint: Fingerprint { signer, mac_key },
                pinned_now,
                checked,
                head,
                head_time,
            },
        })
    }
}
