//! The operator's pin file (vault-layout, "Signatures"): which signers this
//! machine trusts, the mac-key each one's vault carries, and the newest
//! backup seen from it (what freshness is checked against).
//!
//! `$SPRAYVAULT_PINS`, else `$XDG_CONFIG_HOME/sprayvault/pins`, else
//! `~/.config/sprayvault/pins`. Version 2, one line per signer:
//!
//! ```text
//! sprayvault-pins 2
//! SHA256:7Wsd... TAB MAC-KEY-BLOB|- TAB NEWEST-COMMIT|- TAB NEWEST-TIME
//! ```
//!
//! Lines of the version 1 file (`DIR TAB PUBLIC-KEY TAB MAC-KEY-BLOB`,
//! keyed by path) are read as pins of their signer and rewritten as
//! version 2 by the next change.

use git2::Oid;
use ssh_key::{HashAlg, PublicKey};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use thiserror::Error;

const HEADER: &str = "sprayvault-pins 2";
/// A pin file larger than this is not one sprayvault wrote.
const MAX_SIZE: u64 = 1 << 20;

#[derive(Debug, Error)]
#[error("pin file {path}: {why}")]
pub struct PinFileError {
    pub path: PathBuf,
    pub why: String,
}

/// What this machine trusts about one signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// `SHA256:` and the unpadded base64 of the key's SHA-256.
    pub signer: String,
    /// The vault's `mac-key.age` blob, once a vault of this signer was read.
    pub mac_key: Option<Oid>,
    /// The newest backup of `main` read from this signer, and its time.
    pub newest: Option<(Oid, i64)>,
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

/// The fingerprint as OpenSSH and `sprayvault trust` print it.
pub fn signer_text(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Checks what an operator typed for a signer: `SHA256:` and 43 characters
/// of unpadded base64, as `ssh-keygen -l` and `sprayvault init` print it.
pub fn parse_signer(text: &str) -> Option<String> {
    let t = text.trim();
    let b64 = t.strip_prefix("SHA256:")?;
    (b64.len() == 43
        && b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
    .then(|| t.to_string())
}

fn bad(path: &Path, why: impl Into<String>) -> PinFileError {
    PinFileError {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

pub fn read(path: &Path) -> Result<Vec<Pin>, PinFileError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(bad(path, e.to_string())),
    };
    let meta = file.metadata().map_err(|e| bad(path, e.to_string()))?;
    // Whoever can write the pins decides which vaults are trusted.
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(bad(path, format!(
            "it is writable by group or others (mode {:04o}), so anyone could pin a vault: chmod 600 it and check its lines",
            mode & 0o7777
        )));
    }
    if meta.len() > MAX_SIZE {
        return Err(bad(
            path,
            format!("{} bytes is not a pin file sprayvault wrote", meta.len()),
        ));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_SIZE), &mut text)
        .map_err(|e| bad(path, e.to_string()))?;
    parse(&text).map_err(|why| bad(path, why.to_string()))
}

/// Why a line of a pin file is not a pin.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinLineError {
    #[error("line {0} is not SIGNER TAB MAC-KEY TAB NEWEST TAB TIME")]
    Fields(usize),
    #[error("line {0} has a malformed id or time")]
    Malformed(usize),
    #[error("line {0} is not a pin")]
    NotAPin(usize),
}

/// The pins in `text`, version 2 or version 1; the error names the line.
pub fn parse(text: &str) -> Result<Vec<Pin>, PinLineError> {
    let mut lines = text.lines().enumerate().peekable();
    let v2 = lines.peek().map(|(_, l)| *l == HEADER).unwrap_or(false);
    if v2 {
        lines.next();
    }
    let mut out: Vec<Pin> = vec![];
    for (i, line) in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let pin = if v2 {
            let (Some(signer), true) = (f.first().and_then(|s| parse_signer(s)), f.len() == 4)
            else {
                return Err(PinLineError::Fields(i + 1));
            };
            let oid = |s: &str| (s != "-").then(|| Oid::from_str(s).ok()).flatten();
            let mac_key = oid(f[1]);
            let newest = oid(f[2]).zip(f[3].parse::<i64>().ok());
            if (f[1] != "-" && mac_key.is_none()) || (f[2] != "-" && newest.is_none()) {
                return Err(PinLineError::Malformed(i + 1));
            }
            Pin {
                signer,
                mac_key,
                newest,
            }
        } else {
            let parsed = (f.len() == 3)
                .then(|| {
                    Some((
                        PublicKey::from_openssh(f[1]).ok()?,
                        Oid::from_str(f[2]).ok()?,
                    ))
                })
                .flatten();
            let (key, mac) = parsed.ok_or(PinLineError::NotAPin(i + 1))?;
            Pin {
                signer: signer_text(&key),
                mac_key: Some(mac),
                newest: None,
            }
        };
        out.retain(|p| p.signer != pin.signer);
        out.push(pin);
    }
    Ok(out)
}

/// The file's text for `pins`, as [`update`] writes it.
pub fn render(pins: &[Pin]) -> String {
    let mut text = format!("{HEADER}\n");
    for p in pins {
        let (newest, time) = match p.newest {
            Some((c, t)) => (c.to_string(), t.to_string()),
            None => ("-".into(), "0".into()),
        };
        let mac = p
            .mac_key
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into());
        text.push_str(&format!("{}\t{mac}\t{newest}\t{time}\n", p.signer));
    }
    text
}

/// Changes the pins under an exclusive lock (`PINS.lock`), so two runs on
/// one machine do not lose each other's pins: read, `change`, then a fresh
/// file of a random name, 0600 from its creation, synced and renamed over.
pub fn update(path: &Path, change: impl FnOnce(&mut Vec<Pin>)) -> Result<(), PinFileError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| bad(path, e.to_string()))?;
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(|e| bad(&lock_path, e.to_string()))?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(bad(&lock_path, std::io::Error::last_os_error().to_string()));
    }
    let mut pins = read(path)?;
    let before = pins.clone();
    change(&mut pins);
    if pins == before && path.exists() {
        return Ok(());
    }
    let nonce: u64 = rand::random();
    let tmp = path.with_extension(format!("tmp-{nonce:016x}"));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(render(&pins).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(parent)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(lock);
    written.map_err(|e| bad(path, e.to_string()))
}

/// Pins `signer` ahead of its first use (`trust --pin`), or re-pins it:
/// what was recorded about its vault (mac-key, newest backup) is forgotten
/// and taken from the next vault it reads.
pub fn pin(path: &Path, signer: &str) -> Result<(), PinFileError> {
    update(path, |pins| {
        pins.retain(|p| p.signer != signer);
        pins.push(Pin {
            signer: signer.to_string(),
            mac_key: None,
            newest: None,
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILu30MAHzzupxmCZKmMG2A4R+AxPZgzbNQYJz3OUzyzf";

    fn signer() -> String {
        signer_text(&PublicKey::from_openssh(KEY).unwrap())
    }

    #[test]
    fn the_pin_file_is_private_from_its_creation_and_refused_when_others_can_write_it() {
        let tmp = tempfile::tempdir().unwrap();
        let pins = tmp.path().join("pins");
        pin(&pins, &signer()).unwrap();
        let mode = std::fs::metadata(&pins).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&pins).unwrap().len(), 1);
        // Only the lock file is left beside it, no temporary file.
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["pins", "pins.lock"]);
        std::fs::set_permissions(&pins, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read(&pins).unwrap_err().to_string();
        assert!(e.contains("writable by group or others (mode 0666)"), "{e}");
    }

    #[test]
    fn version_1_lines_keyed_by_path_become_pins_of_their_signer() {
        let mac = "0123456789abcdef0123456789abcdef01234567";
        let pins = parse(&format!("/srv/vault\t{KEY}\t{mac}\n/copy\t{KEY}\t{mac}\n")).unwrap();
        assert_eq!(
            pins,
            [Pin {
                signer: signer(),
                mac_key: Some(Oid::from_str(mac).unwrap()),
                newest: None
            }]
        );
        // Written back as version 2, read back the same.
        assert_eq!(parse(&render(&pins)).unwrap(), pins);
    }

    #[test]
    fn a_malformed_line_or_signer_is_refused_by_line() {
        let e = parse(&format!("{HEADER}\nSHA256:short\t-\t-\t0\n")).unwrap_err();
        assert_eq!(e, PinLineError::Fields(2));
        let e = parse(&format!("{HEADER}\n{}\tnothex\t-\t0\n", signer())).unwrap_err();
        assert!(e.to_string().contains("line 2 has a malformed id"), "{e}");
        assert_eq!(parse_signer(&signer()), Some(signer()));
        assert_eq!(parse_signer("SHA256:abc"), None);
        assert_eq!(parse_signer("ssh-ed25519 AAAA"), None);
    }

    #[test]
    fn concurrent_pins_are_all_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pins");
        let signers: Vec<String> = (0..16)
            .map(|i| format!("SHA256:{}{:03}", "A".repeat(40), i))
            .collect();
        std::thread::scope(|s| {
            for sig in &signers {
                let path = &path;
                s.spawn(move || pin(path, sig).unwrap());
            }
        });
        assert_eq!(read(&path).unwrap().len(), signers.len());
    }
}
