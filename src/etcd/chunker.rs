//! Content-defined chunking (FastCDC with normalized chunking), so that two
//! nightly snapshots of a slowly changing etcd share most chunks. The gear
//! table is derived from the vault's keyed-hash key, so chunk boundaries
//! (and sizes) do not follow a public table an observer could match against.
//!
//! Memory is bounded by the maximum chunk size plus one input piece,
//! whatever the size of the stream. The buffer holds snapshot plaintext
//! (every Secret of the cluster): bytes it lets go of are wiped, and so is
//! the buffer when it grows or is dropped.

use crate::vault::mac::MacKey;
use zeroize::Zeroizing;

/// Small enough that a night's scattered page changes in a large database
/// make few bytes of new chunks; large enough that the per-chunk entries
/// (index line, tree entry, age header) stay a small fraction.
pub const MIN: usize = 64 * 1024;
pub const AVG: usize = 256 * 1024;
pub const MAX: usize = 1024 * 1024;
/// Harder mask before the average size, easier after (normalization level 2).
const MASK_S: u64 = (1 << 20) - 1;
const MASK_L: u64 = (1 << 16) - 1;

pub struct Chunker {
    gear: [u64; 256],
    buf: Zeroizing<Vec<u8>>,
    /// Where scanning resumes in `buf`, and the rolling hash there.
    pos: usize,
    hash: u64,
}

impl Chunker {
    pub fn new(key: &MacKey) -> Chunker {
        let mut gear = [0u64; 256];
        for (i, g) in gear.iter_mut().enumerate() {
            let mac = key.mac(format!("sprayvault-cdc-gear-{i}").as_bytes());
            *g = u64::from_str_radix(&mac[..16], 16).expect("a mac is hex");
        }
        Chunker {
            gear,
            buf: Zeroizing::new(Vec::with_capacity(2 * MAX)),
            pos: MIN,
            hash: 0,
        }
    }

    /// The end of the next chunk in `buf`, if it is decided yet.
    fn cut(&mut self, finishing: bool) -> Option<usize> {
        let len = self.buf.len();
        if len <= MIN {
            return if finishing && len > 0 {
                Some(len)
            } else {
                None
            };
        }
        // Two tight loops (the harder mask before the average size, the
        // easier one after) over a slice, with the state in locals.
        let end = len.min(MAX);
        let (gear, buf) = (&self.gear, &self.buf[..end]);
        let mut hash = self.hash;
        let mut pos = self.pos;
        for (mask, stop) in [(MASK_S, AVG.min(end)), (MASK_L, end)] {
            if pos >= stop {
                continue;
            }
            for (i, &b) in buf[pos..stop].iter().enumerate() {
                hash = (hash << 1).wrapping_add(gear[b as usize]);
                if hash & mask == 0 {
                    self.pos = pos + i + 1;
                    self.hash = hash;
                    return Some(self.pos);
                }
            }
            pos = stop;
        }
        self.pos = pos;
        self.hash = hash;
        if len >= MAX {
            Some(MAX)
        } else if finishing {
            Some(len)
        } else {
            None
        }
    }

    fn emit<E>(
        &mut self,
        end: usize,
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        out(&self.buf[..end])?;
        let left = self.buf.len() - end;
        self.buf.copy_within(end.., 0);
        self.buf[left..].fill(0);
        self.buf.truncate(left);
        self.pos = MIN;
        self.hash = 0;
        Ok(())
    }

    /// Adds data, emitting every chunk that is complete.
    pub fn push<E>(
        &mut self,
        data: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let want = self.buf.len() + data.len();
        if want > self.buf.capacity() {
            // Moved by hand, so the old allocation is wiped when dropped.
            let mut grown = Zeroizing::new(Vec::with_capacity(want.max(2 * self.buf.capacity())));
            grown.extend_from_slice(&self.buf);
            self.buf = grown;
        }
        self.buf.extend_from_slice(data);
        while let Some(end) = self.cut(false) {
            self.emit(end, out)?;
        }
        Ok(())
    }

    /// Emits what is left.
    pub fn finish<E>(mut self, out: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        while let Some(end) = self.cut(true) {
            self.emit(end, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(key: &MacKey, data: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(key);
        let mut out = Vec::new();
        for p in data.chunks(piece) {
            c.push::<()>(p, &mut |x| {
                out.push(x.to_vec());
                Ok(())
            })
            .unwrap();
        }
        c.finish::<()>(&mut |x| {
            out.push(x.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn chunks_reassemble_and_respect_bounds() {
        let key = MacKey::generate();
        let data = noise(12 * 1024 * 1024 + 123, 7);
        let c = chunks(&key, &data, 300_000);
        assert_eq!(c.concat(), data);
        assert!(c[..c.len() - 1]
            .iter()
            .all(|x| x.len() >= MIN && x.len() <= MAX));
        // Boundaries do not depend on how the input was split into pieces.
        assert_eq!(c, chunks(&key, &data, 1 << 20));
    }

    #[test]
    fn a_small_edit_changes_few_chunks() {
        let key = MacKey::generate();
        let a = noise(16 * 1024 * 1024, 3);
        let mut b = a.clone();
        b[8 * 1024 * 1024] ^= 0xff;
        b.splice(100..100, [1u8, 2, 3]);
        let (ca, cb) = (chunks(&key, &a, 1 << 20), chunks(&key, &b, 1 << 20));
        let shared = cb.iter().filter(|x| ca.contains(x)).count();
        assert!(
            shared + 3 >= cb.len(),
            "only {shared} of {} chunks shared",
            cb.len()
        );
    }
}

#[cfg(test)]
mod pinned {
    use super::*;

    /// Chunk boundaries are part of the vault format in effect: a change
    /// would make every chunk of the next snapshot new. Pinned for a fixed
    /// key and input.
    #[test]
    fn boundaries_are_stable() {
        let key = MacKey::from_text(&"5a".repeat(32)).unwrap();
        let mut s = 11u64;
        let data: Vec<u8> = (0..24 * 1024 * 1024)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect();
        let mut sizes = Vec::new();
        let mut c = Chunker::new(&key);
        for p in data.chunks(1 << 20) {
            c.push::<()>(p, &mut |x| {
                sizes.push(x.len());
                Ok(())
            })
            .unwrap();
        }
        c.finish::<()>(&mut |x| {
            sizes.push(x.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes.len(), 83);
        assert_eq!(&sizes[..10], PINNED);
        assert_eq!(sizes[82], 125838);
    }

    const PINNED: &[usize] = &[
        303908, 154279, 286301, 313870, 72506, 309707, 291751, 399014, 329427, 327429,
    ];
}
