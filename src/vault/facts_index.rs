//! `facts/index`: which hosts' Ansible facts the vault holds (see
//! vault-layout, "Fact cache"). Header `sprayvault-facts 1`, then one line
//! per host, sorted: `host TAB mtime TAB size TAB mac`, where mac is the keyed
//! hash of the host's stable facts (volatile facts left out).

use super::format::FormatError;
use crate::paths::check_node_name;
use std::collections::BTreeMap;

pub const HEADER: &str = "sprayvault-facts 1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactEntry {
    pub host: String,
    /// When the cache file was written (gathering time), Unix seconds.
    pub mtime: i64,
    pub size: u64,
    pub mac: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FactsIndex {
    pub entries: BTreeMap<String, FactEntry>,
}

impl FactsIndex {
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        for e in self.entries.values() {
            s.push_str(&format!("{}\t{}\t{}\t{}\n", e.host, e.mtime, e.size, e.mac));
        }
        s
    }

    pub fn parse(bytes: &[u8]) -> Result<FactsIndex, FormatError> {
        const WHAT: &str = "facts index";
        let text = std::str::from_utf8(bytes).map_err(|_| FormatError::NotUtf8(WHAT))?;
        let body = text
            .strip_suffix('\n')
            .ok_or(FormatError::NoFinalNewline(WHAT))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(FormatError::Header {
                what: WHAT,
                header: HEADER,
            });
        }
        let mut idx = FactsIndex::default();
        for (i, line) in lines.enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            let bad = |why: &str| FormatError::Line {
                what: WHAT,
                line: i + 2,
                why: why.to_string(),
            };
            if f.len() != 4 {
                return Err(bad("expected 4 TAB-separated fields"));
            }
            check_node_name(f[0]).map_err(|e| bad(&e.to_string()))?;
            let mtime = f[1].parse().map_err(|_| bad("mtime is not a number"))?;
            let size = f[2].parse().map_err(|_| bad("size is not a number"))?;
            if f[3].len() != 64
                || !f[3]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(bad("mac is not 64 lowercase hex digits"));
            }
            idx.entries.insert(
                f[0].to_string(),
                FactEntry {
                    host: f[0].into(),
                    mtime,
                    size,
                    mac: f[3].into(),
                },
            );
        }
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut i = FactsIndex::default();
        i.entries.insert(
            "node1".into(),
            FactEntry {
                host: "node1".into(),
                mtime: 1764547200,
                size: 20563,
                mac: "ab".repeat(32),
            },
        );
        let t = i.to_text();
        assert_eq!(FactsIndex::parse(t.as_bytes()).unwrap(), i);
        assert!(FactsIndex::parse(b"sprayvault-facts 1\n-x\t1\t1\tab\n").is_err());
    }
}
