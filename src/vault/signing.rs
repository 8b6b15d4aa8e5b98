//! Signed history (vault-layout, "Signatures"): every commit the backup host
//! writes, on `main` and under `refs/sprayvault/`, carries a `gpgsig` header
//! holding an SSH signature (SSHSIG, namespace `git`, SHA-512) made with the
//! backup host's ed25519 key `VAULT/sprayvault/signing-key`, so that stock
//! `git verify-commit` with `gpg.format=ssh` and an allowed-signers file
//! checks it. The key can sign but not decrypt: it is not an age identity.
//!
//! The committer is `sprayvault <sprayvault@localhost>` unless the host name
//! is configured (`SPRAYVAULT_COMMITTER_HOST`): the host name is not leaked.

use super::{Vault, VaultError};
use git2::{Oid, Signature};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use std::path::PathBuf;

pub const NAMESPACE: &str = "git";
const KEY_FILE: &str = "signing-key";
/// The principal the allowed-signers file names the vault's signer with.
pub const PRINCIPAL: &str = "sprayvault";

/// Why a signature does not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigStatus {
    /// Signed by this key.
    Good(PublicKey),
    Unsigned,
    /// A signature that does not parse or does not verify.
    Bad(String),
}

impl Vault {
    fn signing_key_path(&self) -> PathBuf {
        self.local_dir().join(KEY_FILE)
    }

    /// Creates the signing key, mode 0600 from creation; an existing key is kept.
    pub fn create_signing_key(&self) -> Result<PublicKey, VaultError> {
        let path = self.signing_key_path();
        if path.exists() {
            return Ok(self.signing_key()?.public_key().clone());
        }
        let key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
            .map_err(|e| VaultError::Signing(format!("generating the signing key: {e}")))?;
        let text = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| VaultError::Signing(format!("encoding the signing key: {e}")))?;
        super::write::write_private(&path, text.as_bytes())?;
        Ok(key.public_key().clone())
    }

    /// The backup host's signing key.
    pub fn signing_key(&self) -> Result<PrivateKey, VaultError> {
        let path = self.signing_key_path();
        let text = std::fs::read_to_string(&path).map_err(|source| VaultError::Io {
            path: path.clone(),
            error: source,
        })?;
        PrivateKey::from_openssh(text)
            .map_err(|e| VaultError::Signing(format!("{}: {e}", path.display())))
    }

    /// Writes a commit signed with the signing key (created if the vault has
    /// none yet: a version 1 vault gets one on its first signed write).
    pub(super) fn signed_commit(
        &self,
        message: &str,
        tree: &git2::Tree,
        parents: &[&git2::Commit],
    ) -> Result<Oid, VaultError> {
        self.create_signing_key()?;
        let key = self.signing_key()?;
        let host = std::env::var("SPRAYVAULT_COMMITTER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let sig = self.git(
            "writing the commit",
            Signature::now("sprayvault", &format!("sprayvault@{host}")),
        )?;
        let buf = self.git(
            "writing the commit",
            self.repo
                .commit_create_buffer(&sig, &sig, message, tree, parents),
        )?;
        let content = std::str::from_utf8(&buf)
            .map_err(|_| VaultError::Signing("the commit is not UTF-8".into()))?;
        let armored = key
            .sign(NAMESPACE, HashAlg::Sha512, content.as_bytes())
            .and_then(|s| s.to_pem(LineEnding::LF))
            .map_err(|e| VaultError::Signing(format!("signing the commit: {e}")))?;
        self.git(
            "writing the commit",
            self.repo.commit_signed(content, armored.trim_end(), None),
        )
    }

    /// Refuses to build on `parent` unless this backup host signed it: once
    /// a vault is signed (format 2), history it did not write is not
    /// extended. A format 1 parent (before signatures) is accepted: the
    /// commit written on it is the upgrade.
    pub fn check_ours(&self, parent: Oid, format: u32) -> Result<(), VaultError> {
        if format < 2 {
            return Ok(());
        }
        let own = self.create_signing_key()?;
        let why = match self.signature_of(parent, &own) {
            SigStatus::Good(_) => return Ok(()),
            SigStatus::Unsigned => "it is not signed".to_string(),
            SigStatus::Bad(why) => why,
        };
        Err(VaultError::NotOurs {
            dir: self.dir.clone(),
            commit: parent.to_string()[..10].to_string(),
            why,
        })
    }

    /// Who signed `commit`, checked against `key`.
    pub fn signature_of(&self, commit: Oid, key: &PublicKey) -> SigStatus {
        let (sig, data) = match self.repo.extract_signature(&commit, None) {
            Ok(x) => x,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return SigStatus::Unsigned,
            Err(e) => return SigStatus::Bad(e.message().to_string()),
        };
        let parsed = match SshSig::from_pem(&*sig) {
            Ok(s) => s,
            Err(e) => return SigStatus::Bad(format!("not an SSH signature ({e})")),
        };
        if parsed.public_key() != key.key_data() {
            return SigStatus::Bad(format!(
                "signed by another key ({})",
                PublicKey::from(parsed.public_key().clone()).fingerprint(HashAlg::Sha256)
            ));
        }
        match key.verify(NAMESPACE, &data, &parsed) {
            Ok(()) => SigStatus::Good(key.clone()),
            Err(e) => SigStatus::Bad(format!("the signature does not verify ({e})")),
        }
    }
}

/// The line of a git allowed-signers file (`gpg.ssh.allowedSignersFile`)
/// that trusts `key` for commits.
pub fn allowed_signers_line(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    format!(
        "{PRINCIPAL} namespaces=\"{NAMESPACE}\" {}",
        k.to_openssh().unwrap_or_default().trim()
    )
}
