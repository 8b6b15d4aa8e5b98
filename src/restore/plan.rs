//! Comparing a backup of a node with the machine it is to be restored onto.

use super::RestoreError;
use crate::source::accounts::Accounts;
use crate::source::Remote;
use crate::vault::crypto::Identity;
use crate::vault::manifest::{Entry, Kind};
use crate::vault::{Backup, Vault};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Absent on the target: will be created.
    Create,
    /// Present with different content or type: will be replaced (needs --force).
    Replace,
    /// Same content, different mode, owner or time: metadata will be set.
    Update,
    /// Identical: left alone.
    Leave,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Update => "update",
            Action::Leave => "leave",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanItem {
    pub path: String,
    pub kind: &'static str,
    pub action: Action,
    /// Mode and owner the entry will get, e.g. `0600 etcd:root`.
    pub want: String,
    /// Why the action was chosen, when not obvious.
    pub detail: Option<String>,
}

#[derive(Serialize)]
pub struct Plan {
    pub node: String,
    pub commit: String,
    pub backup_time: i64,
    pub target: String,
    pub target_hostname: String,
    pub items: Vec<PlanItem>,
    /// Set when the target's hostname is not the node's name.
    pub hostname_mismatch: bool,
    #[serde(skip)]
    pub(super) entries: Vec<Entry>,
    #[serde(skip)]
    pub(super) contents: BTreeMap<String, Vec<u8>>,
}

impl Plan {
    /// Leaves `path` out of the plan (a caller that writes it itself).
    pub fn skip(&mut self, path: &str) {
        if let Some(i) = self.entries.iter().position(|e| e.path == path) {
            self.entries.remove(i);
            self.items.remove(i);
        }
        self.contents.remove(path);
    }

    /// What the backup recorded for `path`, with its content for a file.
    pub fn recorded(&self, path: &str) -> Option<(&Entry, Option<&[u8]>)> {
        let e = self.entries.iter().find(|e| e.path == path)?;
        Some((e, self.contents.get(path).map(Vec::as_slice)))
    }

    pub fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }

    /// Reasons the plan needs `--force`.
    pub fn conflicts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.hostname_mismatch {
            out.push(format!(
                "the target's hostname is {:?}, not {:?}",
                self.target_hostname, self.node
            ));
        }
        let replaced = self.count(Action::Replace);
        if replaced > 0 {
            out.push(format!(
                "{replaced} existing entries differ from the backup and would be replaced"
            ));
        }
        out
    }
}

/// The uid and gid an entry gets on a machine with `accounts`: by name when
/// the name exists there, else the recorded id.
pub fn owner_ids(e: &Entry, accounts: &Accounts) -> (u32, u32) {
    let uid = e
        .owner
        .as_deref()
        .and_then(|n| accounts.uid(n))
        .unwrap_or(e.uid);
    let gid = e
        .group
        .as_deref()
        .and_then(|n| accounts.gid(n))
        .unwrap_or(e.gid);
    (uid, gid)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Decrypts the node's files from `backup` and compares every entry with the target.
pub async fn make_plan(
    vault: &Vault,
    backup: &Backup,
    node: &str,
    identity: &Identity,
    remote: &Remote,
) -> Result<Plan, RestoreError> {
    let state = backup.node(node)?;
    let mut contents = BTreeMap::new();
    for e in state.manifest.files() {
        contents.insert(
            e.path.clone(),
            vault.decrypt_file(backup, node, &e.path, identity)?,
        );
    }
    let hostname = remote.hostname().await?;
    let short = |s: &str| s.split('.').next().unwrap_or("").to_ascii_lowercase();
    let mut items = Vec::new();
    for e in state.manifest.entries.values() {
        let (uid, gid) = owner_ids(e, &remote.accounts);
        let who = |id: u32, name: &Option<String>| name.clone().unwrap_or_else(|| id.to_string());
        let want = format!(
            "{:04o} {}:{}",
            e.mode,
            who(uid, &e.owner),
            who(gid, &e.group)
        );
        let (action, detail) = match remote.lstat(&e.path).await? {
            None => (Action::Create, None),
            Some(m) if m.kind != Some(e.kind) => (
                Action::Replace,
                Some(format!(
                    "is a {} on the target",
                    m.kind.map(|k| k.word()).unwrap_or("special file")
                )),
            ),
            Some(m) => {
                let same_meta =
                    e.kind == Kind::Symlink || (m.mode == e.mode && m.uid == uid && m.gid == gid);
                match e.kind {
                    Kind::File => {
                        let now = remote.read(&e.path).await?;
                        if sha256(&now) != sha256(&contents[&e.path]) {
                            (Action::Replace, Some("content differs".to_string()))
                        } else if same_meta {
                            (Action::Leave, None)
                        } else {
                            (
                                Action::Update,
                                Some(format!(
                                    "is {:04o} {}:{} on the target",
                                    m.mode, m.uid, m.gid
                                )),
                            )
                        }
                    }
                    Kind::Symlink => {
                        let t = remote.read_link(&e.path).await?;
                        if Some(&t) == e.target.as_ref() {
                            (Action::Leave, None)
                        } else {
                            (
                                Action::Replace,
                                Some(format!("points to {t:?} on the target")),
                            )
                        }
                    }
                    Kind::Dir if same_meta => (Action::Leave, None),
                    Kind::Dir => (
                        Action::Update,
                        Some(format!(
                            "is {:04o} {}:{} on the target",
                            m.mode, m.uid, m.gid
                        )),
                    ),
                }
            }
        };
        items.push(PlanItem {
            path: e.path.clone(),
            kind: e.kind.word(),
            action,
            want,
            detail,
        });
    }
    Ok(Plan {
        node: node.to_string(),
        commit: backup.commit.to_string(),
        backup_time: backup.time,
        target: remote.target.display(),
        hostname_mismatch: short(&hostname) != short(node),
        target_hostname: hostname,
        items,
        entries: state.manifest.entries.values().cloned().collect(),
        contents,
    })
}
