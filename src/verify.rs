//! Checking a vault: every object referenced by every backup is present and
//! intact (git's object hashes), and with an identity (`full`) every file
//! decrypts and matches the keyed hash its manifest records.

use crate::vault::crypto::Identity;
use crate::vault::mac::MacKey;
use crate::vault::manifest::Manifest;
use crate::vault::{Vault, VaultError};
use git2::Oid;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One thing wrong, located as precisely as possible.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub backup: String,
    pub node: Option<String>,
    pub path: Option<String>,
    pub what: String,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub backups: usize,
    pub objects: usize,
    pub decrypted: usize,
    pub problems: Vec<Problem>,
}

fn short(o: Oid) -> String {
    o.to_string()[..10].to_string()
}

/// Verifies every backup on the branch. `identity` turns on the full check.
pub fn verify(vault: &Vault, identity: Option<&Identity>) -> Result<VerifyReport, VaultError> {
    let mut report = VerifyReport::default();
    let mut good: HashSet<Oid> = HashSet::new();
    let mut bad: HashMap<Oid, String> = HashMap::new();
    let mut macs: HashMap<Oid, Result<String, String>> = HashMap::new();
    let key = match identity {
        Some(id) => {
            let head = vault.head()?;
            Some(mac_key(vault, head, id)?)
        }
        None => None,
    };
    for commit in vault.history()? {
        report.backups += 1;
        let backup = match vault.backup(commit) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(Problem {
                    backup: short(commit),
                    node: None,
                    path: None,
                    what: e.to_string(),
                });
                continue;
            }
        };
        // The control host's files are checked like a node's.
        let control = match vault.control(commit) {
            Ok(c) => c,
            Err(e) => {
                report.problems.push(Problem {
                    backup: short(commit),
                    node: Some("control host".into()),
                    path: None,
                    what: e.to_string(),
                });
                None
            }
        };
        let mut sets: Vec<(String, &Manifest, &BTreeMap<String, Oid>)> = backup
            .nodes
            .iter()
            .map(|(n, s)| (n.clone(), &s.manifest, &s.blobs))
            .collect();
        if let Some(c) = &control {
            sets.push(("control host".into(), &c.manifest, &c.blobs));
        }
        for (node, manifest, blobs) in sets {
            for e in manifest.files() {
                let oid = blobs[&e.path];
                let problem = |what: String| Problem {
                    backup: short(commit),
                    node: Some(node.clone()),
                    path: Some(e.path.clone()),
                    what,
                };
                if let Some(why) = bad.get(&oid) {
                    report.problems.push(problem(why.clone()));
                    continue;
                }
                if !good.contains(&oid) {
                    match vault.check_blob(oid) {
                        Ok(()) => {
                            good.insert(oid);
                            report.objects += 1;
                        }
                        Err(err) => {
                            let why = format!(
                                "object {} is missing or damaged: {}",
                                short(oid),
                                err.message()
                            );
                            bad.insert(oid, why.clone());
                            report.problems.push(problem(why));
                            continue;
                        }
                    }
                }
                if let (Some(key), Some(id)) = (&key, identity) {
                    let got = macs.entry(oid).or_insert_with(|| {
                        report.decrypted += 1;
                        vault
                            .read_blob(oid)
                            .map_err(|e| e.to_string())
                            .and_then(|c| {
                                id.decrypt(&c, &format!("object {}", short(oid)))
                                    .map_err(|e| e.to_string())
                            })
                            .map(|plain| key.mac(&plain))
                    });
                    match &*got {
                        Ok(mac) if Some(mac) == e.mac.as_ref() => {}
                        Ok(_) => report.problems.push(problem(
                            "content does not match the keyed hash in the manifest".into(),
                        )),
                        Err(why) => report.problems.push(problem(why.clone())),
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The keyed-hash key, decrypted from `mac-key.age` of `commit`.
fn mac_key(vault: &Vault, commit: Oid, identity: &Identity) -> Result<MacKey, VaultError> {
    let blob = vault
        .mac_key_blob(commit)?
        .ok_or_else(|| VaultError::Damaged {
            rev: short(commit),
            what: "no mac-key.age".into(),
        })?;
    let cipher = vault.read_blob(blob)?;
    let plain = identity.decrypt(&cipher, "mac-key.age")?;
    MacKey::from_text(&String::from_utf8_lossy(&plain)).ok_or_else(|| VaultError::Damaged {
        rev: short(commit),
        what: "mac-key.age does not hold a key".into(),
    })
}
