//! The `snapshot` file of an etcd snapshot commit: plaintext metadata and
//! the ordered list of chunks (see vault-layout, "etcd snapshots").

pub const HEADER: &str = "sprayvault-etcd-snapshot 1";

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
    /// `(mac, size)` of each chunk, in order.
    pub chunks: Vec<(String, u64)>,
}

impl SnapshotIndex {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{HEADER}\nnode {}\nmember {}\ntaken {}\nrevision {}\nkeys {}\nsize {}\n",
            self.node, self.member, self.taken, self.revision, self.keys, self.size
        );
        for (mac, size) in &self.chunks {
            s.push_str(&format!("chunk {mac} {size}\n"));
        }
        s
    }

    pub fn parse(bytes: &[u8]) -> Result<SnapshotIndex, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "snapshot index is not UTF-8".to_string())?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("snapshot index does not start with {HEADER:?}"));
        }
        let mut idx = SnapshotIndex {
            node: String::new(),
            member: String::new(),
            taken: 0,
            revision: 0,
            keys: 0,
            size: 0,
            chunks: vec![],
        };
        for (i, line) in lines.enumerate() {
            let bad = || format!("snapshot index line {}: {line:?}", i + 2);
            let (k, v) = line.split_once(' ').ok_or_else(bad)?;
            match k {
                "node" => idx.node = v.into(),
                "member" => idx.member = v.into(),
                "taken" => idx.taken = v.parse().map_err(|_| bad())?,
                "revision" => idx.revision = v.parse().map_err(|_| bad())?,
                "keys" => idx.keys = v.parse().map_err(|_| bad())?,
                "size" => idx.size = v.parse().map_err(|_| bad())?,
                "chunk" => {
                    let (mac, size) = v.split_once(' ').ok_or_else(bad)?;
                    if mac.len() != 64 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad());
                    }
                    idx.chunks
                        .push((mac.into(), size.parse().map_err(|_| bad())?));
                }
                _ => return Err(bad()),
            }
        }
        crate::paths::check_node_name(&idx.node).map_err(|e| e.to_string())?;
        if idx.chunks.iter().map(|c| c.1).sum::<u64>() != idx.size {
            return Err("snapshot index: chunk sizes do not add up to the snapshot size".into());
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
        };
        assert_eq!(SnapshotIndex::parse(i.to_text().as_bytes()).unwrap(), i);
        assert!(
            SnapshotIndex::parse(i.to_text().replace("size 30", "size 31").as_bytes()).is_err()
        );
    }
}
