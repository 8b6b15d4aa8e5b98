//! Reassembling a stored snapshot (vault-layout, "etcd snapshots"): the
//! chunks of index versions 1 and 2 in order, or the runs of the page map
//! of version 3, each blob decrypted, decompressed and checked against the
//! length and keyed hash the snapshot names it by.

use super::pages::{span, PageMap, Run};
use super::store::{packs, StoredSnapshot};
use crate::vault::crypto::Identity;
use crate::vault::mac::MacKey;
use crate::vault::{Vault, VaultError};
use git2::Oid;
use std::collections::HashMap;
use zeroize::Zeroizing;

/// The most a page map may decompress to: about 30 bytes a run, and 8 GiB
/// in single-unit runs is 2 Mi runs.
const MAP_LIMIT: u64 = 64 << 20;

/// Decrypts and decompresses one blob of a snapshot, checking its length
/// (exactly `size`, or at most `limit` when the length is not recorded) and
/// its keyed hash (the name the index or the map gives it): a blob swapped
/// on the git host is refused, whoever encrypted it.
struct Blob<'s> {
    oid: Oid,
    mac: &'s str,
    size: Option<u64>,
    limit: u64,
    what: String,
}

fn read_checked(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    key: &MacKey,
    blob: Blob<'_>,
    plain: &mut Zeroizing<Vec<u8>>,
) -> Result<(), VaultError> {
    let what = &blob.what;
    // Overwritten in place (the buffer is wiped when dropped).
    plain.clear();
    plain.reserve(blob.size.unwrap_or(0) as usize);
    // Decrypted and decompressed as a stream, straight from git's copy of
    // the blob into `plain`: no other copy of the blob or its plaintext.
    vault.with_blob(blob.oid, |cipher| -> Result<(), VaultError> {
        let gz = flate2::read::GzDecoder::new(identity.decrypting(cipher, what)?);
        // One byte past the bound tells a longer blob from an exact one.
        std::io::Read::read_to_end(&mut std::io::Read::take(gz, blob.limit + 1), plain).map_err(
            |e| VaultError::Damaged {
                rev: snap.name.clone(),
                what: format!("{what} does not decrypt or decompress: {e}"),
            },
        )?;
        Ok(())
    })??;
    let len = plain.len() as u64;
    if blob.size.is_some_and(|s| s != len) || len > blob.limit {
        return Err(VaultError::Damaged {
            rev: snap.name.clone(),
            what: match blob.size {
                Some(s) => format!("{what} has {len} bytes, the snapshot says {s}"),
                None => format!("{what} is longer than {} bytes", blob.limit),
            },
        });
    }
    if key.mac(plain) != blob.mac {
        return Err(VaultError::Tampered {
            rev: snap.name.clone(),
            node: snap.index.node.clone(),
            path: what.to_string(),
            why: "its content does not match the keyed hash the snapshot names it by".into(),
        });
    }
    Ok(())
}

/// Decrypted packs kept while reassembling, so that the packs later
/// snapshots added between runs of an older pack are not decrypted again
/// for every run. With the one being read, 3 of 512 KiB at most: about
/// what a chunk of 1 MiB and its copy took before.
const CACHED_PACKS: usize = 2;

struct Paged {
    map: PageMap,
    /// The snapshot's packs, by mac: pack n of the map is the n-th.
    packs: Vec<(String, Oid)>,
    /// For each run, the index of the next run of the same pack.
    next_use: Vec<usize>,
    /// (pack, its next use, plaintext).
    cache: Vec<(u32, usize, Zeroizing<Vec<u8>>)>,
}

/// Reassembles a snapshot piece by piece (a chunk, or a run of units),
/// decrypting and checking each blob as it goes.
pub struct Reader<'a> {
    vault: &'a Vault,
    snap: &'a StoredSnapshot,
    identity: &'a Identity,
    key: MacKey,
    next: usize,
    paged: Option<Paged>,
    /// The chunk last read (versions 1 and 2).
    chunk: Zeroizing<Vec<u8>>,
}

impl<'a> Reader<'a> {
    pub fn open(
        vault: &'a Vault,
        snap: &'a StoredSnapshot,
        identity: &'a Identity,
    ) -> Result<Reader<'a>, VaultError> {
        let key = vault.current_content_key(identity)?;
        let damaged = |what: String| VaultError::Damaged {
            rev: snap.name.clone(),
            what,
        };
        let paged = match (&snap.index.map, snap.map_blob) {
            (Some(mac), Some(oid)) => {
                let blob = Blob {
                    oid,
                    mac,
                    size: None,
                    limit: MAP_LIMIT,
                    what: format!("the page map of etcd snapshot {}", snap.name),
                };
                let mut text = Zeroizing::new(Vec::new());
                read_checked(vault, snap, identity, &key, blob, &mut text)?;
                let map =
                    PageMap::parse(&text, snap.index.size).map_err(|e| damaged(e.to_string()))?;
                // Pack n of the map is the n-th of the tree, by mac.
                let packs = packs(vault, snap)?;
                if packs.len() != map.packs.len() {
                    return Err(damaged(format!(
                        "the page map lists {} packs, the snapshot has {}",
                        map.packs.len(),
                        packs.len()
                    )));
                }
                Some(Paged {
                    next_use: next_uses(&map.runs),
                    map,
                    packs,
                    cache: Vec::new(),
                })
            }
            (Some(_), None) => return Err(damaged("no page map".into())),
            _ => None,
        };
        Ok(Reader {
            vault,
            snap,
            identity,
            key,
            next: 0,
            paged,
            chunk: Zeroizing::new(Vec::new()),
        })
    }

    /// The next piece of the file, or `None` at its end.
    pub fn next_piece(&mut self) -> Result<Option<&[u8]>, VaultError> {
        let i = self.next;
        self.next += 1;
        let (vault, snap, identity, key) = (self.vault, self.snap, self.identity, &self.key);
        let Some(p) = &mut self.paged else {
            let Some((mac, size)) = snap.index.chunks.get(i) else {
                return Ok(None);
            };
            let blob = Blob {
                oid: snap.chunk_blobs[mac],
                mac,
                size: Some(*size),
                limit: *size,
                what: format!("chunk {} of etcd snapshot {}", i + 1, snap.name),
            };
            read_checked(vault, snap, identity, key, blob, &mut self.chunk)?;
            return Ok(Some(&self.chunk));
        };
        let Some(run) = p.map.runs.get(i).copied() else {
            return Ok(None);
        };
        let bytes = &p.map.packs[run.pack as usize];
        let (mac, oid) = &p.packs[run.pack as usize];
        let slot = match p.cache.iter().position(|c| c.0 == run.pack) {
            Some(s) => s,
            None => {
                let blob = Blob {
                    oid: *oid,
                    mac,
                    size: Some(*bytes),
                    limit: *bytes,
                    what: format!("pack {mac} of etcd snapshot {}", snap.name),
                };
                // The one needed again last (or never) makes room, and
                // its buffer takes the next.
                let mut plain = if p.cache.len() == CACHED_PACKS {
                    let far = (0..p.cache.len())
                        .max_by_key(|&c| p.cache[c].1)
                        .expect("a full cache");
                    p.cache.swap_remove(far).2
                } else {
                    Zeroizing::new(Vec::new())
                };
                read_checked(vault, snap, identity, key, blob, &mut plain)?;
                p.cache.push((run.pack, 0, plain));
                p.cache.len() - 1
            }
        };
        p.cache[slot].1 = p.next_use[i];
        let (a, b) = span(&run, *bytes);
        Ok(Some(&p.cache[slot].2[a..b]))
    }
}

/// For each run, the index of the next run of the same pack (`usize::MAX`
/// when none): which cached pack to let go of.
fn next_uses(runs: &[Run]) -> Vec<usize> {
    let mut next = vec![usize::MAX; runs.len()];
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, r) in runs.iter().enumerate().rev() {
        if let Some(j) = seen.insert(r.pack, i) {
            next[i] = j;
        }
    }
    next
}

/// Reassembles a snapshot, calling `out` with each piece in order.
pub fn read(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), VaultError> {
    let mut reader = Reader::open(vault, snap, identity)?;
    while let Some(piece) = reader.next_piece()? {
        out(piece).map_err(|source| VaultError::Io {
            path: snap.name.clone().into(),
            error: source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pack_needed_again_last_leaves_the_cache_first() {
        let r = |pack| Run {
            pack,
            first: 0,
            count: 1,
        };
        let runs = [r(0), r(1), r(0), r(2), r(1)];
        assert_eq!(
            next_uses(&runs),
            vec![2, 4, usize::MAX, usize::MAX, usize::MAX]
        );
    }
}
