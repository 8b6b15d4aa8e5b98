//! age encryption to the vault's public recipients, and decryption with an
//! operator's identity file.
//!
//! The backup host only ever holds [`Recipients`]; an [`Identity`] is loaded
//! only by commands that read content (restore, show, recover).

use age::secrecy::SecretString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("recipient {0:?} is not an age public key (age1...) or an OpenSSH ssh-ed25519/ssh-rsa public key; give the public half, e.g. from `age-keygen -y KEY` or `~/.ssh/id_ed25519.pub`")]
    BadRecipient(String),
    #[error(
        "no recipients: give at least one --recipient, or the vault cannot be decrypted by anyone"
    )]
    NoRecipients,
    #[error("cannot read identity file {path}: {error}; give an age identity file (age-keygen) or an OpenSSH private key with --identity")]
    ReadIdentity {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("identity file {path} holds no usable key: {why}; give an age identity file (age-keygen, or encrypted with `age -p`) or an OpenSSH private key (ed25519 or rsa)")]
    BadIdentity { path: PathBuf, why: String },
    #[error("identity file {path} is {protection}, and there is no terminal to ask for its passphrase on; give --passphrase-file FILE (or SPRAYVAULT_PASSPHRASE_FILE): a file of mode 0600 whose first line is the passphrase")]
    NoPassphrase {
        path: PathBuf,
        protection: Protection,
    },
    #[error("wrong passphrase for identity file {path} ({protection}); give the passphrase it was protected with")]
    WrongPassphrase {
        path: PathBuf,
        protection: Protection,
    },
    #[error("passphrase file {path}: {why}")]
    PassphraseFile { path: PathBuf, why: String },
    #[error("cannot read the passphrase on the terminal: {0}; give --passphrase-file FILE (or SPRAYVAULT_PASSPHRASE_FILE)")]
    Terminal(String),
    #[error("cannot decrypt {what}: {why}; the identity does not match any recipient of the vault, or the object is corrupt (run `sprayvault verify`)")]
    Decrypt { what: String, why: String },
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

impl crate::error::Classify for CryptoError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            CryptoError::Decrypt { .. } => crate::error::ErrorClass::CannotDecrypt,
            _ => crate::error::ErrorClass::Failed,
        }
    }
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
        let mut w = self.encrypting(out)?;
        w.write_all(plain)
            .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        w.finish().map_err(|e| CryptoError::Encrypt(e.to_string()))
    }

    /// A writer encrypting what it is given into `out`, for content that
    /// arrives in pieces; `finish` ends it.
    pub fn encrypting<W: Write>(
        &self,
        out: W,
    ) -> Result<age::stream::StreamWriter<W>, CryptoError> {
        let enc = age::Encryptor::with_recipients(
            self.keys.iter().map(|k| k.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        enc.wrap_output(out)
            .map_err(|e| CryptoError::Encrypt(e.to_string()))
    }
}

/// An operator's private key(s), able to decrypt the vault.
pub struct Identity {
    keys: Vec<Box<dyn age::Identity>>,
    path: PathBuf,
}

/// How an identity file is protected by a passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// An age file encrypted with a passphrase (`age -p`) holding an identity file.
    AgePassphrase,
    /// An OpenSSH private key with a passphrase (`ssh-keygen -N`).
    OpenSsh,
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protection::AgePassphrase => "an age identity file encrypted with a passphrase",
            Protection::OpenSsh => "a passphrase-protected OpenSSH key",
        })
    }
}

/// Asked for the passphrase of a protected identity file, at most once per
/// load and only when the file is protected: the CLI reads a passphrase file
/// or asks on the terminal.
pub type AskPassphrase<'a> = dyn FnMut(&Path, Protection) -> Result<SecretString, CryptoError> + 'a;

/// Why a file that must be private to its owner could not be read.
enum Unreadable {
    Io(std::io::Error),
    /// Readable or writable by group or others: the mode.
    Open(u32),
}

/// Reads a file that holds a secret, refusing it when group or others can
/// read or write it (as ssh refuses such keys: it may already be someone
/// else's). The buffer is wiped when dropped.
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, Unreadable> {
    let mut file = std::fs::File::open(path).map_err(Unreadable::Io)?;
    let meta = file.metadata().map_err(Unreadable::Io)?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
    if mode & 0o077 != 0 {
        return Err(Unreadable::Open(mode & 0o7777));
    }
    // Room for the whole file and one byte more, so that reading to the end
    // never moves the secret to a larger buffer (leaving a copy behind).
    let mut data = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.read_to_end(&mut data).map_err(Unreadable::Io)?;
    Ok(data)
}

fn open_mode_why(mode: u32) -> String {
    format!(
        "it is readable or writable by group or others (mode {mode:04o}); `chmod 600` it (and consider the secret exposed)"
    )
}

/// Reads a passphrase from the first line of `path`, which only its owner
/// may read or write.
pub fn read_passphrase_file(path: &Path) -> Result<SecretString, CryptoError> {
    let bad = |why: String| CryptoError::PassphraseFile {
        path: path.to_path_buf(),
        why,
    };
    let data = read_private(path).map_err(|e| match e {
        Unreadable::Io(e) => bad(format!("cannot read it: {e}")),
        Unreadable::Open(mode) => bad(open_mode_why(mode)),
    })?;
    let text = std::str::from_utf8(&data)
        .map_err(|_| bad("it is not UTF-8 text; put the passphrase on its first line".into()))?;
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(bad(
            "its first line is empty; put the passphrase there".into()
        ));
    }
    Ok(SecretString::from(line.to_string()))
}

/// Does `data` look like an age file (binary or armored)?
fn is_age_file(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    let data = &data[start..];
    data.starts_with(b"age-encryption.org/")
        || data.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

impl Identity {
    /// Loads an age identity file (`AGE-SECRET-KEY-1...` lines) or an
    /// unencrypted OpenSSH private key; a protected one is refused with
    /// [`CryptoError::NoPassphrase`] (see [`Identity::load_with`]).
    pub fn load(path: &Path) -> Result<Identity, CryptoError> {
        Identity::load_with(path, &mut |path, protection| {
            Err(CryptoError::NoPassphrase {
                path: path.to_path_buf(),
                protection,
            })
        })
    }

    /// Loads an age identity file, an age file encrypted with a passphrase
    /// that holds one (`age-keygen | age -p`), or an OpenSSH private key
    /// (ed25519 or rsa, with a passphrase or without). `ask` gives the
    /// passphrase of a protected file; a wrong one is
    /// [`CryptoError::WrongPassphrase`]. Decrypted key text is wiped.
    pub fn load_with(path: &Path, ask: &mut AskPassphrase<'_>) -> Result<Identity, CryptoError> {
        let bad = |why: String| CryptoError::BadIdentity {
            path: path.to_path_buf(),
            why,
        };
        let data = read_private(path).map_err(|e| match e {
            Unreadable::Io(source) => CryptoError::ReadIdentity {
                path: path.to_path_buf(),
                error: source,
            },
            Unreadable::Open(mode) => bad(open_mode_why(mode)),
        })?;
        let keys = if is_age_file(&data) {
            let passphrase = ask(path, Protection::AgePassphrase)?;
            let plain = decrypt_identity_file(path, &data, passphrase)?;
            if is_age_file(&plain) {
                return Err(bad("it decrypts to another age file, not to an identity; encrypt the identity itself (`age-keygen | age -p > FILE`)".into()));
            }
            parse_keys(path, &plain, &mut |path, protection| {
                Err(CryptoError::BadIdentity {
                    path: path.to_path_buf(),
                    why: format!("it decrypts to {protection}; protect the key one way only"),
                })
            })?
        } else {
            parse_keys(path, &data, ask)?
        };
        Ok(Identity {
            keys,
            path: path.to_path_buf(),
        })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decrypts an age file held in memory; `what` names it in errors. The
    /// plaintext is the caller's to wipe (see [`Identity::decrypt_secret`]);
    /// what was decrypted before a failure is wiped here.
    pub fn decrypt(&self, cipher: &[u8], what: &str) -> Result<Vec<u8>, CryptoError> {
        let mut plain = self.decrypt_secret(cipher, what)?;
        Ok(std::mem::take(&mut *plain))
    }

    /// The plaintext of `cipher` as a stream: nothing held but age's chunk
    /// of 64 KiB.
    pub fn decrypting<'c>(
        &self,
        cipher: &'c [u8],
        what: &str,
    ) -> Result<impl std::io::Read + 'c, CryptoError> {
        let fail = |why: String| CryptoError::Decrypt {
            what: what.to_string(),
            why,
        };
        let dec = age::Decryptor::new_buffered(cipher).map_err(|e| fail(e.to_string()))?;
        dec.decrypt(self.keys.iter().map(|k| k.as_ref()))
            .map_err(|e| fail(e.to_string()))
    }

    /// As [`Identity::decrypt`], the plaintext wiped when dropped.
    pub fn decrypt_secret(
        &self,
        cipher: &[u8],
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let fail = |why: String| CryptoError::Decrypt {
            what: what.to_string(),
            why,
        };
        let dec = age::Decryptor::new_buffered(cipher).map_err(|e| fail(e.to_string()))?;
        let mut r = dec
            .decrypt(self.keys.iter().map(|k| k.as_ref()))
            .map_err(|e| fail(e.to_string()))?;
        // The plaintext is shorter than the ciphertext: no reallocation
        // leaves a copy behind.
        let mut out = Zeroizing::new(Vec::with_capacity(cipher.len()));
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

/// The keys of an identity file's plaintext: an OpenSSH private key, or
/// age identity lines.
fn parse_keys(
    path: &Path,
    data: &[u8],
    ask: &mut AskPassphrase<'_>,
) -> Result<Vec<Box<dyn age::Identity>>, CryptoError> {
    let bad = |why: String| CryptoError::BadIdentity {
        path: path.to_path_buf(),
        why,
    };
    if data.windows(10).any(|w| w == b"-----BEGIN") {
        let id = age::ssh::Identity::from_buffer(data, Some(path.display().to_string()))
            .map_err(|e| bad(e.to_string()))?;
        return match id {
            age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(id)]),
            age::ssh::Identity::Encrypted(key) => {
                let passphrase = ask(path, Protection::OpenSsh)?;
                let key = key.decrypt(passphrase).map_err(|e| match e {
                    age::DecryptError::KeyDecryptionFailed => CryptoError::WrongPassphrase {
                        path: path.to_path_buf(),
                        protection: Protection::OpenSsh,
                    },
                    e => bad(e.to_string()),
                })?;
                Ok(vec![Box::new(age::ssh::Identity::from(key))])
            }
            age::ssh::Identity::Unsupported(k) => Err(bad(format!(
                "unsupported OpenSSH key ({k:?}); use an ed25519 or rsa key in OpenSSH format (`ssh-keygen -p -f FILE` rewrites an old PEM key)"
            ))),
        };
    }
    let file = age::IdentityFile::from_buffer(data).map_err(|e| bad(e.to_string()))?;
    let keys = file.into_identities().map_err(|e| bad(e.to_string()))?;
    if keys.is_empty() {
        return Err(bad("no AGE-SECRET-KEY-1 line".into()));
    }
    Ok(keys)
}

/// The plaintext of an identity file encrypted with a passphrase.
fn decrypt_identity_file(
    path: &Path,
    data: &[u8],
    passphrase: SecretString,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let bad = |why: String| CryptoError::BadIdentity {
        path: path.to_path_buf(),
        why,
    };
    let dec = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(data))
        .map_err(|e| bad(format!("it is not a readable age file ({e})")))?;
    if !dec.is_scrypt() {
        return Err(bad("it is an age file encrypted to a key, not with a passphrase; give the identity that decrypts it instead".into()));
    }
    let id = age::scrypt::Identity::new(passphrase);
    let mut r = dec
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                CryptoError::WrongPassphrase {
                    path: path.to_path_buf(),
                    protection: Protection::AgePassphrase,
                }
            }
            e => bad(e.to_string()),
        })?;
    // The plaintext is shorter than the file: no reallocation leaves a copy.
    let mut plain = Zeroizing::new(Vec::with_capacity(data.len()));
    r.read_to_end(&mut plain)
        .map_err(|e| bad(format!("it is damaged ({e})")))?;
    Ok(plain)
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

    /// `text` encrypted with `passphrase` as `age -p` does (binary, or
    /// armored as `age -p -a`), with a low work factor to keep tests fast.
    fn age_p(text: &str, passphrase: &str, armor: bool) -> Vec<u8> {
        let mut r = age::scrypt::Recipient::new(SecretString::from(passphrase));
        r.set_work_factor(10);
        let enc =
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let format = if armor {
            age::armor::Format::AsciiArmor
        } else {
            age::armor::Format::Binary
        };
        let mut w = enc
            .wrap_output(age::armor::ArmoredWriter::wrap_output(&mut out, format).unwrap())
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.finish().unwrap().finish().unwrap();
        out
    }

    /// Answers with `passphrase`, counting the questions.
    fn answer<'a>(
        passphrase: &'a str,
        asked: &'a mut Vec<Protection>,
    ) -> impl FnMut(&Path, Protection) -> Result<SecretString, CryptoError> + 'a {
        move |_, p| {
            asked.push(p);
            Ok(SecretString::from(passphrase))
        }
    }

    /// `path` loads with `passphrase` (asked once, as `protection`) and
    /// then decrypts `cipher` to `plain`; a wrong passphrase and none at all
    /// fail, each with its own error.
    fn check_protected(
        path: &Path,
        protection: Protection,
        passphrase: &str,
        cipher: &[u8],
        plain: &[u8],
    ) {
        let mut asked = Vec::new();
        let id = Identity::load_with(path, &mut answer(passphrase, &mut asked)).unwrap();
        assert_eq!(asked, [protection]);
        assert_eq!(id.decrypt(cipher, "x").unwrap(), plain);

        let wrong = format!("{passphrase}!");
        let err = Identity::load_with(path, &mut answer(&wrong, &mut asked))
            .err()
            .expect("a wrong passphrase fails");
        assert!(
            matches!(err, CryptoError::WrongPassphrase { protection: p, .. } if p == protection),
            "{err}"
        );
        assert!(
            err.to_string().starts_with(&format!(
                "wrong passphrase for identity file {} ({protection})",
                path.display()
            )),
            "{err}"
        );

        let err = Identity::load(path).err().expect("no passphrase, no key");
        assert!(matches!(err, CryptoError::NoPassphrase { .. }), "{err}");
        assert!(err.to_string().contains("--passphrase-file FILE"), "{err}");
    }

    #[test]
    fn a_passphrase_protected_age_identity_is_decrypted_with_its_passphrase() {
        let key = age::x25519::Identity::generate();
        let text = format!(
            "# created: today\n{}\n",
            age::secrecy::ExposeSecret::expose_secret(&key.to_string())
        );
        let r = Recipients::parse(&[key.to_public().to_string()]).unwrap();
        let cipher = r.encrypt(b"ca.key").unwrap();
        let dir = tempfile::tempdir().unwrap();
        for armor in [false, true] {
            let path = dir.path().join(format!("key-{armor}.age"));
            std::fs::write(&path, age_p(&text, "correct horse", armor)).unwrap();
            private(&path, 0o600);
            check_protected(
                &path,
                Protection::AgePassphrase,
                "correct horse",
                &cipher,
                b"ca.key",
            );
        }
    }

    #[test]
    fn an_unprotected_identity_never_asks_for_a_passphrase() {
        let key = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        std::fs::write(
            &path,
            age::secrecy::ExposeSecret::expose_secret(&key.to_string()),
        )
        .unwrap();
        private(&path, 0o600);
        let mut ask = |_: &Path, _| -> Result<SecretString, CryptoError> { panic!("asked") };
        assert!(Identity::load_with(&path, &mut ask).is_ok());
    }

    #[test]
    fn an_age_file_encrypted_to_a_key_is_not_a_protected_identity() {
        let key = age::x25519::Identity::generate();
        let r = Recipients::parse(&[key.to_public().to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.age");
        std::fs::write(&path, r.encrypt(b"AGE-SECRET-KEY-1X").unwrap()).unwrap();
        private(&path, 0o600);
        let mut asked = Vec::new();
        let err = Identity::load_with(&path, &mut answer("p", &mut asked))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("encrypted to a key, not with a passphrase"),
            "{err}"
        );
    }

    /// A key made by the real `ssh-keygen -N PASSPHRASE`.
    #[cfg(feature = "lab")]
    fn ssh_keygen(dir: &Path, kind: &str, passphrase: &str) -> (PathBuf, String) {
        let path = dir.join(format!("id_{kind}"));
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen runs (scripts/install-deps installs openssh-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        (path, public.trim().to_string())
    }

    // Runs ssh-keygen (an outside program: `--features lab`).
    #[cfg(feature = "lab")]
    #[test]
    fn passphrase_protected_openssh_keys_are_decrypted_with_their_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        for kind in ["ed25519", "rsa"] {
            let (path, public) = ssh_keygen(dir.path(), kind, "open sesame");
            let cipher = Recipients::parse(&[public])
                .unwrap()
                .encrypt(b"sa.key")
                .unwrap();
            check_protected(
                &path,
                Protection::OpenSsh,
                "open sesame",
                &cipher,
                b"sa.key",
            );
        }
    }

    #[test]
    fn a_passphrase_file_must_be_private_and_its_first_line_is_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "s3cret pass\r\nignored\n").unwrap();
        for mode in [0o640, 0o604, 0o660] {
            private(&path, mode);
            let err = read_passphrase_file(&path).expect_err("refused");
            assert!(
                err.to_string()
                    .contains(&format!("(mode {mode:04o}); `chmod 600` it")),
                "{err}"
            );
        }
        for mode in [0o600, 0o400] {
            private(&path, mode);
            let p = read_passphrase_file(&path).unwrap();
            assert_eq!(age::secrecy::ExposeSecret::expose_secret(&p), "s3cret pass");
        }
        private(&path, 0o600);
        std::fs::write(&path, "\nsecond\n").unwrap();
        let err = read_passphrase_file(&path).expect_err("empty first line");
        assert!(err.to_string().contains("first line is empty"), "{err}");
        let err = read_passphrase_file(&dir.path().join("none")).expect_err("missing");
        assert!(err.to_string().contains("cannot read it"), "{err}");
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
