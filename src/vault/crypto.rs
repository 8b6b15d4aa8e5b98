//! age encryption to the vault's public recipients, and decryption with an
//! operator's identity file.
//!
//! The backup host only ever holds [`Recipients`]; an [`Identity`] is loaded
//! only by commands that read content (restore, show, recover).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("recipient {0:?} is not an age public key (age1...) or an OpenSSH ssh-ed25519/ssh-rsa public key; give the public half, e.g. from `age-keygen -y KEY` or `~/.ssh/id_ed25519.pub`")]
    BadRecipient(String),
    #[error(
        "no recipients: give at least one --recipient, or the vault cannot be decrypted by anyone"
    )]
    NoRecipients,
    #[error("cannot read identity file {path}: {source}; give an age identity file (age-keygen) or an OpenSSH private key with --identity")]
    ReadIdentity {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("identity file {path} holds no usable key: {why}; give an age identity file (age-keygen) or an unencrypted OpenSSH private key (ed25519 or rsa)")]
    BadIdentity { path: PathBuf, why: String },
    #[error("cannot decrypt {what}: {why}; the identity does not match any recipient of the vault, or the object is corrupt (run `sprayvault verify`)")]
    Decrypt { what: String, why: String },
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// The public keys every object is encrypted to.
pub struct Recipients {
    keys: Vec<Box<dyn age::Recipient + Send + Sync>>,
}

impl Recipients {
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Recipients, CryptoError> {
        if texts.is_empty() {
            return Err(CryptoError::NoRecipients);
        }
        let mut keys: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        for t in texts {
            let t = t.as_ref().trim();
            if let Ok(r) = t.parse::<age::x25519::Recipient>() {
                keys.push(Box::new(r));
            } else if let Ok(r) = t.parse::<age::ssh::Recipient>() {
                keys.push(Box::new(r));
            } else {
                return Err(CryptoError::BadRecipient(t.to_string()));
            }
        }
        Ok(Recipients { keys })
    }

    /// Encrypts `plain` into the binary age format.
    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_into(plain, Vec::with_capacity(plain.len() + 256))
    }

    /// Encrypts `plain` into `out` as it goes (age's 64 KiB chunks), so that
    /// no second copy of the content is held in memory; returns `out`.
    pub fn encrypt_into<W: Write>(&self, plain: &[u8], out: W) -> Result<W, CryptoError> {
        let enc = age::Encryptor::with_recipients(
            self.keys.iter().map(|k| k.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        let mut w = enc
            .wrap_output(out)
            .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        w.write_all(plain)
            .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        w.finish().map_err(|e| CryptoError::Encrypt(e.to_string()))
    }
}

/// An operator's private key(s), able to decrypt the vault.
pub struct Identity {
    keys: Vec<Box<dyn age::Identity>>,
    path: PathBuf,
}

impl Identity {
    /// Loads an age identity file (`AGE-SECRET-KEY-1...` lines) or an
    /// unencrypted OpenSSH private key.
    pub fn load(path: &Path) -> Result<Identity, CryptoError> {
        let bad = |why: String| CryptoError::BadIdentity {
            path: path.to_path_buf(),
            why,
        };
        let read_err = |source| CryptoError::ReadIdentity {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        // As ssh refuses private keys others can read: such a key may already
        // be someone else's.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &file.metadata().map_err(read_err)?.permissions(),
        );
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "it is readable or writable by group or others (mode {:04o}); `chmod 600` it (and consider the key exposed)",
                mode & 0o7777
            )));
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut data).map_err(read_err)?;
        let text = String::from_utf8_lossy(&data);
        if text.contains("-----BEGIN") {
            let id = age::ssh::Identity::from_buffer(&data[..], Some(path.display().to_string()))
                .map_err(|e| bad(e.to_string()))?;
            return match id {
                age::ssh::Identity::Unencrypted(_) => Ok(Identity { keys: vec![Box::new(id)], path: path.to_path_buf() }),
                age::ssh::Identity::Encrypted(_) => Err(bad(
                    "the OpenSSH key is passphrase-protected; decrypt a copy with `ssh-keygen -p` on a trusted machine, or use an age identity".into(),
                )),
                age::ssh::Identity::Unsupported(k) => Err(bad(format!("unsupported OpenSSH key ({k:?})"))),
            };
        }
        let file = age::IdentityFile::from_buffer(&data[..]).map_err(|e| bad(e.to_string()))?;
        let keys = file.into_identities().map_err(|e| bad(e.to_string()))?;
        if keys.is_empty() {
            return Err(bad("no AGE-SECRET-KEY-1 line".into()));
        }
        Ok(Identity {
            keys,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decrypts an age file held in memory; `what` names it in errors.
    pub fn decrypt(&self, cipher: &[u8], what: &str) -> Result<Vec<u8>, CryptoError> {
        let fail = |why: String| CryptoError::Decrypt {
            what: what.to_string(),
            why,
        };
        let dec = age::Decryptor::new_buffered(cipher).map_err(|e| fail(e.to_string()))?;
        let mut r = dec
            .decrypt(self.keys.iter().map(|k| k.as_ref()))
            .map_err(|e| fail(e.to_string()))?;
        let mut out = Vec::with_capacity(cipher.len());
        r.read_to_end(&mut out).map_err(|e| fail(e.to_string()))?;
        Ok(out)
    }

    /// Decrypts an age file as it is read from `cipher`, in bounded memory;
    /// `what` names it in errors. Read errors of the result mean damage.
    pub fn decrypt_reader<'r, R: Read + 'r>(
        &self,
        cipher: R,
        what: &str,
    ) -> Result<impl Read + 'r, CryptoError> {
        let fail = |why: String| CryptoError::Decrypt {
            what: what.to_string(),
            why,
        };
        let dec = age::Decryptor::new(cipher).map_err(|e| fail(e.to_string()))?;
        dec.decrypt(self.keys.iter().map(|k| k.as_ref()))
            .map_err(|e| fail(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_then_decrypt() {
        let key = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        std::fs::write(
            &path,
            format!(
                "# test\n{}\n",
                age::secrecy::ExposeSecret::expose_secret(&key.to_string())
            ),
        )
        .unwrap();
        private(&path, 0o600);
        let r = Recipients::parse(&[key.to_public().to_string()]).unwrap();
        let c1 = r.encrypt(b"secret").unwrap();
        let c2 = r.encrypt(b"secret").unwrap();
        assert_ne!(c1, c2, "age is randomized");
        let id = Identity::load(&path).unwrap();
        assert_eq!(id.decrypt(&c1, "x").unwrap(), b"secret");
        let other = age::x25519::Identity::generate();
        let r2 = Recipients::parse(&[other.to_public().to_string()]).unwrap();
        assert!(matches!(
            id.decrypt(&r2.encrypt(b"s").unwrap(), "y"),
            Err(CryptoError::Decrypt { .. })
        ));
    }

    fn private(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_identity_readable_by_group_or_others_is_refused() {
        let key = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        let text = age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_string();
        std::fs::write(&path, text + "\n").unwrap();
        for mode in [0o640, 0o604, 0o620] {
            private(&path, mode);
            let err = Identity::load(&path).err().expect("refused");
            assert!(
                err.to_string()
                    .contains(&format!("(mode {mode:04o}); `chmod 600` it")),
                "{err}"
            );
        }
        private(&path, 0o400);
        assert!(Identity::load(&path).is_ok());
    }

    #[test]
    fn bad_recipient() {
        assert!(matches!(
            Recipients::parse(&["nope"]),
            Err(CryptoError::BadRecipient(_))
        ));
        assert!(matches!(
            Recipients::parse::<&str>(&[]),
            Err(CryptoError::NoRecipients)
        ));
    }
}
