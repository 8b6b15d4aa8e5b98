//! Looking inside files that changed: certificates in meaning, `KEY=value`
//! files (like `/etc/etcd.env`) as variable changes, other text as a line
//! diff, private keys only as fingerprints.

use crate::certs::{classify, embedded, fingerprint, CertInfo, Content};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Detail {
    Certificate {
        changes: Vec<String>,
    },
    PrivateKey {
        old: Option<String>,
        new: Option<String>,
    },
    Variables {
        changes: Vec<String>,
    },
    Lines {
        removed: Vec<String>,
        added: Vec<String>,
    },
    Binary {
        old_size: usize,
        new_size: usize,
    },
}

fn date(t: i64) -> String {
    crate::vault::rfc3339(t)
}

/// The meaningful differences between two certificates.
pub fn cert_changes(o: &CertInfo, n: &CertInfo) -> Vec<String> {
    let mut c = Vec::new();
    if o.subject != n.subject {
        c.push(format!("subject: {} -> {}", o.subject, n.subject));
    }
    if o.issuer != n.issuer {
        c.push(format!("issuer: {} -> {}", o.issuer, n.issuer));
    }
    if o.serial != n.serial {
        c.push(format!("serial: {} -> {}", o.serial, n.serial));
    }
    for s in n.sans.iter().filter(|s| !o.sans.contains(s)) {
        c.push(format!("SAN added: {s}"));
    }
    for s in o.sans.iter().filter(|s| !n.sans.contains(s)) {
        c.push(format!("SAN removed: {s}"));
    }
    if (o.not_before, o.not_after) != (n.not_before, n.not_after) {
        c.push(format!(
            "validity: {} .. {} -> {} .. {}",
            date(o.not_before),
            date(o.not_after),
            date(n.not_before),
            date(n.not_after)
        ));
    }
    if (&o.key_type, o.key_bits) != (&n.key_type, n.key_bits) {
        c.push(format!(
            "key: {} {} -> {} {}",
            o.key_type, o.key_bits, n.key_type, n.key_bits
        ));
    }
    if o.key_fingerprint != n.key_fingerprint {
        c.push("key pair: changed (new public key)".to_string());
    } else {
        c.push("key pair: unchanged".to_string());
    }
    if o.fingerprint != n.fingerprint {
        c.push(format!(
            "sha256 fingerprint: {} -> {}",
            o.fingerprint, n.fingerprint
        ));
    }
    c
}

fn is_env(text: &str) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            l.split_once('=').is_some_and(|(k, _)| {
                let k = k.strip_prefix("export ").unwrap_or(k);
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
}

fn vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim_start_matches("export ").to_string(), v.to_string()))
        })
        .collect()
}

/// A line diff that keeps order: lines only in the old text, lines only in the new.
fn line_diff(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // Longest common subsequence; configs are small.
    let mut l = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut removed, mut added) = (0, 0, vec![], vec![]);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            i += 1;
            j += 1;
        } else if l[i + 1][j] >= l[i][j + 1] {
            removed.push(a[i].to_string());
            i += 1;
        } else {
            added.push(b[j].to_string());
            j += 1;
        }
    }
    removed.extend(a[i..].iter().map(|s| s.to_string()));
    added.extend(b[j..].iter().map(|s| s.to_string()));
    (removed, added)
}

/// What changed inside a file whose content changed (either side may be absent).
pub fn detail(old: Option<&[u8]>, new: Option<&[u8]>) -> Detail {
    let kind = |d: Option<&[u8]>| d.map(classify);
    match (kind(old), kind(new)) {
        (Some(Content::PrivateKey), _) | (_, Some(Content::PrivateKey)) => Detail::PrivateKey {
            old: old.map(fingerprint),
            new: new.map(fingerprint),
        },
        (Some(Content::Certificates(o)), Some(Content::Certificates(n))) => {
            let mut changes = Vec::new();
            for (i, (a, b)) in o.iter().zip(n.iter()).enumerate() {
                let c = cert_changes(a, b);
                let prefix = if o.len() > 1 || n.len() > 1 {
                    format!("certificate {}: ", i + 1)
                } else {
                    String::new()
                };
                changes.extend(c.into_iter().map(|x| format!("{prefix}{x}")));
            }
            if o.len() != n.len() {
                changes.push(format!(
                    "certificates in the file: {} -> {}",
                    o.len(),
                    n.len()
                ));
            }
            Detail::Certificate { changes }
        }
        (None, Some(Content::Certificates(n))) => Detail::Certificate {
            changes: n.iter().map(describe).collect(),
        },
        (Some(Content::Certificates(o)), None) => Detail::Certificate {
            changes: o.iter().map(describe).collect(),
        },
        _ => {
            let (o, n) = (old.unwrap_or_default(), new.unwrap_or_default());
            match (std::str::from_utf8(o), std::str::from_utf8(n)) {
                (Ok(a), Ok(b)) => {
                    let (ea, eb) = (embedded(o), embedded(n));
                    if !ea.is_empty() || !eb.is_empty() {
                        let mut changes = Vec::new();
                        for (x, y) in ea.iter().zip(eb.iter()) {
                            changes.extend(
                                cert_changes(x, y)
                                    .into_iter()
                                    .map(|c| format!("embedded {}: {c}", y.subject)),
                            );
                        }
                        let (removed, added) = line_diff(a, b);
                        let other = removed
                            .iter()
                            .chain(&added)
                            .filter(|l| !l.contains("-data:"))
                            .count();
                        if other > 0 {
                            changes.push(format!("{other} other lines changed"));
                        }
                        return Detail::Certificate { changes };
                    }
                    if (a.is_empty() || is_env(a)) && (b.is_empty() || is_env(b)) {
                        let (va, vb) = (vars(a), vars(b));
                        let mut changes = Vec::new();
                        for (k, v) in &vb {
                            match va.iter().find(|(x, _)| x == k) {
                                None => changes.push(format!("+ {k}={v}")),
                                Some((_, old)) if old != v => {
                                    changes.push(format!("~ {k}: {old} -> {v}"))
                                }
                                _ => {}
                            }
                        }
                        for (k, v) in &va {
                            if !vb.iter().any(|(x, _)| x == k) {
                                changes.push(format!("- {k}={v}"));
                            }
                        }
                        Detail::Variables { changes }
                    } else {
                        let (removed, added) = line_diff(a, b);
                        Detail::Lines { removed, added }
                    }
                }
                _ => Detail::Binary {
                    old_size: o.len(),
                    new_size: n.len(),
                },
            }
        }
    }
}

/// One line about a certificate, for added or removed files.
pub fn describe(c: &CertInfo) -> String {
    format!(
        "{} (serial {}, issuer {}, expires {})",
        c.subject,
        c.serial,
        c.issuer,
        date(c.not_after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_diff_by_variable() {
        let d = detail(Some(b"# x\nA=1\nB=2\n"), Some(b"A=1\nB=3\nC=4\n"));
        match d {
            Detail::Variables { changes } => assert_eq!(changes, vec!["~ B: 2 -> 3", "+ C=4"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_diffs_by_line() {
        match detail(Some(b"a\nb\nc\n"), Some(b"a\nc\nd\n")) {
            Detail::Lines { removed, added } => {
                assert_eq!(removed, vec!["b"]);
                assert_eq!(added, vec!["d"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn private_keys_only_by_fingerprint() {
        let d = detail(
            Some(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Some(b"-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n"),
        );
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("AAAA") && !json.contains("BBBB"), "{json}");
        assert!(matches!(d, Detail::PrivateKey { .. }));
    }
}
