//! The page map of a version 3 snapshot (vault-layout, "etcd snapshots",
//! "Pages and packs"): which units of which packs, in order, make up the
//! snapshot file. Pure: text in, text out, every bound checked.

/// Bytes of a unit (bbolt's page on the platforms kubespray supports).
pub const UNIT: usize = 4096;
/// Units in a full pack.
pub const PACK_UNITS: usize = 128;
pub const HEADER: &str = "sprayvault-etcd-pages 1";
/// A map line count no real snapshot comes near (8 GiB in single-unit
/// runs is 2 Mi runs): a hostile map is refused before it is held.
const MAX_LINES: usize = 4 << 20;

/// Units `first..first + count` of pack number `pack` of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub pack: u32,
    pub first: u32,
    pub count: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMap {
    /// The length of each pack the runs use, in the order of their macs
    /// (the commit's `packs/` tree), numbered from 0.
    pub packs: Vec<u64>,
    pub runs: Vec<Run>,
}

/// Units in a pack of `bytes` bytes.
pub fn units(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT as u64)
}

/// The byte range of `run` in its pack's plaintext of `bytes` bytes.
pub fn span(run: &Run, bytes: u64) -> (usize, usize) {
    let start = run.first as u64 * UNIT as u64;
    let end = ((run.first + run.count) as u64 * UNIT as u64).min(bytes);
    (start as usize, end as usize)
}

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why a page map cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("the page map is not UTF-8")]
    NotUtf8,
    #[error("the page map does not start with {HEADER:?}")]
    Header,
    #[error("the page map has more than {MAX_LINES} lines")]
    TooLong,
    #[error("page map line {line}: {text:?}{why}")]
    Line {
        line: usize,
        text: String,
        why: &'static str,
    },
    #[error("the page map lists pack {0} that no run uses")]
    Unused(usize),
    #[error("page map run {0}: a short unit before the end of the file")]
    ShortUnit(usize),
    #[error("the page map reassembles {got} bytes, the index says {want}")]
    Size { got: u64, want: u64 },
}

impl PageMap {
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        for bytes in &self.packs {
            s.push_str(&format!("pack {bytes}\n"));
        }
        for r in &self.runs {
            s.push_str(&format!("run {} {} {}\n", r.pack, r.first, r.count));
        }
        s
    }

    /// Bytes of the file the map reassembles.
    pub fn size(&self) -> u64 {
        self.runs
            .iter()
            .map(|r| {
                let (a, b) = span(r, self.packs[r.pack as usize]);
                (b - a) as u64
            })
            .sum()
    }

    /// Parses and checks a map: packs before runs, each pack used and
    /// listed once, full units but for a pack's last, every run inside its
    /// pack, and the whole `size` bytes long.
    pub fn parse(bytes: &[u8], size: u64) -> Result<PageMap, MapError> {
        let text = std::str::from_utf8(bytes).map_err(|_| MapError::NotUtf8)?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(MapError::Header);
        }
        let mut map = PageMap::default();
        let mut used = Vec::new();
        for (i, line) in lines.enumerate() {
            if i >= MAX_LINES {
                return Err(MapError::TooLong);
            }
            let bad_because = |why| MapError::Line {
                line: i + 2,
                text: crate::term::escape(line).into_owned(),
                why,
            };
            let bad = || bad_because("");
            let f: Vec<&str> = line.split(' ').collect();
            match f[..] {
                ["pack", bytes] if map.runs.is_empty() => {
                    let bytes: u64 = bytes.parse().map_err(|_| bad())?;
                    if bytes == 0 || bytes > (PACK_UNITS * UNIT) as u64 {
                        return Err(bad());
                    }
                    map.packs.push(bytes);
                    used.push(false);
                }
                ["run", pack, first, count] => {
                    let num = |v: &str| v.parse::<u32>().map_err(|_| bad());
                    let run = Run {
                        pack: num(pack)?,
                        first: num(first)?,
                        count: num(count)?,
                    };
                    let Some(bytes) = map.packs.get(run.pack as usize) else {
                        return Err(bad_because(": no such pack"));
                    };
                    if run.count == 0 || u64::from(run.first) + u64::from(run.count) > units(*bytes)
                    {
                        return Err(bad_because(": outside its pack"));
                    }
                    used[run.pack as usize] = true;
                    map.runs.push(run);
                }
                _ => return Err(bad()),
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(MapError::Unused(i));
        }
        // A short unit may only end the file: anywhere else it would shift
        // every byte after it.
        for (i, r) in map.runs.iter().enumerate() {
            let (a, b) = span(r, map.packs[r.pack as usize]);
            if (b - a) % UNIT != 0 && i + 1 != map.runs.len() {
                return Err(MapError::ShortUnit(i + 1));
            }
        }
        if map.size() != size {
            return Err(MapError::Size {
                got: map.size(),
                want: size,
            });
        }
        Ok(map)
    }
}

pub const LIST_HEADER: &str = "sprayvault-pages 1";

/// The backup host's own record of the units of a pack it wrote
/// (`VAULT/sprayvault/pages/<mac>`): what lets the next snapshot refer to
/// them without decrypting anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageList {
    pub pack: String,
    pub blob: String,
    pub bytes: u64,
    pub units: Vec<[u8; 32]>,
}

impl PageList {
    /// The file's text, sealed with `seal`, which maps the text before the
    /// seal line to its keyed hash.
    pub fn to_text(&self, seal: impl Fn(&[u8]) -> String) -> String {
        let mut s = format!(
            "{LIST_HEADER}\npack {} {} {}\n",
            self.pack, self.blob, self.bytes
        );
        for u in &self.units {
            s.push_str(&hex::encode(u));
            s.push('\n');
        }
        let mac = seal(s.as_bytes());
        s.push_str(&format!("seal {mac}\n"));
        s
    }

    /// Reads a file back; `None` unless it is well formed and its seal is
    /// `seal` of the text before it.
    pub fn parse(text: &str, seal: impl Fn(&[u8]) -> String) -> Option<PageList> {
        let body_end = text.rfind("seal ")?;
        let (body, tail) = text.split_at(body_end);
        if !body.ends_with('\n') || tail != format!("seal {}\n", seal(body.as_bytes())) {
            return None;
        }
        let mut lines = body.lines();
        (lines.next()? == LIST_HEADER).then_some(())?;
        let head: Vec<&str> = lines.next()?.split(' ').collect();
        let ["pack", pack, blob, bytes] = head[..] else {
            return None;
        };
        let bytes: u64 = bytes.parse().ok()?;
        let mut macs = Vec::new();
        for l in lines {
            let mut u = [0u8; 32];
            hex::decode_to_slice(l, &mut u).ok()?;
            macs.push(u);
        }
        let ok =
            hex64(pack) && git2::Oid::from_str(blob).is_ok() && macs.len() as u64 == units(bytes);
        ok.then(|| PageList {
            pack: pack.into(),
            blob: blob.into(),
            bytes,
            units: macs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PageMap {
        PageMap {
            packs: vec![(PACK_UNITS * UNIT) as u64, 2 * UNIT as u64 + 32],
            runs: vec![
                Run {
                    pack: 0,
                    first: 0,
                    count: 5,
                },
                Run {
                    pack: 1,
                    first: 0,
                    count: 1,
                },
                Run {
                    pack: 0,
                    first: 6,
                    count: 122,
                },
                Run {
                    pack: 1,
                    first: 1,
                    count: 2,
                },
            ],
        }
    }

    #[test]
    fn a_map_round_trips_and_gives_the_file_size() {
        let m = map();
        let size = (5 + 1 + 122 + 1) as u64 * UNIT as u64 + 32;
        assert_eq!(m.size(), size);
        assert_eq!(PageMap::parse(m.to_text().as_bytes(), size).unwrap(), m);
        assert!(PageMap::parse(m.to_text().as_bytes(), size + 1).is_err());
    }

    #[test]
    fn hostile_maps_are_refused_by_line() {
        let m = map();
        let size = m.size();
        let text = m.to_text();
        for (from, to) in [
            ("run 0 6 122", "run 0 6 123"),         // past its pack
            ("run 1 0 1", "run 2 0 1"),             // no such pack
            ("run 0 0 5", "run 0 0 0"),             // empty
            ("run 0 0 5", "run 0 0 -5"),            // not a number
            ("run 1 1 2\n", "run 1 1 2\npack 1\n"), // pack after runs
        ] {
            let t = text.replace(from, to);
            assert!(PageMap::parse(t.as_bytes(), size).is_err(), "{to}");
        }
        // The short unit (the trailer) before the end of the file.
        let mut m2 = m.clone();
        m2.runs.swap(1, 3);
        assert!(PageMap::parse(m2.to_text().as_bytes(), m2.size()).is_err());
        // A pack no run uses.
        let mut m3 = m.clone();
        m3.packs.push(10);
        assert!(PageMap::parse(m3.to_text().as_bytes(), size).is_err());
        assert!(PageMap::parse(b"sprayvault-etcd-pages 2\n", 0).is_err());
    }

    #[test]
    fn a_page_list_is_read_back_only_under_its_seal() {
        let key = crate::vault::mac::MacKey::generate();
        let seal = |b: &[u8]| key.mac(b);
        let l = PageList {
            pack: "a".repeat(64),
            blob: "0123456789012345678901234567890123456789".into(),
            bytes: UNIT as u64 + 1,
            units: vec![[1; 32], [2; 32]],
        };
        let t = l.to_text(seal);
        assert_eq!(PageList::parse(&t, seal), Some(l));
        let other = crate::vault::mac::MacKey::generate();
        assert_eq!(PageList::parse(&t, |b: &[u8]| other.mac(b)), None);
        assert_eq!(PageList::parse(&t.replace("0101", "0102"), seal), None);
    }
}
