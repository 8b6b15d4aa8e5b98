//! etcd's integrity trailer: a snapshot file ends with the sha256 of
//! everything before it. Checked while a snapshot streams by, in any pieces.

use sha2::{Digest, Sha256};

#[derive(Default)]
pub struct Trailer {
    hash: Sha256,
    tail: Vec<u8>,
}

impl Trailer {
    pub fn update(&mut self, piece: &[u8]) {
        // Hash all but the last 32 bytes seen so far, without copying the
        // piece when it is longer than the trailer.
        if piece.len() >= 32 {
            self.hash.update(&self.tail);
            let n = piece.len() - 32;
            self.hash.update(&piece[..n]);
            self.tail.clear();
            self.tail.extend_from_slice(&piece[n..]);
            return;
        }
        self.tail.extend_from_slice(piece);
        if self.tail.len() > 32 {
            let n = self.tail.len() - 32;
            self.hash.update(&self.tail[..n]);
            self.tail.drain(..n);
        }
    }

    /// Whether the last 32 bytes are the sha256 of everything before them.
    pub fn valid(self) -> bool {
        self.tail.len() == 32 && self.hash.finalize().as_slice() == self.tail.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_sha256_of_everything_before_it_in_any_pieces() {
        let body = b"bbolt database pages".repeat(1000);
        let mut file = body.clone();
        file.extend_from_slice(&Sha256::digest(&body));
        for size in [1, 7, 31, 32, 33, 333, 20_032, 100_000] {
            let mut t = Trailer::default();
            for p in file.chunks(size) {
                t.update(p);
            }
            assert!(t.valid(), "pieces of {size}");
        }
        let mut bad = Trailer::default();
        file[5] ^= 1;
        bad.update(&file);
        assert!(!bad.valid());
        let mut short = Trailer::default();
        short.update(&file[..20]);
        assert!(!short.valid());
    }
}
