//! The `snapshot` file of an etcd snapshot commit: plaintext metadata and
//! the ordered list of chunks (see vault-layout, "etcd snapshots").
//! Version 2 adds the member's etcd version and the keyed hash of its
//! `endpoint hashkv` at the snapshot's revision; version 1 (written before)
//! has neither and stays readable. Version 3 stores pages (see
//! [`super::pages`]): no chunk lines, the keyed hash of the page map instead.

pub const HEADER: &str = "sprayvault-etcd-snapshot 1";
pub const HEADER_V2: &str = "sprayvault-etcd-snapshot 2";
pub const HEADER_V3: &str = "sprayvault-etcd-snapshot 3";

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotIndex {
    pub node: String,
    pub member: String,
    /// Unix seconds.
    pub taken: i64,
    pub revision: u64,
    pub keys: u64,
    /// Bytes of the snapshot file (database and its sha256 trailer).
    pub size: u64,
    /// `(mac, size)` of each chunk, in order (versions 1 and 2).
    pub chunks: Vec<(String, u64)>,
    /// The keyed hash of the page map's plaintext (version 3).
    pub map: Option<String>,
    /// The etcd version the member served the snapshot from (`endpoint
    /// status`); version 2 only.
    pub etcd: Option<String>,
    /// The keyed hash (over [`hashkv_text`]) of the member's `endpoint hashkv` at
    /// `revision`; version 2 only.
    pub hashkv: Option<String>,
}

/// The text whose keyed hash the index records for an `endpoint hashkv`:
/// the hash itself would let anyone confirm a guess of the whole key space.
pub fn hashkv_text(revision: u64, hash: u64) -> String {
    format!("sprayvault-hashkv {revision} {hash}")
}

/// An etcd version as the index may carry it: digits and dots, a few
/// letters for pre-releases, at most 32 bytes.
pub fn plain_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why an index cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("snapshot index is not UTF-8")]
    NotUtf8,
    #[error("snapshot index does not start with {HEADER:?}, {HEADER_V2:?} or {HEADER_V3:?}")]
    Header,
    #[error("snapshot index line {line}: {text:?}")]
    Line { line: usize, text: String },
    #[error("snapshot index: {0}")]
    Node(String),
    #[error("snapshot index version 3 has no map line")]
    NoMap,
    #[error("snapshot index: chunk sizes do not add up to the snapshot size")]
    Sizes,
}

impl SnapshotIndex {
    pub fn to_text(&self) -> String {
        let v2 = self.etcd.is_some() || self.hashkv.is_some();
        let header = match (&self.map, v2) {
            (Some(_), _) => HEADER_V3,
            (None, true) => HEADER_V2,
            (None, false) => HEADER,
        };
        let mut s = format!(
            "{}\nnode {}\nmember {}\ntaken {}\nrevision {}\nkeys {}\nsize {}\n",
            header, self.node, self.member, self.taken, self.revision, self.keys, self.size
        );
        if let Some(v) = &self.etcd {
            s.push_str(&format!("etcd {v}\n"));
        }
        if let Some(h) = &self.hashkv {
            s.push_str(&format!("hashkv {h}\n"));
        }
        if let Some(m) = &self.map {
            s.push_str(&format!("map {m}\n"));
        }
        for (mac, size) in &self.chunks {
            s.push_str(&format!("chunk {mac} {size}\n"));
        }
        s
    }

    /// Whether the snapshot is stored as pages (version 3).
    pub fn paged(&self) -> bool {
        self.map.is_some()
    }

    pub fn parse(bytes: &[u8]) -> Result<SnapshotIndex, IndexError> {
        let text = std::str::from_utf8(bytes).map_err(|_| IndexError::NotUtf8)?;
        let mut lines = text.lines();
        let version = match lines.next() {
            Some(HEADER) => 1,
            Some(HEADER_V2) => 2,
            Some(HEADER_V3) => 3,
            _ => return Err(IndexError::Header),
        };
        let v2 = version >= 2;
        let mut idx = SnapshotIndex {
            node: String::new(),
            member: String::new(),
            taken: 0,
            revision: 0,
            keys: 0,
            size: 0,
            chunks: vec![],
            map: None,
            etcd: None,
            hashkv: None,
        };
        for (i, line) in lines.enumerate() {
            let bad = || IndexError::Line {
                line: i + 2,
                text: crate::term::escape(line).into_owned(),
            };
            let (k, v) = line.split_once(' ').ok_or_else(bad)?;
            match k {
                "node" => idx.node = v.into(),
                "member" => idx.member = v.into(),
                "taken" => idx.taken = v.parse().map_err(|_| bad())?,
                "revision" => idx.revision = v.parse().map_err(|_| bad())?,
                "keys" => idx.keys = v.parse().map_err(|_| bad())?,
                "size" => idx.size = v.parse().map_err(|_| bad())?,
                "etcd" if v2 && plain_version(v) && idx.etcd.is_none() => idx.etcd = Some(v.into()),
                "hashkv" if v2 && hex64(v) && idx.hashkv.is_none() => idx.hashkv = Some(v.into()),
                "map" if version == 3 && hex64(v) && idx.map.is_none() => idx.map = Some(v.into()),
                "chunk" if version < 3 => {
                    let (mac, size) = v.split_once(' ').ok_or_else(bad)?;
                    if !hex64(mac) {
                        return Err(bad());
                    }
                    idx.chunks
                        .push((mac.into(), size.parse().map_err(|_| bad())?));
                }
                _ => return Err(bad()),
            }
        }
        crate::paths::check_node_name(&idx.node).map_err(|e| IndexError::Node(e.to_string()))?;
        if version == 3 {
            // The page map's own length is checked against `size` on reading.
            return match idx.map {
                Some(_) => Ok(idx),
                None => Err(IndexError::NoMap),
            };
        }
        if idx.chunks.iter().map(|c| c.1).sum::<u64>() != idx.size {
            return Err(IndexError::Sizes);
        }
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let i = SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1764554400,
            revision: 42,
            keys: 7,
            size: 30,
            chunks: vec![("a".repeat(64), 10), ("b".repeat(64), 20)],
            map: None,
            etcd: None,
            hashkv: None,
        };
        assert!(i.to_text().starts_with("sprayvault-etcd-snapshot 1\n"));
        assert_eq!(SnapshotIndex::parse(i.to_text().as_bytes()).unwrap(), i);
        assert!(
            SnapshotIndex::parse(i.to_text().replace("size 30", "size 31").as_bytes()).is_err()
        );
    }

    #[test]
    fn version_2_carries_the_etcd_version_and_the_keyed_hashkv() {
        let i = SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1764554400,
            revision: 42,
            keys: 7,
            size: 30,
            chunks: vec![("a".repeat(64), 30)],
            map: None,
            etcd: Some("3.5.16".into()),
            hashkv: Some("c".repeat(64)),
        };
        let t = i.to_text();
        assert!(t.starts_with("sprayvault-etcd-snapshot 2\n"), "{t}");
        assert!(t.contains("\netcd 3.5.16\nhashkv cccc"), "{t}");
        assert_eq!(SnapshotIndex::parse(t.as_bytes()).unwrap(), i);
        // Version 1 has neither line; hostile values are refused.
        let v1 = t.replace("sprayvault-etcd-snapshot 2", "sprayvault-etcd-snapshot 1");
        assert!(SnapshotIndex::parse(v1.as_bytes()).is_err());
        for bad in [
            "etcd 3.5.16\x1b[2J",
            "etcd ",
            "hashkv 1234",
            "etcd 3.5.16\netcd 3.5.17",
        ] {
            let t2 = t.replace("etcd 3.5.16", bad);
            assert!(SnapshotIndex::parse(t2.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_3_names_its_page_map_and_has_no_chunks() {
        let i = SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1764554400,
            revision: 42,
            keys: 7,
            size: 30,
            chunks: vec![],
            map: Some("d".repeat(64)),
            etcd: Some("3.6.10".into()),
            hashkv: None,
        };
        let t = i.to_text();
        assert!(t.starts_with("sprayvault-etcd-snapshot 3\n"), "{t}");
        assert_eq!(SnapshotIndex::parse(t.as_bytes()).unwrap(), i);
        let chunk = format!("{t}chunk {} 30\n", "a".repeat(64));
        assert!(SnapshotIndex::parse(chunk.as_bytes()).is_err());
        let no_map = t.replace(&format!("map {}\n", "d".repeat(64)), "");
        assert!(SnapshotIndex::parse(no_map.as_bytes()).is_err());
        let v2 = t.replace("snapshot 3", "snapshot 2");
        assert!(SnapshotIndex::parse(v2.as_bytes()).is_err());
    }
}
