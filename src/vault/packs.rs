//! Writing a version 3 etcd snapshot (vault-layout, "Pages and packs"):
//! the file is cut into 4 KiB units; units already stored in a pack of the
//! base snapshots are referred to where they are, the others are appended
//! to new packs (gzip, then age), and the page map (encrypted too) says
//! which units of which packs make up the file. Made by
//! `Session::snapshot`.
//!
//! Memory: the open pack (512 KiB) and one unit of plaintext, both wiped,
//! plus 40 bytes or so per distinct unit known.

use super::blobs::Counts;
use super::crypto::Recipients;
use super::mac::{MacKey, MacMany};
use super::snapshots::SnapshotCommit;
use super::tree::TreeSpec;
use super::{Vault, VaultError};
use crate::etcd::pages::{PageList, PageMap, Run, PACK_UNITS, UNIT};
use flate2::write::GzEncoder;
use git2::Oid;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use zeroize::{Zeroize, Zeroizing};

/// gzip level of packs and maps. With flate2's zlib-rs backend, level 3 is
/// as fast as level 2 (its "fast" deflate runs levels 1-3) and shrinks etcd
/// databases within 0.2% of level 6; level 1 leaves a third more.
pub const LEVEL: u32 = 3;

/// Where the backup host keeps its page lists, under its local directory.
pub const PAGES_DIR: &str = "pages";
/// A page list is about 8.5 KiB; anything much larger is not one.
const LIST_LIMIT: u64 = 64 << 10;

struct Pack {
    mac: String,
    bytes: u64,
    blob: Option<Oid>,
}

/// The map and packs of a finished snapshot, ready for its commit.
struct Finished {
    map_blob: Oid,
    packs: Vec<(String, Oid)>,
}

pub struct PackWriter<'s> {
    vault: &'s Vault,
    recipients: &'s Recipients,
    session: &'s mut Counts,
    key: MacKey,
    units: MacMany,
    /// Every pack a run may name: the base's, then this snapshot's.
    packs: Vec<Pack>,
    /// Where each known unit is: (pack, unit).
    known: HashMap<[u8; 32], (u32, u32)>,
    /// The pack being filled, its units' macs, and its number.
    open: Zeroizing<Vec<u8>>,
    open_units: Vec<[u8; 32]>,
    open_id: Option<u32>,
    /// Bytes of the next unit, not complete yet.
    partial: Zeroizing<Vec<u8>>,
    runs: Vec<Run>,
    size: u64,
    counts: Counts,
    full: bool,
    /// Page lists written, removed again unless the snapshot commits.
    lists: Vec<PathBuf>,
    finished: Option<Finished>,
}

impl<'s> PackWriter<'s> {
    /// A writer reusing the units of the packs `base` (`(mac, blob)` from
    /// the trees of stored snapshots) whose page lists the backup host
    /// wrote and sealed; any other pack is not reused.
    pub(super) fn new(
        vault: &'s Vault,
        recipients: &'s Recipients,
        session: &'s mut Counts,
        key: MacKey,
        base: impl IntoIterator<Item = (String, Oid)>,
    ) -> PackWriter<'s> {
        let mut w = PackWriter {
            vault,
            recipients,
            session,
            units: key.many(),
            key,
            packs: Vec::new(),
            known: HashMap::new(),
            open: Zeroizing::new(Vec::with_capacity(PACK_UNITS * UNIT)),
            open_units: Vec::new(),
            open_id: None,
            partial: Zeroizing::new(Vec::with_capacity(UNIT)),
            runs: Vec::new(),
            size: 0,
            counts: Counts::default(),
            full: false,
            lists: Vec::new(),
            finished: None,
        };
        let dir = vault.local_dir().join(PAGES_DIR);
        for (mac, oid) in base {
            if w.packs.iter().any(|p| p.mac == mac) {
                continue;
            }
            let Some(list) = read_list(&dir, &mac, &w.key) else {
                continue;
            };
            if list.pack != mac || list.blob != oid.to_string() {
                continue;
            }
            let id = w.packs.len() as u32;
            for (i, u) in list.units.iter().enumerate() {
                w.known.entry(*u).or_insert((id, i as u32));
            }
            w.packs.push(Pack {
                mac,
                bytes: list.bytes,
                blob: Some(oid),
            });
        }
        w
    }

    /// Whether a write of this snapshot found the vault's disk full.
    pub fn disk_full(&self) -> bool {
        self.full
    }

    /// The packs (and map) written for this snapshot so far, and their bytes.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Adds the next bytes of the snapshot file.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), VaultError> {
        let r = (|| {
            while !data.is_empty() {
                if self.partial.is_empty() && data.len() >= UNIT {
                    let (unit, rest) = data.split_at(UNIT);
                    self.unit(unit)?;
                    data = rest;
                    continue;
                }
                let take = (UNIT - self.partial.len()).min(data.len());
                self.partial.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.partial.len() == UNIT {
                    let unit = std::mem::replace(
                        &mut self.partial,
                        Zeroizing::new(Vec::with_capacity(UNIT)),
                    );
                    self.unit(&unit)?;
                }
            }
            Ok(())
        })();
        self.note(r)
    }

    fn note<T>(&mut self, r: Result<T, VaultError>) -> Result<T, VaultError> {
        if let Err(e) = &r {
            self.full |= e.is_disk_full();
        }
        r
    }

    fn unit(&mut self, data: &[u8]) -> Result<(), VaultError> {
        let mac = self.units.mac_bytes(data);
        self.size += data.len() as u64;
        let (pack, unit, added) = match self.known.get(&mac) {
            Some(&(p, u)) => (p, u, false),
            None => {
                let id = match self.open_id {
                    Some(id) => id,
                    None => {
                        self.packs.push(Pack {
                            mac: String::new(),
                            bytes: 0,
                            blob: None,
                        });
                        let id = self.packs.len() as u32 - 1;
                        self.open_id = Some(id);
                        id
                    }
                };
                let u = self.open_units.len() as u32;
                self.open.extend_from_slice(data);
                self.open_units.push(mac);
                self.known.insert(mac, (id, u));
                (id, u, true)
            }
        };
        match self.runs.last_mut() {
            Some(r) if r.pack == pack && r.first + r.count == unit => r.count += 1,
            _ => self.runs.push(Run {
                pack,
                first: unit,
                count: 1,
            }),
        }
        // A short unit (the file's last) closes its pack.
        if added && (data.len() < UNIT || self.open_units.len() == PACK_UNITS) {
            self.seal()?;
        }
        Ok(())
    }

    fn gzip_encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let gzip = |e| VaultError::Io {
            path: "gzip".into(),
            error: e,
        };
        let mut gz = GzEncoder::new(
            Vec::with_capacity(plain.len() / 2),
            flate2::Compression::new(LEVEL),
        );
        gz.write_all(plain).map_err(gzip)?;
        let packed = gz.finish().map_err(gzip)?;
        Ok(self.recipients.encrypt(&packed)?)
    }

    /// Writes the open pack and the backup host's page list of it.
    fn seal(&mut self) -> Result<(), VaultError> {
        let Some(id) = self.open_id.take() else {
            return Ok(());
        };
        let mac = self.key.mac(&self.open);
        let cipher = self.gzip_encrypt(&self.open)?;
        self.counts.add(cipher.len() as u64);
        let oid = self.vault.write_stored_blob(&cipher)?;
        let list = PageList {
            pack: mac.clone(),
            blob: oid.to_string(),
            bytes: self.open.len() as u64,
            units: std::mem::take(&mut self.open_units),
        };
        self.write_list(&list)?;
        self.packs[id as usize] = Pack {
            mac,
            bytes: list.bytes,
            blob: Some(oid),
        };
        self.open.zeroize();
        Ok(())
    }

    fn write_list(&mut self, list: &PageList) -> Result<(), VaultError> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.vault.local_dir().join(PAGES_DIR);
        let path = dir.join(&list.pack);
        let tmp = dir.join(format!(".{}.tmp", list.pack));
        let io = |p: &PathBuf| {
            let p = p.clone();
            move |error| VaultError::Io { path: p, error }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let text = list.to_text(|b| self.key.mac(b));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let written = f
            .write_all(text.as_bytes())
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        self.lists.push(path);
        Ok(())
    }

    /// Ends the file: writes the last pack and the page map; returns the
    /// keyed hash of the map, for the index.
    pub fn finish(&mut self) -> Result<String, VaultError> {
        let r = (|| {
            if !self.partial.is_empty() {
                let unit = std::mem::replace(&mut self.partial, Zeroizing::new(Vec::new()));
                self.unit(&unit)?;
            }
            self.seal()?;
            // Number the packs the runs use in the order of their macs,
            // which is the order of the commit's `packs/` tree.
            let mut used: Vec<u32> = self.runs.iter().map(|r| r.pack).collect();
            used.sort_unstable();
            used.dedup();
            used.sort_by(|a, b| {
                self.packs[*a as usize]
                    .mac
                    .cmp(&self.packs[*b as usize].mac)
            });
            let number: HashMap<u32, u32> = used
                .iter()
                .enumerate()
                .map(|(n, id)| (*id, n as u32))
                .collect();
            let map = PageMap {
                packs: used
                    .iter()
                    .map(|id| self.packs[*id as usize].bytes)
                    .collect(),
                runs: self
                    .runs
                    .iter()
                    .map(|r| Run {
                        pack: number[&r.pack],
                        ..*r
                    })
                    .collect(),
            };
            let packs: Vec<(String, Oid)> = used
                .iter()
                .map(|id| {
                    let p = &self.packs[*id as usize];
                    (p.mac.clone(), p.blob.expect("sealed"))
                })
                .collect();
            debug_assert_eq!(map.size(), self.size);
            let text = map.to_text();
            let mac = self.key.mac(text.as_bytes());
            let cipher = self.gzip_encrypt(text.as_bytes())?;
            self.counts.add(cipher.len() as u64);
            let map_blob = self.vault.write_stored_blob(&cipher)?;
            self.finished = Some(Finished { map_blob, packs });
            Ok(mac)
        })();
        self.note(r)
    }

    /// Packs the finished snapshot refers to.
    pub fn packs(&self) -> usize {
        self.finished.as_ref().map_or(0, |f| f.packs.len())
    }

    /// Writes the snapshot commit and its ref, once the objects are
    /// durable; returns the ref name.
    pub fn commit(mut self, snap: &SnapshotCommit) -> Result<String, VaultError> {
        let vault = self.vault;
        let done = self.finished.take().expect("finish before commit");
        let mut spec = TreeSpec::default();
        spec.blob("snapshot", vault.write_blob(snap.index.as_bytes())?);
        spec.blob("map", done.map_blob);
        for (mac, oid) in &done.packs {
            spec.blob(&format!("packs/{}/{mac}", &mac[..2]), *oid);
        }
        let name = vault.commit_snapshot(snap, &spec)?;
        self.lists.clear();
        self.session.new_blobs += self.counts.new_blobs;
        self.session.bytes_added += self.counts.bytes_added;
        Ok(name)
    }
}

impl Drop for PackWriter<'_> {
    /// A snapshot that did not commit leaves no page list: its packs are
    /// unreachable, and a list would only name them.
    fn drop(&mut self) {
        for p in &self.lists {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Reads the backup host's page list of pack `mac`, if it is sealed.
fn read_list(dir: &std::path::Path, mac: &str, key: &MacKey) -> Option<PageList> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(dir.join(mac))
        .ok()?
        .take(LIST_LIMIT)
        .read_to_string(&mut text)
        .ok()?;
    PageList::parse(&text, |b| key.mac(b))
}

/// Removes the page lists of packs not in `keep` (prune, after refs went).
pub fn forget_lists(
    vault: &Vault,
    keep: &std::collections::HashSet<String>,
) -> std::io::Result<usize> {
    let dir = vault.local_dir().join(PAGES_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !keep.contains(name.as_ref()) {
            std::fs::remove_file(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
