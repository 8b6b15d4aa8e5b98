//! The backup host's record of which blob holds which content (vault-layout,
//! "Content identity and deduplication"): `sprayvault/bindings`, local to
//! the backup host and never committed or pushed.
//!
//! Whoever holds the git repository can pair any blob with any mac in a
//! manifest, and anyone can encrypt to the vault's public recipients. A
//! blob is therefore reused only when this file says the backup host itself
//! encrypted that content into that blob: a swapped blob is never committed
//! again as current content, and the next backup writes a fresh one.
//!
//! Format: the line `sprayvault-bindings 1`, then one line per blob written,
//! `mac SP blob-id`, appended right after the blob is written, before any
//! commit refers to it. A missing file (or a line lost in a crash) means no
//! binding is proven: that content is encrypted afresh once, which costs
//! space but is never wrong.

use super::{Vault, VaultError};
use git2::Oid;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

pub const HEADER: &str = "sprayvault-bindings 1";
const FILE: &str = "bindings";

/// The proven `(mac, blob)` pairs, and the file new ones are appended to.
pub struct Bindings {
    path: PathBuf,
    proven: HashSet<(String, Oid)>,
}

impl Bindings {
    /// Reads the vault's bindings; lines that do not parse prove nothing.
    pub fn load(vault: &Vault) -> Result<Bindings, VaultError> {
        let path = vault.local_dir().join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(VaultError::Io {
                    path,
                    error: source,
                })
            }
        };
        Ok(Bindings {
            proven: parse(&text),
            path,
        })
    }

    /// True when the backup host wrote `oid` for content `mac`.
    pub fn proven(&self, mac: &str, oid: Oid) -> bool {
        self.proven.contains(&(mac.to_string(), oid))
    }

    /// Records that blob `oid`, just written, holds content `mac`.
    pub fn record(&mut self, mac: &str, oid: Oid) -> Result<(), VaultError> {
        if self.proven(mac, oid) {
            return Ok(());
        }
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| VaultError::Io {
            path: self.path.clone(),
            error: source,
        };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io)?;
        let mut line = String::new();
        if f.metadata().map_err(io)?.len() == 0 {
            line.push_str(HEADER);
            line.push('\n');
        }
        line.push_str(&format!("{mac} {oid}\n"));
        f.write_all(line.as_bytes()).map_err(io)?;
        self.proven.insert((mac.to_string(), oid));
        Ok(())
    }
}

fn parse(text: &str) -> HashSet<(String, Oid)> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return HashSet::new();
    }
    lines
        .filter_map(|l| {
            let (mac, oid) = l.split_once(' ')?;
            let ok = mac.len() == 64 && mac.bytes().all(|b| b.is_ascii_hexdigit());
            ok.then_some(())?;
            Some((mac.to_string(), Oid::from_str(oid).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_lines_under_the_header() {
        let mac = "ab".repeat(32);
        let oid = "0123456789abcdef0123456789abcdef01234567";
        let text = format!("{HEADER}\n{mac} {oid}\nshort {oid}\n{mac} nothex\n");
        let p = parse(&text);
        assert_eq!(p.len(), 1);
        assert!(p.contains(&(mac.clone(), Oid::from_str(oid).unwrap())));
        assert!(parse(&format!("{mac} {oid}\n")).is_empty());
    }
}
