//! The keyed hash that names content without revealing it.
//!
//! A plain sha256 of a certificate in a plaintext manifest would let anyone
//! holding the repository confirm a guessed file. HMAC-SHA256 under a random
//! per-vault key does not, yet lets the backup host (which holds the key but
//! no identity) recognise content it has already encrypted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The per-vault keyed-hash key. It cannot decrypt anything, but it names
/// content: every copy's bytes are wiped when it is dropped (the stages of
/// a backup each hold one).
#[derive(Clone)]
pub struct MacKey([u8; 32]);

impl Drop for MacKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl MacKey {
    pub fn generate() -> MacKey {
        let mut k = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut k);
        MacKey(k)
    }

    /// Parses the stored form: 64 lowercase hex digits, optional newline.
    pub fn from_text(text: &str) -> Option<MacKey> {
        let t = text.trim_end_matches('\n');
        let bytes = hex::decode(t).ok()?;
        (t.len() == 64 && t == t.to_lowercase()).then(|| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes);
            MacKey(k)
        })
    }

    pub fn to_text(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    /// The mac of `content`, as lowercase hex.
    pub fn mac(&self, content: &[u8]) -> String {
        let mut m = self.stream();
        m.update(content);
        m.finish()
    }

    /// A keyed hasher to take the macs of many small pieces with: the key's
    /// two blocks are hashed once, not once a piece.
    pub fn many(&self) -> MacMany {
        MacMany(
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length"),
        )
    }

    /// A mac computed piece by piece, for content that is streamed.
    pub fn stream(&self) -> MacStream {
        MacStream(
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length"),
        )
    }
}

/// Macs of many pieces under one key (`MacKey::many`).
#[derive(Clone)]
pub struct MacMany(Hmac<Sha256>);

impl MacMany {
    /// The mac of `content`, as bytes (for tables of many macs).
    pub fn mac_bytes(&self, content: &[u8]) -> [u8; 32] {
        let mut m = self.0.clone();
        m.update(content);
        m.finalize().into_bytes().into()
    }
}

/// The mac of content fed in pieces (`MacKey::stream`).
pub struct MacStream(Hmac<Sha256>);

impl MacStream {
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The mac as lowercase hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openssl_hmac() {
        // printf sprayvault | openssl dgst -sha256 -mac HMAC -macopt hexkey:00..00
        let k = MacKey::from_text(&"00".repeat(32)).unwrap();
        assert_eq!(
            k.mac(b"sprayvault"),
            "dc7ff7b7a6f52644e73d7363c8ea5c078d41b28767f49467f1f85481e06449a6"
        );
        assert_ne!(k.mac(b"a"), k.mac(b"b"));
        assert_ne!(MacKey::generate().mac(b"a"), MacKey::generate().mac(b"a"));
    }

    #[test]
    fn text_round_trip() {
        let k = MacKey::generate();
        let t = k.to_text();
        assert_eq!(MacKey::from_text(&t).unwrap().mac(b"x"), k.mac(b"x"));
        assert!(MacKey::from_text("zz").is_none());
    }
}
