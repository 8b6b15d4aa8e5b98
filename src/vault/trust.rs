//! Authenticated history on the operator's side (vault-layout,
//! "Signatures"): a vault's fingerprint (the backup host's signing key and
//! the `mac-key.age` blob) is pinned on first use in a file on the
//! operator's machine; afterwards every read refuses history that is
//! unsigned, signed by another key, or carries another mac-key, unless the
//! operator explicitly accepts the new fingerprint.
//!
//! Pin file: `$SPRAYVAULT_PINS`, else `$XDG_CONFIG_HOME/sprayvault/pins`,
//! else `~/.config/sprayvault/pins`; one line per vault,
//! `VAULT-DIR TAB SIGNER TAB MAC-KEY-BLOB`, where SIGNER is the OpenSSH
//! public key (`ssh-ed25519 AAAA...`).

use super::signing::SigStatus;
use super::{Vault, VaultError, MAC_KEY_AGE};
use git2::Oid;
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("vault {dir}: commit {commit} is not signed; history appended by someone other than the backup host is refused; compare with another copy of the vault, and move refs/heads/main back to the newest commit that `git verify-commit` accepts (`sprayvault trust --allowed-signers` prints the signer); a vault written before signatures (format 1) is signed by its next backup with this sprayvault")]
    Unsigned { dir: PathBuf, commit: String },
    #[error("vault {dir}: commit {commit}: {why}; the vault's pinned signer is {pinned}; check the vault's origin, or run `sprayvault trust --accept-new-key` if the backup host's key was replaced on purpose")]
    Foreign {
        dir: PathBuf,
        commit: String,
        why: String,
        pinned: String,
    },
    #[error("vault {dir}: commit {commit} carries another mac-key.age ({found}, pinned {pinned}); the vault was re-keyed or tampered with; run `sprayvault trust --accept-new-key` only if you know why")]
    Rekeyed {
        dir: PathBuf,
        commit: String,
        found: String,
        pinned: String,
    },
    #[error("pin file {path}: {why}")]
    PinFile { path: PathBuf, why: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl crate::exit::ExitStatus for TrustError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            TrustError::Vault(v) => v.exit(),
            TrustError::PinFile { .. } => crate::exit::Exit::Failure,
            _ => crate::exit::Exit::Untrusted,
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

/// The outcome of authenticating a vault's history.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub fingerprint: Fingerprint,
    /// True when this run pinned the vault (first use or accepted new key).
    pub pinned_now: bool,
    /// Signed commits checked.
    pub checked: usize,
}

pub fn pin_file() -> PathBuf {
    if let Some(p) = std::env::var_os("SPRAYVAULT_PINS").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".config")
        });
    base.join("sprayvault").join("pins")
}

fn vault_key(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

fn read_pins(path: &Path) -> Result<Vec<(String, Fingerprint)>, TrustError> {
    let bad = |why: String| TrustError::PinFile {
        path: path.to_path_buf(),
        why,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(bad(e.to_string())),
    };
    // Whoever can write the pins decides which vaults are trusted.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(path)
            .map_err(|e| bad(e.to_string()))?
            .permissions(),
    );
    if mode & 0o022 != 0 {
        return Err(bad(format!(
            "it is writable by group or others (mode {:04o}), so anyone could pin a vault: chmod 600 it and check its lines",
            mode & 0o7777
        )));
    }
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let parsed = (f.len() == 3)
            .then(|| {
                Some((
                    PublicKey::from_openssh(f[1]).ok()?,
                    Oid::from_str(f[2]).ok()?,
                ))
            })
            .flatten();
        let (signer, mac_key) =
            parsed.ok_or_else(|| bad(format!("line {} is not DIR TAB KEY TAB BLOB", i + 1)))?;
        out.push((f[0].to_string(), Fingerprint { signer, mac_key }));
    }
    Ok(out)
}

fn write_pin(path: &Path, dir: &str, fp: &Fingerprint) -> Result<(), TrustError> {
    let bad = |why: String| TrustError::PinFile {
        path: path.to_path_buf(),
        why,
    };
    let mut pins = read_pins(path)?;
    pins.retain(|(d, _)| d != dir);
    pins.push((dir.to_string(), fp.clone()));
    let mut text = String::new();
    for (d, f) in &pins {
        let mut k = f.signer.clone();
        k.set_comment("");
        let key = k.to_openssh().map_err(|e| bad(e.to_string()))?;
        text.push_str(&format!("{d}\t{}\t{}\n", key.trim(), f.mac_key));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| bad(e.to_string()))?;
    }
    // A fresh file of a random name, 0600 from its creation, renamed over.
    let nonce: u64 = rand::random();
    let tmp = path.with_extension(format!("tmp-{nonce:016x}"));
    let written = (|| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| bad(e.to_string()))
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
    fn signer_of(&self, commit: Oid) -> Result<Option<PublicKey>, String> {
        match self.repo.extract_signature(&commit, None) {
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.message().to_string()),
            Ok((sig, _)) => SshSig::from_pem(&*sig)
                .map(|s| Some(PublicKey::from(s.public_key().clone())))
                .map_err(|e| format!("not an SSH signature ({e})")),
        }
    }

    /// Authenticates the branch (and `extra` commits, such as a snapshot
    /// ref's) against the pinned fingerprint, pinning it on first use or when
    /// `accept_new` is given. Every first-parent commit from the newest one
    /// down to the first unsigned one (the history of a version 1 vault
    /// before it was signed, authenticated by the signed commits above it)
    /// must be signed by the signer, and the newest one carry the pinned
    /// `mac-key.age`.
    pub fn authenticate(&self, extra: &[Oid], accept_new: bool) -> Result<Trusted, TrustError> {
        let dir = self.dir.clone();
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
                    why,
                    pinned: "-".into(),
                })
            }
        };
        let mac_key = self
            .mac_key_blob(head)?
            .ok_or_else(|| VaultError::Damaged {
                rev: short(head),
                what: format!("no {MAC_KEY_AGE}"),
            })?;
        let found = Fingerprint { signer, mac_key };
        let pins = pin_file();
        let key = vault_key(&self.dir);
        let pinned = read_pins(&pins)?
            .into_iter()
            .find(|(d, _)| *d == key)
            .map(|(_, f)| f);
        let (fp, pinned_now) = match pinned {
            Some(p) if p == found || !accept_new => (p, false),
            _ => (found.clone(), true),
        };
        let pinned_signer = fp.signer.fingerprint(HashAlg::Sha256).to_string();
        // The whole signed part of history, then the extra commits.
        let mut commits = self.history()?;
        let signed_len = commits
            .iter()
            .position(|c| matches!(self.signature_of(*c, &fp.signer), SigStatus::Unsigned))
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
            match self.signature_of(*c, &fp.signer) {
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
                        pinned: pinned_signer,
                    })
                }
            }
            checked += 1;
        }
        // A re-key shows at the newest commit; older commits keep the key
        // they were written with, authenticated by the signatures above.
        if found.mac_key != fp.mac_key {
            return Err(TrustError::Rekeyed {
                dir,
                commit: short(head),
                found: found.mac_key.to_string(),
                pinned: fp.mac_key.to_string(),
            });
        }
        if pinned_now {
            write_pin(&pins, &key, &fp)?;
        }
        Ok(Trusted {
            fingerprint: fp,
            pinned_now,
            checked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fp() -> Fingerprint {
        Fingerprint {
            signer: PublicKey::from_openssh(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILu30MAHzzupxmCZKmMG2A4R+AxPZgzbNQYJz3OUzyzf",
            )
            .unwrap(),
            mac_key: Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap(),
        }
    }

    #[test]
    fn the_pin_file_is_private_from_its_creation_and_refused_when_others_can_write_it() {
        let tmp = tempfile::tempdir().unwrap();
        let pins = tmp.path().join("pins");
        write_pin(&pins, "/srv/vault", &fp()).unwrap();
        let mode = std::fs::metadata(&pins).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_pins(&pins).unwrap().len(), 1);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        std::fs::set_permissions(&pins, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_pins(&pins).unwrap_err().to_string();
        assert!(e.contains("writable by group or others (mode 0666)"), "{e}");
    }
}
