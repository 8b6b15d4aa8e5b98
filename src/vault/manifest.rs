//! The per-node manifest: plaintext metadata of every entry recorded for a
//! node (see `vault-layout/README.md`, "Manifest").
//!
//! Format: the header line `sprayvault-manifest 1`, then one line per entry,
//! sorted by path, with exactly 11 TAB-separated non-empty fields
//! `kind mode uid gid owner group size mtime mac path target` (`-` = none).
//! Parsing is strict: a vault written by anything else, or damaged, is
//! rejected with the line number instead of being half-understood.

use crate::paths::{check_link_target, check_path};
use std::collections::BTreeMap;
use thiserror::Error;

pub const HEADER: &str = "sprayvault-manifest 1";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("manifest does not start with {HEADER:?}: written by a newer sprayvault, or damaged")]
    Header,
    #[error("manifest is not UTF-8")]
    Utf8,
}

/// Always a plain failure: what went wrong is in the message.
impl crate::error::Classify for ManifestError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Failed
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    pub fn letter(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
        }
    }
}

/// One recorded entry (file, directory or symlink) of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits, `mode & 0o7777`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
    /// Keyed hash of the content, files only.
    pub mac: Option<String>,
    pub path: String,
    /// Symlink target, links only.
    pub target: Option<String>,
}

impl Entry {
    /// True when `other` records the same thing (content, metadata).
    pub fn same_as(&self, other: &Entry) -> bool {
        self == other
    }
}

/// All entries of one node, keyed by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: BTreeMap<String, Entry>,
}

fn opt(field: &Option<String>) -> &str {
    field.as_deref().unwrap_or("-")
}

fn name_field(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

/// True when `s` is a number written the way `to_text` writes it: decimal
/// digits without a sign or leading zeros (`-` first if `signed` allows a
/// negative value, but never `-0`). `str::parse` alone also takes `+5`,
/// `007` and `-0`, which would make two texts for one manifest.
fn canonical_decimal(s: &str, signed: bool) -> bool {
    let digits = match s.strip_prefix('-') {
        Some(rest) if signed => {
            if rest == "0" {
                return false;
            }
            rest
        }
        _ => s,
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

impl Manifest {
    /// Combines freshly read entries with the previous manifest: entries that
    /// could not be read now keep their previous record (and everything the
    /// previous backup had below them). Returns the manifest and the carried
    /// file paths.
    pub fn carry_forward(
        fresh: Vec<Entry>,
        errors: &[(String, String)],
        old: Option<&Manifest>,
    ) -> (Manifest, Vec<String>) {
        let mut m = Manifest::default();
        for e in fresh {
            m.insert(e);
        }
        let mut carried = Vec::new();
        if let Some(old) = old {
            for (path, _) in errors {
                // The entry and the ones below it; not its siblings that sort
                // between them (`/etc/kubernetes-old` comes before
                // `/etc/kubernetes/pki`, as `-` sorts before `/`).
                let below = format!("{path}/");
                let subtree = old.entries.get_key_value(path).into_iter().chain(
                    old.entries
                        .range(below.clone()..)
                        .take_while(|(p, _)| p.starts_with(&below)),
                );
                for (p, e) in subtree {
                    if !m.entries.contains_key(p) {
                        m.insert(e.clone());
                        if e.kind == Kind::File {
                            carried.push(p.clone());
                        }
                    }
                }
            }
        }
        (m, carried)
    }

    pub fn insert(&mut self, entry: Entry) {
        self.entries.insert(entry.path.clone(), entry);
    }

    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().filter(|e| e.kind == Kind::File)
    }

    /// Serializes in the canonical form: identical manifests give identical
    /// bytes, so an unchanged node reuses its manifest blob.
    /// The canonical text, only when it reads back as this very manifest:
    /// a writer never stores a line that the next run could not parse (an
    /// owner name with a TAB, a path with a newline).
    pub fn to_checked_text(&self) -> Result<String, ManifestError> {
        let text = self.to_text();
        match Manifest::parse(text.as_bytes()) {
            Ok(back) if back == *self => Ok(text),
            Ok(_) => Err(ManifestError::Line {
                line: 0,
                why: "the manifest does not read back as written; not stored".into(),
            }),
            Err(e) => Err(e),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.entries.len() * 160);
        out.push_str(HEADER);
        out.push('\n');
        for e in self.entries.values() {
            out.push_str(&format!(
                "{}\t{:04o}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                e.kind.letter(),
                e.mode & 0o7777,
                e.uid,
                e.gid,
                opt(&e.owner),
                opt(&e.group),
                e.size,
                e.mtime,
                opt(&e.mac),
                e.path,
                opt(&e.target),
            ));
        }
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::Utf8)?;
        let body = text.strip_suffix('\n').ok_or_else(|| ManifestError::Line {
            line: text.split('\n').count(),
            why: "missing final newline".into(),
        })?;
        let mut lines = body.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(ManifestError::Header);
        }
        let mut manifest = Manifest::default();
        let mut previous: Option<String> = None;
        for (i, line) in lines.enumerate() {
            let lineno = i + 2;
            let err = |why: String| ManifestError::Line { line: lineno, why };
            if line.is_empty() {
                return Err(err("empty line".into()));
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 11 {
                return Err(err(format!(
                    "expected 11 TAB-separated fields, found {}",
                    f.len()
                )));
            }
            if f.iter().any(|x| x.is_empty()) {
                return Err(err("empty field (use '-' for none)".into()));
            }
            let kind = match f[0] {
                "f" => Kind::File,
                "d" => Kind::Dir,
                "l" => Kind::Symlink,
                k => return Err(err(format!("unknown kind {k:?}"))),
            };
            if f[1].len() != 4 || !f[1].bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(err(format!("mode {:?} is not 4 octal digits", f[1])));
            }
            let mode = u32::from_str_radix(f[1], 8).map_err(|e| err(e.to_string()))?;
            let num = |s: &str, what: &str| -> Result<u64, ManifestError> {
                if !canonical_decimal(s, false) {
                    return Err(err(format!(
                        "{what} {s:?} is not a number in plain decimal (no sign, no leading zeros)"
                    )));
                }
                s.parse::<u64>()
                    .map_err(|_| err(format!("{what} {s:?} is not a number")))
            };
            let uid = u32::try_from(num(f[2], "uid")?).map_err(|_| err("uid too large".into()))?;
            let gid = u32::try_from(num(f[3], "gid")?).map_err(|_| err("gid too large".into()))?;
            let size = num(f[6], "size")?;
            if !canonical_decimal(f[7], true) {
                return Err(err(format!(
                    "mtime {:?} is not a number in plain decimal (no '+', no leading zeros, no -0)",
                    f[7]
                )));
            }
            let mtime = f[7]
                .parse::<i64>()
                .map_err(|_| err(format!("mtime {:?} is not a number", f[7])))?;
            for (what, name) in [("owner", f[4]), ("group", f[5])] {
                if name != "-" && !crate::source::accounts::plain_account_name(name) {
                    return Err(err(format!(
                        "{what} {} is not a plain account name",
                        crate::term::escape(name)
                    )));
                }
            }
            let mac = name_field(f[8]);
            match (kind, &mac) {
                (Kind::File, Some(m))
                    if m.len() == 64
                        && m.bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) => {}
                (Kind::File, _) => return Err(err("a file needs a 64-hex-digit mac".into())),
                (_, None) => {}
                (_, Some(_)) => return Err(err("only files have a mac".into())),
            }
            let path = f[9].to_string();
            check_path(&path).map_err(|e| err(e.to_string()))?;
            let target = name_field(f[10]);
            match (kind, &target) {
                (Kind::Symlink, Some(t)) => check_link_target(t).map_err(|e| err(e.to_string()))?,
                (Kind::Symlink, None) => return Err(err("a symlink needs a target".into())),
                (_, Some(_)) => return Err(err("only symlinks have a target".into())),
                (_, None) => {}
            }
            if let Some(prev) = &previous {
                if prev.as_str() >= path.as_str() {
                    return Err(err(format!("path {path:?} is out of order or repeated")));
                }
            }
            previous = Some(path.clone());
            manifest.insert(Entry {
                kind,
                mode,
                uid,
                gid,
                owner: name_field(f[4]),
                group: name_field(f[5]),
                size,
                mtime,
                mac,
                path,
                target,
            });
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::default();
        m.insert(Entry {
            kind: Kind::Dir,
            mode: 0o700,
            uid: 998,
            gid: 0,
            owner: Some("etcd".into()),
            group: Some("root".into()),
            size: 0,
            mtime: 1732500000,
            mac: None,
            path: "/etc/ssl/etcd/ssl".into(),
            target: None,
        });
        m.insert(Entry {
            kind: Kind::File,
            mode: 0o600,
            uid: 998,
            gid: 0,
            owner: Some("etcd".into()),
            group: None,
            size: 1675,
            mtime: 1732500001,
            mac: Some("ab".repeat(32)),
            path: "/etc/ssl/etcd/ssl/ca key.pem".into(),
            target: None,
        });
        m.insert(Entry {
            kind: Kind::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            owner: Some("root".into()),
            group: Some("root".into()),
            size: 19,
            mtime: 1732500002,
            mac: None,
            path: "/etc/kubernetes/pki".into(),
            target: Some("/etc/kubernetes/ssl".into()),
        });
        m
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let text = m.to_text();
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
        assert!(text.starts_with("sprayvault-manifest 1\nl\t0777\t0\t0\troot\troot\t19\t"));
    }

    #[test]
    fn rejects_damage() {
        let text = sample().to_text();
        let cases = [
            text.replace("sprayvault-manifest 1", "sprayvault-manifest 2"),
            text.replace("\t0700\t", "\t0709\t"),
            text.replace("/etc/kubernetes/pki", "/etc/../pki"),
            text.replace("\t998\t0\tetcd\troot\t0\t", "\t998\t\tetcd\troot\t0\t"),
            text.replace("\n", "\n\n"),
            text.replace(&"ab".repeat(32), "-"),
            text.clone() + "f\t0600\t0\t0\troot\troot\t1\t1\tzz\t/x\t-\n",
        ];
        for c in cases {
            assert!(Manifest::parse(c.as_bytes()).is_err(), "accepted:\n{c}");
        }
    }

    #[test]
    fn rejects_out_of_order() {
        let text = "sprayvault-manifest 1\nd\t0755\t0\t0\troot\troot\t0\t1\t-\t/b\t-\nd\t0755\t0\t0\troot\troot\t0\t1\t-\t/a\t-\n";
        assert!(matches!(
            Manifest::parse(text.as_bytes()),
            Err(ManifestError::Line { line: 3, .. })
        ));
    }

    /// Found by the `manifest` fuzz target: numbers with leading zeros or a
    /// `+` sign (and an mtime of `-0`) were accepted, so `to_text` gave other
    /// bytes than were read and one manifest had several texts.
    #[test]
    fn regression_non_canonical_numbers_accepted() {
        let line = |uid: &str, gid: &str, size: &str, mtime: &str| {
            format!(
                "sprayvault-manifest 1\nf\t0640\t{uid}\t{gid}\tr\tot\t{size}\t{mtime}\t{}\t/t\t-\n",
                "f4".repeat(32)
            )
        };
        let ok = line("0", "10", "5", "-5");
        let m = Manifest::parse(ok.as_bytes()).unwrap();
        assert_eq!(m.to_text(), ok);
        for bad in [
            line("0", "0", "05", "5"),
            line("00", "0", "5", "5"),
            line("+1", "0", "5", "5"),
            line("0", "010", "5", "5"),
            line("0", "0", "+5", "5"),
            line("0", "0", "5", "05"),
            line("0", "0", "5", "+5"),
            line("0", "0", "5", "-0"),
            line("0", "0", "5", "-05"),
            line("0", "0", "5", "-"),
        ] {
            assert!(
                matches!(
                    Manifest::parse(bad.as_bytes()),
                    Err(ManifestError::Line { line: 2, .. })
                ),
                "accepted:\n{bad}"
            );
        }
    }

    #[test]
    fn empty_manifest() {
        let m = Manifest::parse(b"sprayvault-manifest 1\n").unwrap();
        assert!(m.entries.is_empty());
    }
}
