//! Comparing a backup of a node with the machine it is to be restored onto.
//!
//! Owners are mapped by name ([`decide_owner`]): kubespray's accounts get
//! other ids on every machine. A name the target lacks gets root, never the
//! recorded id, which there may be another account's; `--numeric-ids` asks
//! for the recorded id instead. The plan shows the owner really applied, and
//! the executor applies that same decision.

use super::RestoreError;
use crate::source::accounts::Accounts;
use crate::source::{Meta, NodeFs};
use crate::vault::crypto::Identity;
use crate::vault::manifest::{Entry, Kind};
use crate::vault::trust::Authentic;
use crate::vault::{Backup, Vault};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

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
    /// Mode and owner the entry will really get, e.g. `0600 etcd:root`
    /// (`root` where the target lacks a recorded name, see [`decide_owner`]).
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
    /// The recorded entries with their owners resolved for the target by
    /// [`resolve_owner`]: what [`owner_ids`] gives for them in the executor
    /// is the owner the plan shows.
    #[serde(skip)]
    pub(super) entries: Vec<Entry>,
    /// Decrypted contents, wiped when the plan is dropped.
    #[serde(skip)]
    pub(super) contents: BTreeMap<String, Zeroizing<Vec<u8>>>,
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

    /// What the backup recorded for `path` (its owner resolved for the
    /// target), with its content for a file.
    pub fn recorded(&self, path: &str) -> Option<(&Entry, Option<&[u8]>)> {
        let e = self.entries.iter().find(|e| e.path == path)?;
        Some((e, self.contents.get(path).map(|c| c.as_slice())))
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
/// the name exists there, else the recorded id. On the entries of a [`Plan`]
/// (resolved by [`resolve_owner`]) this is the owner [`decide_owner`] chose.
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

/// What a restore applies where a recorded owner or group name does not
/// exist on the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Owners {
    /// root (uid or gid 0).
    #[default]
    RootForMissing,
    /// The recorded id (`--numeric-ids`).
    NumericIds,
}

/// The owner a restore really applies to an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// As the plan shows it: `kube:kube-cert`, `root:root`, `998:996`.
    pub shown: String,
    /// Set when a recorded name does not exist on the target: which, and
    /// what is applied instead.
    pub note: Option<String>,
}

/// Decides the owner of `e` on a target with `accounts`: a recorded name
/// the target has gives its id there; one it lacks gives root, or with
/// [`Owners::NumericIds`] the recorded id; an owner recorded by id only
/// (the source had no name for it) keeps its id.
pub fn decide_owner(e: &Entry, accounts: &Accounts, owners: Owners) -> Owner {
    // (id applied, as shown, the missing name)
    let side = |name: Option<&str>, recorded: u32, found: Option<u32>| match (name, found) {
        (Some(n), Some(id)) => (id, n.to_string(), None),
        (Some(n), None) => match owners {
            Owners::RootForMissing => (0, "root".to_string(), Some(n.to_string())),
            Owners::NumericIds => (recorded, recorded.to_string(), Some(n.to_string())),
        },
        (None, _) => (recorded, recorded.to_string(), None),
    };
    let user = e.owner.as_deref();
    let group = e.group.as_deref();
    let (uid, user_shown, user_missing) = side(user, e.uid, user.and_then(|n| accounts.uid(n)));
    let (gid, group_shown, group_missing) = side(group, e.gid, group.and_then(|n| accounts.gid(n)));
    let missing: Vec<String> = [
        user_missing.as_ref().map(|n| format!("user {n}")),
        group_missing.as_ref().map(|n| format!("group {n}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let recorded: Vec<String> = [
        user_missing.is_some().then(|| format!("uid {}", e.uid)),
        group_missing.is_some().then(|| format!("gid {}", e.gid)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let note = (!missing.is_empty()).then(|| {
        let (missing, recorded) = (missing.join(" and "), recorded.join(", "));
        let verb = if missing.contains(" and ") { "are" } else { "is" };
        match owners {
            Owners::RootForMissing => format!(
                "{missing} {verb} not on the target: root applied until kubespray's next run sets the owner (--numeric-ids: the recorded {recorded})"
            ),
            Owners::NumericIds => format!(
                "{missing} {verb} not on the target: the recorded {recorded} applied (--numeric-ids)"
            ),
        }
    });
    Owner {
        uid,
        gid,
        shown: format!("{user_shown}:{group_shown}"),
        note,
    }
}

/// `e` as the executor is to apply it: a name kept only where the target
/// has it, the ids those of `owner`, so that [`owner_ids`] gives `owner`.
pub fn resolve_owner(e: &Entry, accounts: &Accounts, owner: &Owner) -> Entry {
    Entry {
        owner: e.owner.clone().filter(|n| accounts.uid(n).is_some()),
        group: e.group.clone().filter(|n| accounts.gid(n).is_some()),
        uid: owner.uid,
        gid: owner.gid,
        ..e.clone()
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// [`make_plan_with`] root for owner names the target lacks.
pub async fn make_plan<N: NodeFs>(
    vault: &Vault,
    backup: &Authentic<Backup>,
    node: &str,
    identity: &Identity,
    remote: &N,
) -> Result<Plan, RestoreError> {
    make_plan_with(vault, backup, node, identity, remote, Owners::default()).await
}

/// Decrypts the node's files from `backup`, looks at every recorded path on
/// the target ([`observe`]), and compares ([`decide`]), owners mapped as
/// `owners` says. Changes nothing.
pub async fn make_plan_with<N: NodeFs>(
    vault: &Vault,
    backup: &Authentic<Backup>,
    node: &str,
    identity: &Identity,
    remote: &N,
    owners: Owners,
) -> Result<Plan, RestoreError> {
    let state = backup.node(node)?;
    let mut contents = BTreeMap::new();
    for e in state.manifest.files() {
        contents.insert(
            e.path.clone(),
            Zeroizing::new(vault.decrypt_file(backup, node, &e.path, identity)?),
        );
    }
    let entries: Vec<Entry> = state.manifest.entries.values().cloned().collect();
    let observed = observe(remote, &entries).await?;
    let mut plan = decide(
        Recorded {
            node: node.to_string(),
            commit: backup.commit.to_string(),
            backup_time: backup.time,
            entries,
            contents,
        },
        remote.display(),
        &observed,
        remote.accounts(),
        owners,
    );
    note_etcd_flags(&mut plan, remote).await;
    Ok(plan)
}

/// When the plan writes `/etc/etcd.env` and the target has an etcd, says in
/// that item's note whether this etcd starts on it (see
/// [`crate::etcd::flags`]). A plain restore starts no etcd and kubespray's
/// etcd role writes the file again, so this is a note, not a refusal; a
/// target without etcd yet gets none.
async fn note_etcd_flags<N: NodeFs>(plan: &mut Plan, remote: &N) {
    use crate::etcd::{env::EtcdEnv, flags};
    const ENV: &str = "/etc/etcd.env";
    let Some(i) = plan
        .items
        .iter()
        .position(|i| i.path == ENV && i.action != Action::Leave)
    else {
        return;
    };
    let Some(text) = plan.contents.get(ENV) else {
        return;
    };
    let Ok(out) = remote
        .run_privileged(flags::PROBE, "reading etcd's version and flags")
        .await
    else {
        return;
    };
    let bin = flags::Binary::parse(&out);
    let v = flags::check(&EtcdEnv::parse(&String::from_utf8_lossy(text)), &bin);
    if v == flags::Verdict::NoEtcd {
        return;
    }
    if let Some(s) = flags::sentence(&plan.node, ENV, &bin, &v) {
        let item = &mut plan.items[i];
        item.detail = Some(match item.detail.take() {
            Some(d) => format!("{d}; {s}"),
            None => s,
        });
    }
}

/// What the target has at one recorded path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Absent,
    Present {
        meta: Meta,
        /// The content's SHA-256, for a file where the backup has a file.
        sha256: Option<[u8; 32]>,
        /// The target of a link where the backup has a link.
        link: Option<String>,
    },
}

/// The target as the plan needs it: its hostname and what is at each path.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub hostname: String,
    pub found: BTreeMap<String, Found>,
}

/// Looks at every recorded path on the target (lstat; a file's content is
/// read, and a link's target, only where the backup has the same kind).
pub async fn observe<N: NodeFs>(remote: &N, entries: &[Entry]) -> Result<Observed, RestoreError> {
    let mut found = BTreeMap::new();
    for e in entries {
        let f = match remote.lstat(&e.path).await? {
            None => Found::Absent,
            Some(m) => {
                let same = m.kind == Some(e.kind);
                // A file of another size differs without being read; one of
                // the recorded size is read no further than that size.
                let sha256 = if same && e.kind == Kind::File && m.size == e.size {
                    Some(sha256(&Zeroizing::new(remote.read(&e.path, e.size).await?)))
                } else {
                    None
                };
                let link = if same && e.kind == Kind::Symlink {
                    Some(remote.read_link(&e.path).await?)
                } else {
                    None
                };
                Found::Present {
                    meta: m,
                    sha256,
                    link,
                }
            }
        };
        found.insert(e.path.clone(), f);
    }
    Ok(Observed {
        hostname: remote.hostname().await?,
        found,
    })
}

/// What the backup recorded for the node, contents decrypted.
pub struct Recorded {
    pub node: String,
    pub commit: String,
    pub backup_time: i64,
    /// In path order.
    pub entries: Vec<Entry>,
    pub contents: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

/// The plan, decided from what the backup recorded and what the target
/// has: no I/O. Every rule of a restore's plan lives here.
pub fn decide(
    recorded: Recorded,
    target: String,
    observed: &Observed,
    accounts: &Accounts,
    owners: Owners,
) -> Plan {
    let short = |s: &str| s.split('.').next().unwrap_or("").to_ascii_lowercase();
    let mut items = Vec::new();
    let mut entries = Vec::new();
    for e in &recorded.entries {
        let owner = decide_owner(e, accounts, owners);
        let (uid, gid) = (owner.uid, owner.gid);
        let want = format!("{:04o} {}", e.mode, owner.shown);
        let (action, detail) = match observed.found.get(&e.path).unwrap_or(&Found::Absent) {
            Found::Absent => (Action::Create, None),
            Found::Present { meta: m, .. } if m.kind != Some(e.kind) => (
                Action::Replace,
                Some(format!(
                    "is a {} on the target",
                    m.kind.map(|k| k.word()).unwrap_or("special file")
                )),
            ),
            Found::Present {
                meta: m,
                sha256: hash,
                link,
            } => {
                let same_meta =
                    e.kind == Kind::Symlink || (m.mode == e.mode && m.uid == uid && m.gid == gid);
                let meta_differs = || {
                    (
                        Action::Update,
                        Some(format!(
                            "is {:04o} {}:{} on the target",
                            m.mode, m.uid, m.gid
                        )),
                    )
                };
                match e.kind {
                    Kind::File => {
                        let want_hash = recorded.contents.get(&e.path).map(|c| sha256(c));
                        if hash.is_none() || *hash != want_hash {
                            (Action::Replace, Some("content differs".to_string()))
                        } else if same_meta {
                            (Action::Leave, None)
                        } else {
                            meta_differs()
                        }
                    }
                    Kind::Symlink => {
                        if link.is_some() && link.as_ref() == e.target.as_ref() {
                            (Action::Leave, None)
                        } else {
                            (
                                Action::Replace,
                                Some(format!(
                                    "points to {:?} on the target",
                                    link.as_deref().unwrap_or("")
                                )),
                            )
                        }
                    }
                    Kind::Dir if same_meta => (Action::Leave, None),
                    Kind::Dir => meta_differs(),
                }
            }
        };
        // A symlink's owner is not restored: no note for it.
        let note = owner.note.as_ref().filter(|_| e.kind != Kind::Symlink);
        let detail = match (detail, note) {
            (Some(d), Some(n)) => Some(format!("{d}; {n}")),
            (d, n) => d.or_else(|| n.cloned()),
        };
        items.push(PlanItem {
            path: e.path.clone(),
            kind: e.kind.word(),
            action,
            want,
            detail,
        });
        entries.push(resolve_owner(e, accounts, &owner));
    }
    Plan {
        hostname_mismatch: short(&observed.hostname) != short(&recorded.node),
        target_hostname: observed.hostname.clone(),
        node: recorded.node,
        commit: recorded.commit,
        backup_time: recorded.backup_time,
        target,
        items,
        entries,
        contents: recorded.contents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::from_files(
            "root:x:0:0::/root:/bin/sh\nkube:x:20998:20998::/:/sbin/nologin\n",
            "root:x:0:\nkube-cert:x:20996:\n",
        )
    }

    fn file(owner: Option<&str>, uid: u32, group: Option<&str>, gid: u32) -> Entry {
        Entry {
            kind: Kind::File,
            mode: 0o640,
            uid,
            gid,
            owner: owner.map(str::to_string),
            group: group.map(str::to_string),
            size: 0,
            mtime: 0,
            mac: None,
            path: "/etc/kubernetes/ssl/ca.key".into(),
            target: None,
        }
    }

    /// What the executor applies for `e`: `owner_ids` of the resolved
    /// entry, as `apply` and `new_dir_meta` compute it.
    fn applied(e: &Entry, a: &Accounts, o: &Owner) -> (u32, u32) {
        owner_ids(&resolve_owner(e, a, o), a)
    }

    #[test]
    fn a_name_the_target_has_gets_its_id_there_in_both_modes() {
        let a = accounts();
        let e = file(Some("kube"), 998, Some("kube-cert"), 996);
        for mode in [Owners::RootForMissing, Owners::NumericIds] {
            let o = decide_owner(&e, &a, mode);
            assert_eq!((o.uid, o.gid), (20998, 20996));
            assert_eq!(o.shown, "kube:kube-cert");
            assert_eq!(o.note, None);
            assert_eq!(applied(&e, &a, &o), (20998, 20996));
        }
    }

    #[test]
    fn a_name_the_target_lacks_gets_root_and_a_note_naming_it() {
        let a = accounts();
        let e = file(Some("etcd"), 997, Some("kube-cert"), 996);
        let o = decide_owner(&e, &a, Owners::RootForMissing);
        assert_eq!((o.uid, o.gid), (0, 20996));
        assert_eq!(o.shown, "root:kube-cert");
        assert_eq!(
            o.note.as_deref(),
            Some("user etcd is not on the target: root applied until kubespray's next run sets the owner (--numeric-ids: the recorded uid 997)")
        );
        assert_eq!(applied(&e, &a, &o), (0, 20996));

        let e = file(Some("etcd"), 997, Some("etcd"), 995);
        let o = decide_owner(&e, &a, Owners::RootForMissing);
        assert_eq!((o.uid, o.gid, o.shown.as_str()), (0, 0, "root:root"));
        assert_eq!(
            o.note.as_deref(),
            Some("user etcd and group etcd are not on the target: root applied until kubespray's next run sets the owner (--numeric-ids: the recorded uid 997, gid 995)")
        );
        assert_eq!(applied(&e, &a, &o), (0, 0));
    }

    #[test]
    fn numeric_ids_apply_the_recorded_ids_where_the_name_is_missing() {
        let a = accounts();
        let e = file(Some("etcd"), 997, Some("etcd"), 995);
        let o = decide_owner(&e, &a, Owners::NumericIds);
        assert_eq!((o.uid, o.gid, o.shown.as_str()), (997, 995, "997:995"));
        assert_eq!(
            o.note.as_deref(),
            Some("user etcd and group etcd are not on the target: the recorded uid 997, gid 995 applied (--numeric-ids)")
        );
        assert_eq!(applied(&e, &a, &o), (997, 995));
    }

    #[test]
    fn an_owner_recorded_by_id_only_keeps_its_id() {
        let a = accounts();
        let e = file(None, 1234, None, 1234);
        for mode in [Owners::RootForMissing, Owners::NumericIds] {
            let o = decide_owner(&e, &a, mode);
            assert_eq!((o.uid, o.gid, o.shown.as_str()), (1234, 1234, "1234:1234"));
            assert_eq!(o.note, None);
            assert_eq!(applied(&e, &a, &o), (1234, 1234));
        }
    }

    #[test]
    fn directories_the_restore_creates_get_the_decided_owner() {
        let a = accounts();
        let mut d = file(Some("etcd"), 997, Some("root"), 0);
        d.kind = Kind::Dir;
        d.mode = 0o700;
        d.path = "/etc/ssl/etcd/ssl".into();
        let o = decide_owner(&d, &a, Owners::RootForMissing);
        let resolved = vec![resolve_owner(&d, &a, &o)];
        assert_eq!(
            super::super::apply::new_dir_meta(&resolved, "/etc/ssl/etcd/ssl", &a),
            (0o700, 0, 0)
        );
        let o = decide_owner(&d, &a, Owners::NumericIds);
        let resolved = vec![resolve_owner(&d, &a, &o)];
        assert_eq!(
            super::super::apply::new_dir_meta(&resolved, "/etc/ssl/etcd/ssl", &a),
            (0o700, 997, 0)
        );
    }
}
