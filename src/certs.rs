//! X.509 certificates in meaning: subject, issuer, serial, SANs, validity,
//! key type and size, fingerprints. Used by `show`, `diff` and `certs`.
//!
//! Private keys are never parsed or shown: they are identified only by a
//! fingerprint of their file.

use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Hex, upper case, as `openssl x509 -noout -serial` prints it.
    pub serial: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub key_type: String,
    pub key_bits: usize,
    pub is_ca: bool,
    /// SHA-256 of the certificate (DER), as `openssl x509 -fingerprint -sha256`.
    pub fingerprint: String,
    /// SHA-256 of the public key (SubjectPublicKeyInfo): equal when the key pair did not change.
    pub key_fingerprint: String,
}

/// What kind of file a backed-up path holds, judged by content.
pub enum Content {
    Certificates(Vec<CertInfo>),
    PrivateKey,
    Other,
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// SHA-256 fingerprint of arbitrary bytes, `SHA256:AB:CD:...` style.
pub fn fingerprint(data: &[u8]) -> String {
    colon_hex(&Sha256::digest(data))
}

fn rsa_bits(modulus: &[u8]) -> usize {
    let m: Vec<u8> = modulus.iter().copied().skip_while(|b| *b == 0).collect();
    match m.first() {
        Some(first) => m.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IPAddress(ip) => sans.push(match ip.len() {
                    4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(ip);
                        format!("IP:{}", std::net::Ipv6Addr::from(a))
                    }
                    _ => format!("IP:{}", colon_hex(ip)),
                }),
                GeneralName::RFC822Name(e) => sans.push(format!("email:{e}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                other => sans.push(format!("{other:?}")),
            }
        }
    }
    sans.sort();
    let spki = cert.public_key();
    let (key_type, key_bits) = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_string(), rsa_bits(rsa.modulus)),
        Ok(PublicKey::EC(ec)) => ("EC".to_string(), ec.key_size()),
        Ok(_) | Err(_) => {
            let oid = spki.algorithm.algorithm.to_id_string();
            let name = match oid.as_str() {
                "1.3.101.112" => "Ed25519".to_string(),
                "1.3.101.113" => "Ed448".to_string(),
                _ => oid,
            };
            (name, spki.subject_public_key.data.len() * 8)
        }
    };
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
            .trim_start_matches("00")
            .to_string(),
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_type,
        key_bits,
        is_ca: cert.is_ca(),
        fingerprint: fingerprint(der),
        key_fingerprint: fingerprint(spki.raw),
    })
}

/// Every `-----BEGIN CERTIFICATE-----` block's DER.
fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            cur = Some(String::new());
        } else if l == "-----END CERTIFICATE-----" {
            if let Some(b64) = cur.take() {
                if let Some(der) = base64_decode(&b64) {
                    out.push(der);
                }
            }
        } else if let Some(c) = cur.as_mut() {
            c.push_str(l);
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = T.iter().position(|&x| x == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Classifies a file's content.
pub fn classify(data: &[u8]) -> Content {
    let Ok(text) = std::str::from_utf8(data) else {
        return Content::Other;
    };
    if text.contains("PRIVATE KEY-----") {
        return Content::PrivateKey;
    }
    let certs: Vec<CertInfo> = pem_blocks(text).iter().filter_map(|d| info(d)).collect();
    if certs.is_empty() {
        Content::Other
    } else {
        Content::Certificates(certs)
    }
}

/// Certificates embedded in a kubeconfig (`*-data:` base64 fields) are
/// certificates too; this finds them.
pub fn embedded(data: &[u8]) -> Vec<CertInfo> {
    let Ok(text) = std::str::from_utf8(data) else {
        return vec![];
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some((k, v)) = l.split_once(':') {
            if k.ends_with("certificate-authority-data") || k.ends_with("client-certificate-data") {
                if let Some(pem) = base64_decode(v.trim()).and_then(|b| String::from_utf8(b).ok()) {
                    out.extend(pem_blocks(&pem).iter().filter_map(|d| info(d)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
    }

    #[test]
    fn rsa_bit_count() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(rsa_bits(&[0x01, 0, 0]), 17);
    }
}
