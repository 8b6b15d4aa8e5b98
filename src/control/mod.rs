//! The control host: the kubespray checkout a cluster is built from. A
//! backup records its inventory (with `group_vars/`, `host_vars/`,
//! `credentials/`, `artifacts/`), the `ansible.cfg` in use and the
//! checkout's version, encrypted and deduplicated through the same
//! [`Session`] as node files, under `control/` (vault-layout, "The
//! control host").
//!
//! A control host that cannot be found is a note, and the previous record is
//! carried; entries that cannot be read keep their previous record, as a
//! node's do.

pub mod diff;
pub mod local;
pub(crate) mod locate;
pub mod restore;
pub(crate) mod version;

use crate::vault::control::{ControlState, ControlWrite, KubesprayRecord};
use crate::vault::mac::MacKey;
use crate::vault::manifest::Manifest;
use crate::vault::session::Session;
use crate::vault::VaultError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where to look for the control host's kubespray directory.
#[derive(Clone, Debug, Default)]
pub struct ControlOptions {
    /// `--kubespray-dir`.
    pub kubespray_dir: Option<PathBuf>,
    /// The inventory the backup reads (`-i`).
    pub inventory: PathBuf,
    /// `--ansible-dir`.
    pub ansible_dir: Option<PathBuf>,
}

/// What a backup did with the control host.
#[derive(Clone, Debug, Serialize)]
pub struct ControlReport {
    /// `ok`, `partial`, `failed` (`--kubespray-dir` is wrong) or `absent`.
    pub status: String,
    pub dir: Option<String>,
    pub found_by: Option<String>,
    pub version: Option<String>,
    pub files: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// Why nothing (or not everything) was recorded.
    pub note: Option<String>,
    /// `(control-relative path, reason)` of entries that could not be read.
    pub errors: Vec<(String, String)>,
}

impl ControlReport {
    fn without(status: &str, note: String) -> ControlReport {
        ControlReport {
            status: status.into(),
            dir: None,
            found_by: None,
            version: None,
            files: 0,
            added: 0,
            changed: 0,
            removed: 0,
            note: Some(note),
            errors: vec![],
        }
    }

    /// The `Sprayvault-Control` trailer.
    pub fn trailer(&self) -> String {
        match (self.status.as_str(), &self.version) {
            ("ok", Some(v)) => format!("ok {} {v}", self.dir.as_deref().unwrap_or("")),
            ("partial", _) => format!("partial {} entries could not be read", self.errors.len()),
            ("failed", _) => "failed the kubespray directory could not be read".into(),
            ("absent", _) => "absent no kubespray checkout found".into(),
            (s, _) => format!("{s} see details"),
        }
    }

    /// The detailed text behind the trailer's generic reason (paths, error
    /// texts), for the commit's encrypted details.
    pub fn detail(&self) -> Option<&str> {
        // No checkout found is no failure: nothing to keep (and a
        // details.age every night would be a new blob every night).
        match self.status.as_str() {
            "failed" => self.note.as_deref(),
            "partial" if self.errors.is_empty() => self.note.as_deref(),
            _ => None,
        }
    }
}

/// Reads the control host and stores its content. `previous` is the parent
/// commit's control state.
pub fn collect(
    opts: &ControlOptions,
    previous: Option<&ControlState>,
    key: &MacKey,
    store: &mut Session<'_>,
) -> Result<(ControlWrite, ControlReport), VaultError> {
    let kept = if previous.is_some() {
        "; the previous record is kept"
    } else {
        ""
    };
    let env = std::env::var_os("ANSIBLE_CONFIG").map(PathBuf::from);
    let found = match locate::locate(
        opts.kubespray_dir.as_deref(),
        &opts.inventory,
        opts.ansible_dir.as_deref(),
        env.as_deref(),
    ) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Ok((
                ControlWrite::Carry,
                ControlReport::without(
                    "absent",
                    format!("no kubespray directory found (give --kubespray-dir){kept}"),
                ),
            ))
        }
        Err(why) => {
            return Ok((
                ControlWrite::Carry,
                ControlReport::without("failed", format!("{why}{kept}")),
            ))
        }
    };
    if let Some(p) = previous {
        store.learn(&p.manifest, &p.blobs);
        if let (Some((mac, _)), Some(oid)) = (&p.record.changes, p.changes) {
            store.know(mac, oid);
        }
    }
    let accounts = local::accounts();
    let mut read = local::LocalRead::default();
    if let Some(cfg) = &found.ansible_cfg {
        local::read_tree(cfg, "/ansible.cfg", &accounts, key, &mut read);
    }
    for (src, rel) in &found.roots {
        local::read_tree(src, rel, &accounts, key, &mut read);
    }
    let (manifest, carried) = Manifest::carry_forward(
        read.entries.iter().map(|r| r.entry.clone()).collect(),
        &read.errors,
        previous.map(|p| &p.manifest),
    );
    let mut blobs = BTreeMap::new();
    for r in &read.entries {
        if let (Some(content), Some(mac)) = (&r.content, &r.entry.mac) {
            blobs.insert(r.entry.path.clone(), store.put(mac, content)?);
        }
    }
    for path in &carried {
        if let Some(oid) = previous.and_then(|p| p.blobs.get(path)) {
            blobs.insert(path.clone(), *oid);
        }
    }
    let v = version::read(&found.dir, found.inside.as_deref());
    let changes = match &v.changes {
        Some(diff) => {
            let mac = key.mac(diff);
            let oid = store.put(&mac, diff)?;
            Some(((mac, diff.len() as u64), oid))
        }
        None => None,
    };
    let record = KubesprayRecord {
        dir: found.dir.display().to_string(),
        inventory: found.inventory.clone(),
        ansible_cfg: found.ansible_cfg.as_ref().map(|p| p.display().to_string()),
        describe: v.describe.clone(),
        commit: v.commit.clone(),
        modified: v.modified,
        origin: v.origin.clone(),
        changes: changes.as_ref().map(|(c, _)| c.clone()),
    };
    let changes_of = |m: &crate::vault::manifest::Manifest| {
        crate::history::compare("control", m, &manifest, None)
    };
    let diffs = previous
        .map(|p| changes_of(&p.manifest))
        .unwrap_or_default();
    let count = |k: crate::history::ChangeKind| diffs.iter().filter(|c| c.change == k).count();
    let mut notes: Vec<String> = v.note.iter().cloned().collect();
    if found.ansible_cfg.is_none() {
        notes.push("no ansible.cfg found".into());
    }
    let report = ControlReport {
        status: if read.errors.is_empty() {
            "ok"
        } else {
            "partial"
        }
        .into(),
        dir: Some(record.dir.clone()),
        found_by: Some(found.how.into()),
        version: Some(record.version()),
        files: manifest.files().count(),
        added: if previous.is_some() {
            count(crate::history::ChangeKind::Added)
        } else {
            manifest.entries.len()
        },
        changed: count(crate::history::ChangeKind::Changed),
        removed: count(crate::history::ChangeKind::Removed),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        errors: read.errors,
    };
    Ok((
        ControlWrite::New {
            manifest,
            blobs,
            record,
            changes: changes.map(|(_, o)| o),
        },
        report,
    ))
}
