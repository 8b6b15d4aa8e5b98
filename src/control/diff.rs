//! What changed on the control host between two backups: the kubespray
//! version, files, credentials, and, when the contents are at hand
//! (decrypted with an identity), hosts added, removed or moved between
//! groups (read with sprayvault's inventory reader) and variables of
//! `group_vars/` and `host_vars/` by name. Values of secrets (by their
//! name, or `!vault`-tagged) are shown by fingerprint only.

use super::locate::BESIDE;
use crate::history::{compare, Change, ChangeKind};
use crate::vault::control::{ControlState, KubesprayRecord};
use crate::vault::manifest::{Kind, Manifest};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Decrypted contents by control-relative path.
pub type Contents = BTreeMap<String, Vec<u8>>;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HostChange {
    pub host: String,
    pub change: ChangeKind,
    pub old_groups: Vec<String>,
    pub new_groups: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VarChange {
    /// The variables file, relative to the inventory directory.
    pub file: String,
    pub name: String,
    pub change: ChangeKind,
    pub old: Option<String>,
    pub new: Option<String>,
    pub secret: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CredentialChange {
    /// Relative to the inventory directory (`credentials/kube_encrypt_token.creds`).
    pub file: String,
    pub change: ChangeKind,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ControlDiff {
    /// `(old, new)` versions when the checkout's version changed.
    pub version: Option<(String, String)>,
    pub files: Vec<Change>,
    pub credentials: Vec<CredentialChange>,
    /// Hosts and variables; `None` without contents (no identity).
    pub hosts: Option<Vec<HostChange>>,
    pub variables: Option<Vec<VarChange>>,
    /// Inventory files that could not be read for hosts, and why.
    pub notes: Vec<String>,
}

impl ControlDiff {
    pub fn is_empty(&self) -> bool {
        self.version.is_none() && self.files.is_empty()
    }
}

/// A side of the comparison.
pub struct Side<'a> {
    pub manifest: &'a Manifest,
    pub record: Option<&'a KubesprayRecord>,
    pub contents: Option<&'a Contents>,
}

impl<'a> Side<'a> {
    pub fn of(state: Option<&'a ControlState>, empty: &'a Manifest) -> Side<'a> {
        Side {
            manifest: state.map(|s| &s.manifest).unwrap_or(empty),
            record: state.map(|s| &s.record),
            contents: None,
        }
    }
}

/// The inventory directory of a record (control-relative): the inventory
/// itself when it is a directory, else its parent.
pub fn inventory_dir(record: &KubesprayRecord, manifest: &Manifest) -> String {
    let inv = &record.inventory;
    match manifest.entries.get(inv) {
        Some(e) if e.kind == Kind::File => crate::paths::parent(inv).to_string(),
        _ => inv.clone(),
    }
}

/// Inventory sources (files the inventory reader reads for hosts) and
/// variable files, as control-relative paths.
fn sources(record: &KubesprayRecord, manifest: &Manifest) -> (Vec<String>, Vec<String>) {
    let dir = inventory_dir(record, manifest);
    let mut inv = Vec::new();
    let mut vars = Vec::new();
    for e in manifest.files() {
        let Some(rest) = e.path.strip_prefix(&format!("{dir}/")) else {
            continue;
        };
        if rest.starts_with("group_vars/") || rest.starts_with("host_vars/") {
            vars.push(e.path.clone());
        } else if e.path == record.inventory
            || (record.inventory == dir && !rest.contains('/') && !BESIDE.contains(&rest))
        {
            inv.push(e.path.clone());
        }
    }
    (inv, vars)
}

/// What of a backup's control files `compare` needs decrypted.
pub fn wanted(state: &ControlState) -> Vec<String> {
    let (mut inv, vars) = sources(&state.record, &state.manifest);
    inv.extend(vars);
    let dir = inventory_dir(&state.record, &state.manifest);
    inv.extend(
        state
            .manifest
            .files()
            .filter(|e| e.path.starts_with(&format!("{dir}/credentials/")))
            .map(|e| e.path.clone()),
    );
    inv
}

/// `sha256:` and the first 12 hex digits of the SHA-256 of `data`.
pub fn fingerprint(data: &[u8]) -> String {
    format!("sha256:{}", &hex::encode(Sha256::digest(data))[..12])
}

/// A variable whose value is a secret by its name.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password", "passwd", "secret", "token", "key", "cred", "private", "cert", "auth",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Hosts and their groups, from every inventory source of a side.
fn hosts(
    paths: &[String],
    contents: &Contents,
    notes: &mut Vec<String>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in paths {
        let Some(data) = contents.get(p) else {
            continue;
        };
        let text = String::from_utf8_lossy(data);
        match crate::inventory::from_text(Path::new(p), &text) {
            Ok(inv) => {
                for (name, h) in inv.hosts {
                    out.entry(name).or_default().extend(h.groups);
                }
            }
            Err(e) => notes.push(format!("{p}: not read as an inventory: {e}")),
        }
    }
    out.into_iter()
        .map(|(h, g)| (h, g.into_iter().collect()))
        .collect()
}

/// An ansible-vault encrypted value (`!vault`), as the inventory reader gives it.
fn tagged(v: &serde_json::Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key("__ansible_vault"))
}

/// Why a file is not read as variables (a note of the diff).
#[derive(Debug, thiserror::Error)]
enum NotVariables {
    #[error(transparent)]
    Yaml(#[from] crate::inventory::YamlError),
    #[error("not a mapping of variables")]
    NotAMapping,
}

/// Top-level variables of a variables file: name to (rendered value, secret).
/// Read with the inventory's own YAML reader, so values are what Ansible sees.
fn variables(data: &[u8]) -> Result<BTreeMap<String, (String, bool)>, NotVariables> {
    let v = crate::inventory::yaml_to_json(&String::from_utf8_lossy(data))?;
    let mut out = BTreeMap::new();
    let map = match v {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => return Ok(out),
        _ => return Err(NotVariables::NotAMapping),
    };
    for (name, v) in map {
        let name = name.as_str();
        let secret = secret_name(name) || tagged(&v);
        let text = serde_json::to_string(&v).unwrap_or_else(|_| format!("{v:?}"));
        let shown = if secret {
            fingerprint(text.as_bytes())
        } else {
            text
        };
        out.insert(name.to_string(), (shown, secret));
    }
    Ok(out)
}

fn change_kind(old: bool, new: bool) -> ChangeKind {
    match (old, new) {
        (false, _) => ChangeKind::Added,
        (_, false) => ChangeKind::Removed,
        _ => ChangeKind::Changed,
    }
}

/// Compares two sides (either may be an empty manifest without record).
pub fn diff(old: &Side, new: &Side) -> ControlDiff {
    let mut d = ControlDiff {
        files: compare("control", old.manifest, new.manifest, None),
        ..Default::default()
    };
    if let (Some(o), Some(n)) = (old.record, new.record) {
        if (&o.describe, &o.commit, o.modified) != (&n.describe, &n.commit, n.modified) {
            d.version = Some((o.version(), n.version()));
        }
    } else if let Some(n) = new.record {
        d.version = Some(("none".into(), n.version()));
    }
    let dir_of = |s: &Side| s.record.map(|r| inventory_dir(r, s.manifest));
    let (od, nd) = (dir_of(old), dir_of(new));
    let rel = |path: &str| -> String {
        for dir in [&nd, &od].into_iter().flatten() {
            if let Some(r) = path.strip_prefix(&format!("{dir}/")) {
                return r.to_string();
            }
        }
        path.trim_start_matches('/').to_string()
    };
    let contents = |s: &Side, p: &str| s.contents.and_then(|c| c.get(p)).map(|d| fingerprint(d));
    for c in &d.files {
        let r = rel(&c.path);
        let is_file = |e: &Option<crate::vault::manifest::Entry>| {
            e.as_ref().is_some_and(|e| e.kind == Kind::File)
        };
        if r.starts_with("credentials/")
            && c.content_changed
            && (is_file(&c.old) || is_file(&c.new))
        {
            d.credentials.push(CredentialChange {
                file: r,
                change: c.change,
                old: contents(old, &c.path),
                new: contents(new, &c.path),
            });
        }
    }
    let (Some(oc), Some(nc)) = (old.contents, new.contents) else {
        return d;
    };
    let empty = KubesprayRecord::default();
    let (oi, ov) = sources(old.record.unwrap_or(&empty), old.manifest);
    let (ni, nv) = sources(new.record.unwrap_or(&empty), new.manifest);
    let mut notes = Vec::new();
    let (oh, nh) = (hosts(&oi, oc, &mut notes), hosts(&ni, nc, &mut notes));
    let mut hc = Vec::new();
    for name in oh.keys().chain(nh.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (oh.get(name), nh.get(name));
        if a != b {
            hc.push(HostChange {
                host: name.clone(),
                change: change_kind(a.is_some(), b.is_some()),
                old_groups: a.cloned().unwrap_or_default(),
                new_groups: b.cloned().unwrap_or_default(),
            });
        }
    }
    let mut vc = Vec::new();
    let read = |paths: &[String], c: &Contents, notes: &mut Vec<String>| {
        let mut out = BTreeMap::new();
        for p in paths {
            match c.get(p).map(|d| variables(d)) {
                Some(Ok(v)) => {
                    out.insert(rel(p), v);
                }
                Some(Err(e)) => notes.push(format!("{p}: not read as variables: {e}")),
                None => {}
            }
        }
        out
    };
    let (ovars, nvars) = (read(&ov, oc, &mut notes), read(&nv, nc, &mut notes));
    let none = BTreeMap::new();
    for file in ovars.keys().chain(nvars.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (
            ovars.get(file).unwrap_or(&none),
            nvars.get(file).unwrap_or(&none),
        );
        for name in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            let (x, y) = (a.get(name), b.get(name));
            if x.map(|v| &v.0) != y.map(|v| &v.0) {
                vc.push(VarChange {
                    file: file.clone(),
                    name: name.clone(),
                    change: change_kind(x.is_some(), y.is_some()),
                    old: x.map(|v| v.0.clone()),
                    new: y.map(|v| v.0.clone()),
                    secret: x.or(y).is_some_and(|v| v.1),
                });
            }
        }
    }
    d.hosts = Some(hc);
    d.variables = Some(vc);
    d.notes = notes;
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::manifest::Entry;

    fn file(path: &str, mac: char) -> Entry {
        Entry {
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: None,
            group: None,
            size: 1,
            mtime: 1,
            mac: Some(mac.to_string().repeat(64)),
            path: path.into(),
            target: None,
        }
    }

    fn side(files: &[(&str, char, &str)], describe: &str) -> (Manifest, KubesprayRecord, Contents) {
        let mut m = Manifest::default();
        let mut c = Contents::new();
        for (p, mac, text) in files {
            m.insert(file(p, *mac));
            c.insert(p.to_string(), text.as_bytes().to_vec());
        }
        let r = KubesprayRecord {
            dir: "/k".into(),
            inventory: "/inventory/c/hosts.ini".into(),
            describe: Some(describe.into()),
            commit: Some("a".repeat(40)),
            modified: Some(false),
            ..Default::default()
        };
        (m, r, c)
    }

    #[test]
    fn names_hosts_variables_credentials_and_version() {
        let (om, or, oc) = side(
            &[
                (
                    "/inventory/c/hosts.ini",
                    '1',
                    "[etcd]\nn1\n[kube_node]\nn1\n",
                ),
                (
                    "/inventory/c/group_vars/all.yml",
                    '2',
                    "kube_version: v1.28.6\nkube_token: t0kenA\nkeep: 1\n",
                ),
                (
                    "/inventory/c/credentials/kube_encrypt_token.creds",
                    '3',
                    "cred-one",
                ),
            ],
            "v2.24.0",
        );
        let (nm, mut nr, nc) = side(
            &[
                (
                    "/inventory/c/hosts.ini",
                    '4',
                    "[etcd]\nn1\n[kube_node]\nn2\n",
                ),
                (
                    "/inventory/c/group_vars/all.yml",
                    '5',
                    "kube_version: v1.29.1\nkube_token: t0kenB\nkeep: 1\n",
                ),
                (
                    "/inventory/c/credentials/kube_encrypt_token.creds",
                    '6',
                    "cred-two",
                ),
            ],
            "v2.25.0",
        );
        nr.commit = Some("b".repeat(40));
        let d = diff(
            &Side {
                manifest: &om,
                record: Some(&or),
                contents: Some(&oc),
            },
            &Side {
                manifest: &nm,
                record: Some(&nr),
                contents: Some(&nc),
            },
        );
        let (a, b) = d.version.clone().unwrap();
        assert!(
            a.starts_with("v2.24.0") && b.starts_with("v2.25.0"),
            "{a} {b}"
        );
        let hosts = d.hosts.clone().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            (hosts[0].host.as_str(), hosts[0].change),
            ("n1", ChangeKind::Changed)
        );
        assert_eq!(hosts[0].old_groups, vec!["etcd", "kube_node"]);
        assert_eq!(hosts[0].new_groups, vec!["etcd"]);
        assert_eq!(
            (hosts[1].host.as_str(), hosts[1].change),
            ("n2", ChangeKind::Added)
        );
        let vars = d.variables.clone().unwrap();
        assert_eq!(vars.len(), 2, "{vars:?}");
        assert_eq!(vars[0].name, "kube_token");
        assert!(vars[0].secret);
        let shown = serde_json::to_string(&d).unwrap();
        assert!(!shown.contains("t0ken"), "{shown}");
        assert!(vars[0].old.as_deref().unwrap().starts_with("sha256:"));
        assert_eq!(vars[1].file, "group_vars/all.yml");
        assert_eq!(vars[1].old.as_deref(), Some("\"v1.28.6\""));
        assert_eq!(vars[1].new.as_deref(), Some("\"v1.29.1\""));
        assert_eq!(d.credentials.len(), 1);
        assert_eq!(
            d.credentials[0].file,
            "credentials/kube_encrypt_token.creds"
        );
        assert_eq!(d.credentials[0].old, Some(fingerprint(b"cred-one")));
        assert!(!shown.contains("cred-"), "{shown}");

        // Without contents: files, credentials and version, no hosts or variables.
        let d = diff(
            &Side {
                manifest: &om,
                record: Some(&or),
                contents: None,
            },
            &Side {
                manifest: &nm,
                record: Some(&nr),
                contents: None,
            },
        );
        assert!(d.hosts.is_none() && d.variables.is_none());
        assert_eq!(d.credentials.len(), 1);
        assert_eq!(d.files.len(), 3);
    }

    #[test]
    fn vault_tagged_values_are_secret() {
        let v = variables(b"plain: 1\nx: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3031\n").unwrap();
        assert_eq!(v["plain"], ("1".into(), false));
        assert!(v["x"].1 && v["x"].0.starts_with("sha256:"));
    }
}
