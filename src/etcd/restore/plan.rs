//! The plan of an etcd restore: which snapshot, which backup's `etcd.env`
//! copies give each member's name and URLs, what each member has now, and
//! every reason not to go ahead. Reads only.

use super::tool::{too_old, ToolInfo, PROBE};
use super::{Commands, EtcdRestoreError};
use crate::etcd::capture::etcdctl;
use crate::etcd::env::{parse_cluster, AdminCert, EtcdEnv};
use crate::etcd::flags;
use crate::etcd::store::{StoredSnapshot, PREFIX};
use crate::source::remote::shell_quote;
use crate::source::remote::SMALL_FILE_LIMIT;
use crate::source::Remote;
use crate::vault::crypto::Identity;
use crate::vault::trust::{Authentic, TrustedVault};
use crate::vault::Backup;
use crate::vault::Vault;
use git2::Oid;
use serde::Serialize;

const ENV_PATH: &str = "/etc/etcd.env";

/// What happens on one member.
#[derive(Clone, Debug, Serialize)]
pub struct MemberPlan {
    pub node: String,
    /// `user@address:port`.
    pub target: String,
    /// `ETCD_NAME`.
    pub member: String,
    /// `ETCD_INITIAL_ADVERTISE_PEER_URLS`.
    pub peer_urls: String,
    /// The first of `ETCD_ADVERTISE_CLIENT_URLS`, for health checks.
    pub client_url: String,
    /// The admin certificate health checks use (from the member's etcd.env).
    pub admin: AdminCert,
    /// `ETCD_DATA_DIR`.
    pub data_dir: String,
    /// `DATA/member` exists on the node now.
    pub has_data: bool,
    /// The member answered `endpoint health` while planning.
    pub answering: bool,
    /// Where the current `DATA/member` is moved, if there is one then.
    pub aside: String,
    /// Where the snapshot is restored before it is moved into place.
    pub restore_dir: String,
    /// The snapshot file streamed to the node (removed at the end), alone in
    /// a root-only directory of a random name made for it.
    pub upload: String,
    /// `etcdutl` (etcd 3.5 and later) or `etcdctl` (3.4) restores it; its
    /// version, and whether the restore bumps the revision.
    pub tool: ToolInfo,
}

/// A whole etcd restore, before anything is changed.
#[derive(Clone, Debug, Serialize)]
pub struct RestorePlan {
    pub snapshot: String,
    pub snapshot_commit: String,
    pub revision: u64,
    pub keys: u64,
    pub size: u64,
    pub taken: i64,
    /// The etcd version the snapshot was served by, where it was recorded.
    pub etcd: Option<String>,
    /// The backup whose copies of `/etc/etcd.env` give names and URLs.
    pub backup: String,
    pub backup_time: i64,
    /// `ETCD_INITIAL_CLUSTER` as every member's copy has it.
    pub initial_cluster: String,
    pub cluster_token: Option<String>,
    pub commands: Commands,
    pub members: Vec<MemberPlan>,
    /// Why the plan must not be carried out; empty when it may.
    pub problems: Vec<String>,
    /// Worth reading before saying yes.
    pub warnings: Vec<String>,
}

/// The backup whose `etcd.env` copies go with `snap`: the one that took
/// it, else the first after it, else the newest.
fn env_backup(vault: &TrustedVault<'_>, snap: &StoredSnapshot) -> Result<Oid, EtcdRestoreError> {
    let full = format!("{PREFIX}{}", snap.name);
    let mut first_after: Option<Oid> = None;
    let mut newest: Option<Oid> = None;
    for commit in vault.history()? {
        let vault = vault.vault();
        let (time, record) = vault.commit_info(commit)?;
        newest.get_or_insert(commit);
        let took = record
            .etcd
            .as_ref()
            .and_then(|e| e.reference())
            .is_some_and(|r| r == full);
        if took {
            return Ok(commit);
        }
        if time >= snap.index.taken {
            first_after = Some(commit);
        }
    }
    first_after.or(newest).ok_or_else(|| {
        EtcdRestoreError::Refused(
            "the vault holds no backup, so no member's /etc/etcd.env; run `sprayvault backup` first".into(),
        )
    })
}

/// What the vault's copy of one member's `etcd.env` says.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub env: EtcdEnv,
    pub member: String,
    pub peer_urls: String,
}

/// What a backup holds for a host of the etcd group.
pub enum InBackup {
    /// The backup has no state for the node.
    NoNode,
    /// The node's state has no `/etc/etcd.env`.
    NoEnv,
    /// The text of its `/etc/etcd.env`.
    Env(String),
}

fn in_backup(
    vault: &Vault,
    backup: &Backup,
    node: &str,
    identity: &Identity,
) -> Result<InBackup, EtcdRestoreError> {
    let Some(state) = backup.nodes.get(node) else {
        return Ok(InBackup::NoNode);
    };
    if !state.blobs.contains_key(ENV_PATH) {
        return Ok(InBackup::NoEnv);
    }
    let text = vault.decrypt_file(backup, node, ENV_PATH, identity)?;
    Ok(InBackup::Env(String::from_utf8_lossy(&text).into_owned()))
}

/// Why the vault's copy of a member's `etcd.env` cannot be used: a
/// problem of the plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotRecorded {
    #[error("node {node} is in the inventory's etcd group but backup {backup} has no state for it; give --at a snapshot taken when it was backed up, or take it out of the etcd group")]
    NoNode { node: String, backup: String },
    #[error("node {node} is in the inventory's etcd group but backup {backup} holds no {ENV_PATH} for it; was it an etcd member then?")]
    NoEnv { node: String, backup: String },
    #[error("node {node}: {ENV_PATH} in backup {backup} has no {}; it cannot be restored as an etcd member", .missing.join(", "))]
    Missing {
        node: String,
        backup: String,
        missing: Vec<&'static str>,
    },
}

/// The vault's copy of a member's `etcd.env`, or why it cannot be used.
pub fn recorded(node: &str, short: &str, held: &InBackup) -> Result<Recorded, NotRecorded> {
    let (n, backup) = (node.to_string(), short.to_string());
    let text = match held {
        InBackup::NoNode => return Err(NotRecorded::NoNode { node: n, backup }),
        InBackup::NoEnv => return Err(NotRecorded::NoEnv { node: n, backup }),
        InBackup::Env(t) => t,
    };
    let env = EtcdEnv::parse(text);
    let mut missing = Vec::new();
    for key in [
        "ETCD_NAME",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        "ETCD_INITIAL_CLUSTER",
        "ETCD_ADVERTISE_CLIENT_URLS",
    ] {
        if env.get(key).is_none() {
            missing.push(key);
        }
    }
    if !missing.is_empty() {
        return Err(NotRecorded::Missing {
            node: n,
            backup,
            missing,
        });
    }
    Ok(Recorded {
        member: env.get("ETCD_NAME").unwrap_or_default().to_string(),
        peer_urls: env
            .get("ETCD_INITIAL_ADVERTISE_PEER_URLS")
            .unwrap_or_default()
            .to_string(),
        env,
    })
}

/// What a member has now, read over its connection.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub live_env: Option<EtcdEnv>,
    pub admin: Option<AdminCert>,
    pub admin_cert: bool,
    pub tool: ToolInfo,
    pub has_data: bool,
    pub data_avail_kib: Option<u64>,
    pub tmp_avail_kib: Option<u64>,
    pub answering: bool,
    /// The member's `etcd` (version and flags), for the check of the
    /// `etcd.env` it will start on.
    pub binary: Option<crate::etcd::flags::Binary>,
}

async fn probe(remote: &Remote, rec: &Recorded) -> Result<Found, EtcdRestoreError> {
    let node = &remote.target.node;
    let mut f = Found::default();
    if remote.lstat(ENV_PATH).await?.is_some() {
        let text = remote.read(ENV_PATH, SMALL_FILE_LIMIT).await?;
        f.live_env = Some(EtcdEnv::parse(&String::from_utf8_lossy(&text)));
    }
    // The certificate paths of the member's own etcd.env (kubespray's
    // etcd_cert_dir can move them), else of the vault's copy.
    let admin = f.live_env.as_ref().unwrap_or(&rec.env).admin(node);
    f.admin_cert =
        remote.lstat(&admin.key).await?.is_some() && remote.lstat(&admin.cert).await?.is_some();
    f.admin = Some(admin);
    let data = shell_quote(rec.env.data_dir());
    let facts = remote
        .run_privileged(
            &format!(
                "{PROBE}; \
                 if [ -e {data}/member ]; then echo member yes; fi; \
                 if [ -d {data} ]; then p={data}; else p=$(dirname {data}); fi; \
                 echo dataavail $(df -Pk \"$p\" 2>/dev/null | awk 'NR==2 {{print $4}}'); \
                 echo tmpavail $(df -Pk /var/tmp 2>/dev/null | awk 'NR==2 {{print $4}}')"
            ),
            "looking at etcd's data directory",
        )
        .await?;
    f.tool = ToolInfo::parse(&facts);
    f.binary = remote
        .run_privileged(flags::PROBE, "reading etcd's version and flags")
        .await
        .ok()
        .map(|t| flags::Binary::parse(&t));
    for line in facts.lines() {
        match line.split_once(' ') {
            Some(("member", _)) => f.has_data = true,
            Some(("dataavail", n)) => f.data_avail_kib = n.trim().parse().ok(),
            Some(("tmpavail", n)) => f.tmp_avail_kib = n.trim().parse().ok(),
            _ => {}
        }
    }
    if let (true, Some(admin)) = (f.admin_cert, &f.admin) {
        let url = rec
            .env
            .first_url("ETCD_ADVERTISE_CLIENT_URLS")
            .unwrap_or_default();
        f.answering = remote
            .run_privileged(
                &format!(
                    "{} --dial-timeout=3s --command-timeout=5s endpoint health >/dev/null 2>&1",
                    etcdctl(url, admin)
                ),
                "asking etcd for its health",
            )
            .await
            .is_ok();
    }
    Ok(f)
}

/// Builds the plan for restoring `snap` onto the members behind `remotes`
/// (every host of the inventory's etcd group). `force` accepts members
/// whose current `etcd.env` differs from the vault's copy.
pub async fn make_plan(
    trusted: &TrustedVault<'_>,
    snap: &Authentic<StoredSnapshot>,
    identity: &Identity,
    remotes: &[&Remote],
    commands: &Commands,
    force: bool,
    step: std::time::Duration,
) -> Result<RestorePlan, EtcdRestoreError> {
    check_group(remotes.len())?;
    let vault = trusted.vault();
    let backup = trusted.backup_at(env_backup(trusted, snap)?)?;
    let short = backup.short_id();
    let mut records = Vec::new();
    let mut early = Vec::new();
    for r in remotes {
        let held = in_backup(vault, &backup, &r.target.node, identity)?;
        match recorded(&r.target.node, &short, &held) {
            Ok(rec) => records.push((r, rec)),
            Err(why) => early.push(why.to_string()),
        }
    }
    // A member that stops answering is cut off at the step deadline.
    let found = futures_util::future::join_all(records.iter().map(|(r, rec)| async move {
        match tokio::time::timeout(step, probe(r, rec)).await {
            Ok(f) => f,
            Err(_) => Err(EtcdRestoreError::ProbeCutOff {
                node: r.target.node.clone(),
                limit: step,
            }),
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<Found>, EtcdRestoreError>>()?;
    let members = records
        .into_iter()
        .zip(found)
        .map(|((r, rec), f)| MemberInput {
            node: r.target.node.clone(),
            target: r.target.display(),
            recorded: rec,
            found: f,
            upload: format!(
                "/var/tmp/sprayvault-etcd-restore-{:032x}/snapshot.db",
                rand::random::<u128>()
            ),
        })
        .collect();
    Ok(decide(
        snap,
        (short, backup.time),
        early,
        members,
        commands,
        force,
        &crate::vault::stamp(time::OffsetDateTime::now_utc().unix_timestamp()),
    ))
}

/// An etcd restore restores every member of the inventory's etcd group
/// together: an empty group is refused before anything is read.
pub fn check_group(hosts: usize) -> Result<(), EtcdRestoreError> {
    if hosts == 0 {
        return Err(EtcdRestoreError::Refused(
            "the inventory's etcd group has no hosts; an etcd restore restores every member of it"
                .into(),
        ));
    }
    Ok(())
}

/// One host of the etcd group, as the plan sees it.
pub struct MemberInput {
    pub node: String,
    pub target: String,
    pub recorded: Recorded,
    pub found: Found,
    /// Where its snapshot will be uploaded (a fresh random name).
    pub upload: String,
}

/// The plan, decided from the snapshot, the backup (`(short id, time)`),
/// the problems already found with hosts the backup cannot restore
/// (`early`), and each member's record and state: no I/O. Every rule of an
/// etcd restore lives here; `now` names the directories it makes.
pub fn decide(
    snap: &StoredSnapshot,
    backup: (String, i64),
    early: Vec<String>,
    members_in: Vec<MemberInput>,
    commands: &Commands,
    force: bool,
    now: &str,
) -> RestorePlan {
    let (short, backup_time) = backup;
    let mut problems = early;
    let mut warnings = Vec::new();
    let mut members = Vec::new();
    for m in &members_in {
        let (node, rec, f) = (&m.node, &m.recorded, &m.found);
        let data_dir = rec.env.data_dir().trim_end_matches('/').to_string();
        if data_dir.is_empty() || !data_dir.starts_with('/') || data_dir.contains("/../") {
            problems.push(format!(
                "node {node}: ETCD_DATA_DIR {data_dir:?} in the vault's {ENV_PATH} is not an absolute path"
            ));
            continue;
        }
        let restore_again = format!("restore the node's state first (`sprayvault restore {node} --identity FILE -i INVENTORY`)");
        match &f.live_env {
            None => problems.push(format!(
                "node {node} has no {ENV_PATH}, so etcd cannot start there; {restore_again}"
            )),
            Some(live) => {
                for key in [
                    "ETCD_NAME",
                    "ETCD_INITIAL_ADVERTISE_PEER_URLS",
                    "ETCD_ADVERTISE_CLIENT_URLS",
                    "ETCD_DATA_DIR",
                ] {
                    if live.get(key) != rec.env.get(key) {
                        let why = format!(
                            "node {node}: {ENV_PATH} says {key}={}, backup {} says {}",
                            live.get(key).unwrap_or(""),
                            short,
                            rec.env.get(key).unwrap_or("")
                        );
                        if force {
                            warnings.push(format!("{why} (--force: the backup's is used)"));
                        } else {
                            problems.push(format!(
                                "{why}; {restore_again}, or give --force to restore with the backup's"
                            ));
                        }
                    }
                }
            }
        }
        // The member starts on its own etcd.env: will its etcd take it?
        if let (Some(live), Some(bin)) = (&f.live_env, &f.binary) {
            let v = flags::check(live, bin);
            if let Some(s) = flags::sentence(node, ENV_PATH, bin, &v) {
                match v {
                    flags::Verdict::Ignored(_) => warnings.push(s),
                    _ => problems.push(s),
                }
            }
        }
        let admin = f.admin.clone().unwrap_or_else(|| rec.env.admin(node));
        if !f.admin_cert {
            problems.push(format!(
                "node {node} has no admin certificate {} and key {} (ETCDCTL_CERT and ETCDCTL_KEY of its /etc/etcd.env, else kubespray's names) to check etcd's health with; {restore_again}",
                admin.cert, admin.key
            ));
        }
        // An older etcd does not start on a newer data directory, and 3.6
        // removed `etcdctl snapshot restore`.
        let member_version = f.binary.as_ref().and_then(|b| b.version.clone());
        if let (Some(from), Some(to)) = (&snap.index.etcd, &member_version) {
            if flags::minor_of(from)
                .zip(flags::minor_of(to))
                .is_some_and(|(a, b)| a > b)
            {
                problems.push(format!(
                    "node {node}: snapshot {} came from etcd {from} and node {node} runs etcd {to}; an older etcd does not start on a newer data directory: upgrade etcd on {node} to {from} or later first (kubespray's etcd_version), then run again",
                    snap.name
                ));
            }
        }
        if member_version
            .as_deref()
            .and_then(flags::minor_of)
            .is_some_and(|v| v >= (3, 6))
            && f.tool.tool != "etcdutl"
        {
            problems.push(format!(
                "node {node} runs etcd {} but has no etcdutl; etcd 3.6 removed `etcdctl snapshot restore`: install etcdutl beside etcd (kubespray puts it in /usr/local/bin)",
                member_version.as_deref().unwrap_or_default()
            ));
        }
        let tool = f.tool.clone();
        if tool.tool.is_empty() {
            problems.push(format!(
                "node {node} has neither etcdutl nor etcdctl on its PATH; install etcd's client tools there (kubespray puts them in /usr/local/bin)"
            ));
        }

        let kib = snap.index.size.div_ceil(1024);
        match f.data_avail_kib {
            Some(a) if a >= kib => {}
            Some(a) => problems.push(format!(
                "node {node}: the file system of {data_dir} has {a} KiB free, the restored database needs {kib} KiB"
            )),
            None => problems.push(format!(
                "node {node}: cannot tell the free space for {data_dir} (does its parent directory exist?)"
            )),
        }
        match f.tmp_avail_kib {
            Some(a) if a >= kib => {}
            Some(a) => problems.push(format!(
                "node {node}: /var/tmp has {a} KiB free, the snapshot needs {kib} KiB"
            )),
            None => problems.push(format!(
                "node {node}: cannot tell the free space in /var/tmp"
            )),
        }
        let aside = format!("{data_dir}/.sprayvault-before-{now}");
        if f.answering {
            warnings.push(format!(
                "etcd on {node} answers now: the restore replaces its data with the snapshot's, and whatever was written since is no longer served (it stays in {aside})"
            ));
        }
        members.push(MemberPlan {
            node: node.clone(),
            target: m.target.clone(),
            member: rec.member.clone(),
            peer_urls: rec.peer_urls.clone(),
            client_url: rec
                .env
                .first_url("ETCD_ADVERTISE_CLIENT_URLS")
                .unwrap_or_default()
                .to_string(),
            admin,
            aside,
            restore_dir: format!("{data_dir}/.sprayvault-restore-{now}"),
            upload: m.upload.clone(),
            has_data: f.has_data,
            answering: f.answering,
            data_dir,
            tool,
        });
    }

    warnings.extend(too_old(
        &members
            .iter()
            .map(|m| (m.node.as_str(), &m.tool))
            .collect::<Vec<_>>(),
    ));

    // Every member's copy must name the same cluster, and that cluster must
    // be exactly these members.
    let mut initial_cluster = String::new();
    let mut cluster_token = None;
    if let Some(first) = members_in.first().map(|m| &m.recorded) {
        initial_cluster = first
            .env
            .get("ETCD_INITIAL_CLUSTER")
            .unwrap_or_default()
            .to_string();
        cluster_token = first
            .env
            .get("ETCD_INITIAL_CLUSTER_TOKEN")
            .map(str::to_string);
        let want = parse_cluster(&initial_cluster);
        for m in &members_in {
            let theirs = m
                .recorded
                .env
                .get("ETCD_INITIAL_CLUSTER")
                .unwrap_or_default();
            if parse_cluster(theirs) != want {
                problems.push(format!(
                    "the members' ETCD_INITIAL_CLUSTER differ in backup {short}: {} has {theirs:?}, {} has {initial_cluster:?}; fix the inventory's etcd group or restore from another snapshot",
                    m.node,
                    members_in[0].node
                ));
            }
        }
        if members_in
            .iter()
            .any(|m| m.recorded.env.get("ETCD_INITIAL_CLUSTER_TOKEN") != cluster_token.as_deref())
        {
            problems.push(format!(
                "the members' ETCD_INITIAL_CLUSTER_TOKEN differ in backup {short}"
            ));
        }
        match want {
            None => problems.push(format!(
                "ETCD_INITIAL_CLUSTER {initial_cluster:?} in backup {short} is not a list of name=URL"
            )),
            Some(want) => {
                let mut have: Vec<(String, String)> = Vec::new();
                for m in &members_in {
                    let rec = &m.recorded;
                    for url in rec
                        .peer_urls
                        .split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                    {
                        let pair = (rec.member.clone(), url.to_string());
                        if !want.contains(&pair) {
                            problems.push(format!(
                                "node {} ({}={}) is not in ETCD_INITIAL_CLUSTER {initial_cluster:?}; check the inventory's etcd group",
                                m.node, pair.0, pair.1
                            ));
                        }
                        have.push(pair);
                    }
                }
                for (name, url) in &want {
                    if !have.iter().any(|(n, u)| n == name && u == url) {
                        problems.push(format!(
                            "etcd member {name} ({url}) is in ETCD_INITIAL_CLUSTER but no host of the inventory's etcd group is it; every member must be restored together: add its host to the etcd group"
                        ));
                    }
                }
                let mut names: Vec<&str> =
                    members_in.iter().map(|m| m.recorded.member.as_str()).collect();
                names.sort();
                if names.windows(2).any(|w| w[0] == w[1]) {
                    problems.push(
                        "two hosts of the inventory's etcd group have the same ETCD_NAME".into(),
                    );
                }
            }
        }
    }
    RestorePlan {
        snapshot: snap.name.clone(),
        snapshot_commit: snap.commit.clone(),
        revision: snap.index.revision,
        keys: snap.index.keys,
        size: snap.index.size,
        taken: snap.index.taken,
        etcd: snap.index.etcd.clone(),
        backup: short,
        backup_time,
        initial_cluster,
        cluster_token,
        commands: commands.clone(),
        members,
        problems,
        warnings,
    }
}
