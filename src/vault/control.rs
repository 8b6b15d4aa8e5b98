//! The control host's part of a backup commit: `control/` (vault-layout,
//! "The control host"). `control/manifest` lists the kubespray directory's
//! recorded entries in the manifest format of nodes, with paths relative to
//! that directory written with a leading `/`; `control/files/<path>` holds
//! their content blobs; `control/kubespray` is the plaintext record of the
//! checkout's version; `control/changes` the age file of its local
//! modifications, when it has any.

use super::manifest::Manifest;
use super::tree::{blobs_below, TreeSpec};
use super::{Vault, VaultError};
use git2::Oid;
use std::collections::BTreeMap;

pub const HEADER: &str = "sprayvault-kubespray 1";
pub const DIR: &str = "control";

/// The plaintext record of where the control host's files came from and
/// which kubespray version ran them. Absent values are `None` (`-` in text).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KubesprayRecord {
    /// The kubespray directory on the control host (absolute).
    pub dir: String,
    /// The inventory given to the backup (`-i`), control-relative (`/inventory/mycluster`).
    pub inventory: String,
    /// Where the recorded `/ansible.cfg` was read from (absolute), if any.
    pub ansible_cfg: Option<String>,
    /// `git describe --tags` of the checkout.
    pub describe: Option<String>,
    /// The checked-out commit (40 hex digits).
    pub commit: Option<String>,
    /// Whether tracked files outside the inventory differ from the commit.
    pub modified: Option<bool>,
    /// The `origin` remote's URL, without any user or password part.
    pub origin: Option<String>,
    /// mac and size of the local modifications (`git diff HEAD`), when modified.
    pub changes: Option<(String, u64)>,
}

fn field(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn one_word(s: &str) -> bool {
    !s.is_empty() && s != "-" && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Why a `kubespray` record does not parse.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("does not start with {HEADER:?}")]
    Header,
    #[error("line {0}: not `key value`")]
    NotKeyValue(usize),
    #[error("line {line}: {key} repeated")]
    Repeated { line: usize, key: String },
    #[error("no {0} line")]
    Missing(&'static str),
    #[error("{0} must not be '-'")]
    Empty(&'static str),
    #[error(transparent)]
    Path(#[from] crate::paths::PathError),
    #[error("commit {0:?} is not 40 hex digits")]
    Commit(String),
    #[error("{0} must be one word")]
    NotOneWord(&'static str),
    #[error("modified {0:?} is not yes, no or -")]
    Modified(String),
    #[error("changes needs `MAC SIZE`")]
    ChangesForm,
    #[error("changes: the mac is not 64 hex digits")]
    ChangesMac,
    #[error("changes: size {0:?} is not a number")]
    ChangesSize(String),
    #[error("not in canonical form (order of lines, spacing)")]
    NotCanonical,
}

impl KubesprayRecord {
    /// Serializes canonically: `key value` lines in a fixed order.
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        out.push_str(&format!("dir {}\n", self.dir));
        out.push_str(&format!("inventory {}\n", self.inventory));
        out.push_str(&format!("ansible-cfg {}\n", field(&self.ansible_cfg)));
        out.push_str(&format!("describe {}\n", field(&self.describe)));
        out.push_str(&format!("commit {}\n", field(&self.commit)));
        let modified = match self.modified {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        out.push_str(&format!("modified {modified}\n"));
        out.push_str(&format!("origin {}\n", field(&self.origin)));
        match &self.changes {
            Some((mac, size)) => out.push_str(&format!("changes {mac} {size}\n")),
            None => out.push_str("changes -\n"),
        }
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<KubesprayRecord, RecordError> {
        let text = std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8)?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(RecordError::Header);
        }
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        for (i, line) in lines.enumerate() {
            let (k, v) = line
                .split_once(' ')
                .ok_or(RecordError::NotKeyValue(i + 2))?;
            if values.insert(k, v).is_some() {
                return Err(RecordError::Repeated {
                    line: i + 2,
                    key: k.to_string(),
                });
            }
        }
        let get = |k: &'static str| -> Result<Option<String>, RecordError> {
            match values.get(k) {
                None => Err(RecordError::Missing(k)),
                Some(&"-") => Ok(None),
                Some(v) => Ok(Some(v.to_string())),
            }
        };
        let need = |k: &'static str| get(k)?.ok_or(RecordError::Empty(k));
        let dir = need("dir")?;
        let inventory = need("inventory")?;
        crate::paths::check_path(&inventory)?;
        let commit = get("commit")?;
        if let Some(c) = &commit {
            if c.len() != 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RecordError::Commit(c.clone()));
            }
        }
        let describe = get("describe")?;
        if describe.as_deref().is_some_and(|d| !one_word(d)) {
            return Err(RecordError::NotOneWord("describe"));
        }
        let modified = match get("modified")?.as_deref() {
            None => None,
            Some("yes") => Some(true),
            Some("no") => Some(false),
            Some(o) => return Err(RecordError::Modified(o.to_string())),
        };
        let changes = match get("changes")? {
            None => None,
            Some(v) => {
                let (mac, size) = v.split_once(' ').ok_or(RecordError::ChangesForm)?;
                if mac.len() != 64 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(RecordError::ChangesMac);
                }
                let size = size
                    .parse()
                    .map_err(|_| RecordError::ChangesSize(size.to_string()))?;
                Some((mac.to_string(), size))
            }
        };
        let origin = get("origin")?;
        if origin.as_deref().is_some_and(|o| !one_word(o)) {
            return Err(RecordError::NotOneWord("origin"));
        }
        let r = KubesprayRecord {
            dir,
            inventory,
            ansible_cfg: get("ansible-cfg")?,
            describe,
            commit,
            modified,
            origin,
            changes,
        };
        if r.to_text().as_bytes() != bytes {
            return Err(RecordError::NotCanonical);
        }
        Ok(r)
    }

    /// `v2.24.0 (commit 0123456789, unmodified)`, for people.
    pub fn version(&self) -> String {
        let commit = self
            .commit
            .as_deref()
            .map(|c| format!("commit {}", &c[..10]))
            .unwrap_or_else(|| "not a git checkout".into());
        let state = match self.modified {
            Some(true) => ", with local changes",
            Some(false) => ", unmodified",
            None => "",
        };
        format!(
            "{} ({commit}{state})",
            self.describe.as_deref().unwrap_or("no tag")
        )
    }
}

/// The control host's state in one backup.
#[derive(Clone, Debug)]
pub struct ControlState {
    /// The id of the `control` tree.
    pub tree: Oid,
    pub manifest: Manifest,
    pub record: KubesprayRecord,
    /// Content blob of each file entry, keyed by control-relative path (`/ansible.cfg`).
    pub blobs: BTreeMap<String, Oid>,
    /// The blob of the local modifications, when recorded.
    pub changes: Option<Oid>,
}

/// What a backup commit gets for the control host. One value per run:
/// boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ControlWrite {
    /// Keep the parent's `control/` tree (or none).
    Carry,
    New {
        manifest: Manifest,
        blobs: BTreeMap<String, Oid>,
        record: KubesprayRecord,
        changes: Option<Oid>,
    },
}

impl Vault {
    /// The control host's state in `commit`, if it has one.
    pub fn control(&self, commit: Oid) -> Result<Option<ControlState>, VaultError> {
        let rev = commit.to_string()[..10].to_string();
        let damaged = |what: String| VaultError::Damaged {
            rev: rev.clone(),
            what: format!("control/: {what}"),
        };
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let root = self.git("reading a tree", c.tree())?;
        let Some(entry) = root.get_name(DIR) else {
            return Ok(None);
        };
        let tree = self.git("reading control/", self.repo.find_tree(entry.id()))?;
        let blob = |name: &str| -> Result<Vec<u8>, VaultError> {
            let e = tree
                .get_name(name)
                .ok_or_else(|| damaged(format!("no {name}")))?;
            Ok(self
                .git("reading control/", self.repo.find_blob(e.id()))?
                .content()
                .to_vec())
        };
        let manifest =
            Manifest::parse(&blob("manifest")?).map_err(|source| VaultError::Manifest {
                node: "control host".into(),
                rev: rev.clone(),
                error: source,
            })?;
        let record =
            KubesprayRecord::parse(&blob("kubespray")?).map_err(|e| damaged(e.to_string()))?;
        let mut blobs = BTreeMap::new();
        if let Some(files) = tree.get_name("files") {
            for (rel, oid) in self.git("reading control/", blobs_below(&self.repo, files.id()))? {
                blobs.insert(format!("/{rel}"), oid);
            }
        }
        if let Some(e) = manifest.files().find(|e| !blobs.contains_key(&e.path)) {
            return Err(damaged(format!("file {} has no content blob", e.path)));
        }
        let changes = tree.get_name("changes").map(|e| e.id());
        if record.changes.is_some() != changes.is_some() {
            return Err(damaged(
                "the kubespray record and the changes blob disagree".into(),
            ));
        }
        Ok(Some(ControlState {
            tree: entry.id(),
            manifest,
            record,
            blobs,
            changes,
        }))
    }

    /// Decrypts the control host's file `path` (control-relative) of `commit`.
    pub fn decrypt_control(
        &self,
        state: &ControlState,
        commit: Oid,
        path: &str,
        identity: &super::crypto::Identity,
    ) -> Result<Vec<u8>, VaultError> {
        let rev = commit.to_string()[..10].to_string();
        let oid = state.blobs.get(path).ok_or_else(|| VaultError::Damaged {
            rev: rev.clone(),
            what: format!("control host: no content for {path}"),
        })?;
        let cipher = self.read_blob(*oid)?;
        let plain = identity.decrypt(
            &cipher,
            &format!("{path} of the control host in backup {rev}"),
        )?;
        let tampered = |why: String| VaultError::Tampered {
            rev: rev.clone(),
            node: "control host".into(),
            path: path.to_string(),
            why,
        };
        let entry = state
            .manifest
            .entries
            .get(path)
            .ok_or_else(|| tampered("the manifest has no entry for it".into()))?;
        let key = self.content_key_of(commit, self.mac_key_blob(commit)?, identity)?;
        let mac = entry.mac.as_deref().unwrap_or_default();
        super::check_content(&key, (mac, entry.size), &plain)
            .map_err(|why| tampered(why.to_string()))?;
        Ok(plain)
    }

    /// Decrypts the recorded local modifications of the kubespray checkout.
    pub fn decrypt_changes(
        &self,
        state: &ControlState,
        commit: Oid,
        identity: &super::crypto::Identity,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let rev = commit.to_string()[..10].to_string();
        match state.changes {
            None => Ok(None),
            Some(oid) => {
                let plain = identity.decrypt(
                    &self.read_blob(oid)?,
                    &format!("the kubespray changes in backup {rev}"),
                )?;
                let (mac, size) = state.record.changes.clone().unwrap_or_default();
                let key = self.content_key_of(commit, self.mac_key_blob(commit)?, identity)?;
                super::check_content(&key, (&mac, size), &plain).map_err(|why| {
                    VaultError::Tampered {
                        rev,
                        node: "control host".into(),
                        path: "the kubespray changes".into(),
                        why: why.to_string(),
                    }
                })?;
                Ok(Some(plain))
            }
        }
    }

    /// Adds the control host's entries to a commit being built.
    pub(super) fn control_spec(
        &self,
        spec: &mut TreeSpec,
        parent_tree: &git2::Tree,
        control: ControlWrite,
    ) -> Result<(), VaultError> {
        match control {
            ControlWrite::Carry => {
                if let Some(e) = parent_tree.get_name(DIR) {
                    spec.tree(DIR, e.id());
                }
            }
            ControlWrite::New {
                manifest,
                blobs,
                record,
                changes,
            } => {
                spec.blob(
                    &format!("{DIR}/manifest"),
                    self.write_blob(
                        manifest
                            .to_checked_text()
                            .map_err(|error| VaultError::Manifest {
                                node: "control".into(),
                                rev: "the commit being written".into(),
                                error,
                            })?
                            .as_bytes(),
                    )?,
                );
                spec.blob(
                    &format!("{DIR}/kubespray"),
                    self.write_blob(record.to_text().as_bytes())?,
                );
                if let Some(oid) = changes {
                    spec.blob(&format!("{DIR}/changes"), oid);
                }
                for (path, oid) in blobs {
                    spec.blob(&format!("{DIR}/files{path}"), oid);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KubesprayRecord {
        KubesprayRecord {
            dir: "/home/ops/kubespray".into(),
            inventory: "/inventory/mycluster".into(),
            ansible_cfg: Some("/home/ops/kubespray/ansible.cfg".into()),
            describe: Some("v2.24.0".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            modified: Some(true),
            origin: Some("https://github.com/kubernetes-sigs/kubespray.git".into()),
            changes: Some(("ab".repeat(32), 812)),
        }
    }

    #[test]
    fn record_round_trip() {
        let r = sample();
        assert_eq!(KubesprayRecord::parse(r.to_text().as_bytes()).unwrap(), r);
        let none = KubesprayRecord {
            dir: "/k".into(),
            inventory: "/inventory/x/hosts.yaml".into(),
            ..Default::default()
        };
        assert_eq!(
            KubesprayRecord::parse(none.to_text().as_bytes()).unwrap(),
            none
        );
        assert_eq!(
            r.version(),
            "v2.24.0 (commit 0123456789, with local changes)"
        );
    }

    #[test]
    fn record_rejects_damage() {
        let t = sample().to_text();
        for bad in [
            t.replace(HEADER, "sprayvault-kubespray 2"),
            t.replace("modified yes", "modified maybe"),
            t.replace("commit 0123", "commit zz23"),
            t.replace("inventory /inventory/mycluster", "inventory ../x"),
            t.replace("origin ", "origin  "),
            t.replace("dir /home/ops/kubespray\n", ""),
        ] {
            assert!(KubesprayRecord::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
