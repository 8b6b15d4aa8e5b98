//! Carrying out an etcd restore plan on every member (see the module
//! documentation for the steps and what each failure leaves behind).

use super::plan::{MemberPlan, RestorePlan};
use super::EtcdRestoreError;
use crate::etcd::capture::etcdctl;
use crate::etcd::store::{self, StoredSnapshot};
use crate::etcd::trailer::Trailer;
use crate::paths::parent;
use crate::progress::Progress;
use crate::source::remote::shell_quote;
use crate::source::Remote;
use crate::vault::crypto::Identity;
use crate::vault::Vault;
use futures_util::future::join_all;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How one member came out of the restore.
#[derive(Clone, Debug, Serialize)]
pub struct MemberResult {
    pub node: String,
    pub member: String,
    pub healthy: bool,
    /// The revision the member reports once healthy.
    pub revision: Option<u64>,
    /// Where its previous `member` directory now is.
    pub old_data: Option<String>,
    /// Why it is not healthy.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    pub snapshot: String,
    pub revision: u64,
    pub members: Vec<MemberResult>,
    pub seconds: f64,
}

type Pair<'a> = (&'a MemberPlan, &'a Remote);

fn q(s: &str) -> String {
    shell_quote(s)
}

/// Runs one command per member at once; the errors, named by node.
async fn on_all<'a, F>(pairs: &[Pair<'a>], what: &str, cmd: F) -> Vec<Result<String, String>>
where
    F: Fn(&MemberPlan) -> String,
{
    join_all(pairs.iter().map(|(m, r)| {
        let c = cmd(m);
        async move { r.run_privileged(&c, what).await.map_err(|e| e.to_string()) }
    }))
    .await
}

fn failures(pairs: &[Pair<'_>], results: &[Result<String, String>]) -> Vec<String> {
    pairs
        .iter()
        .zip(results)
        .filter_map(|((m, _), r)| r.as_ref().err().map(|e| format!("{}: {e}", m.node)))
        .collect()
}

/// Removes what the restore put on the nodes besides etcd's data: the
/// uploaded snapshots and unused restore directories.
async fn clean_up(pairs: &[Pair<'_>], restore_dirs: bool) {
    on_all(pairs, "removing the uploaded snapshot", |m| {
        if restore_dirs {
            format!("rm -rf {} {}", q(parent(&m.upload)), q(&m.restore_dir))
        } else {
            format!("rm -rf {}", q(parent(&m.upload)))
        }
    })
    .await;
}

/// Streams the snapshot, decrypted chunk by chunk, to every member.
async fn upload(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    pairs: &[Pair<'_>],
) -> Result<(), EtcdRestoreError> {
    let mut files = Vec::new();
    for (m, r) in pairs {
        r.make_private_dir(parent(&m.upload)).await?;
        files.push(r.create_new(&m.upload).await?);
    }
    let mut trailer = Trailer::default();
    for i in 0..snap.index.chunks.len() {
        let plain = store::read_chunk(vault, snap, identity, i)?;
        trailer.update(&plain);
        for r in join_all(files.iter_mut().map(|f| f.write(&plain))).await {
            r?;
        }
    }
    for f in files {
        f.finish().await?;
    }
    if !trailer.valid() {
        return Err(EtcdRestoreError::Failed(format!(
            "etcd snapshot {} does not match its sha256 trailer after reassembly; nothing was changed; run `sprayvault verify --full`",
            snap.name
        )));
    }
    Ok(())
}

/// `snapshot status` on the node must agree with the vault's index, then
/// `snapshot restore` into the member's restore directory.
fn restore_cmd(plan: &RestorePlan, m: &MemberPlan) -> String {
    let tool = m.tool.command();
    let token = plan
        .cluster_token
        .as_deref()
        .map(|t| format!(" --initial-cluster-token {}", q(t)))
        .unwrap_or_default();
    format!(
        "set -e; umask 077; [ -d {data} ] || mkdir -p -m 0700 {data}; \
         {tool} snapshot status {up} -w json; \
         {tool} snapshot restore {up} --name {name} --initial-cluster {ic}{token} \
         --initial-advertise-peer-urls {peer} --data-dir {dir}{bump} >/dev/null",
        data = q(&m.data_dir),
        up = q(&m.upload),
        name = q(&m.member),
        ic = q(&plan.initial_cluster),
        peer = q(&m.peer_urls),
        dir = q(&m.restore_dir),
        bump = m.tool.restore_options(),
    )
}

/// After the stop command: etcd's bbolt database must not be locked any more.
fn stopped_cmd(m: &MemberPlan) -> String {
    format!(
        "db={}/member/snap/db; if [ -e \"$db\" ] && command -v flock >/dev/null 2>&1; then \
         i=0; until flock -n -x \"$db\" true; do i=$((i+1)); \
         if [ $i -ge 30 ]; then echo \"$db is still locked 30 s after the stop command: etcd is still running\" >&2; exit 1; fi; \
         sleep 1; done; fi",
        q(&m.data_dir)
    )
}

/// Moves the current `member` aside and the restored one into place.
fn swap_cmd(m: &MemberPlan) -> String {
    format!(
        "set -e; d={d}; n={n}; a={a}; \
         if [ -e \"$d/member\" ]; then mkdir -m 0700 \"$a\"; mv \"$d/member\" \"$a/member\"; echo aside; fi; \
         mv \"$n/member\" \"$d/member\"; rmdir \"$n\"; chown -R --reference=\"$d\" \"$d/member\"",
        d = q(&m.data_dir),
        n = q(&m.restore_dir),
        a = q(&m.aside),
    )
}

fn health_cmd(m: &MemberPlan, what: &str) -> String {
    format!(
        "{} --dial-timeout=3s --command-timeout=5s endpoint {what}",
        etcdctl(&m.client_url, &m.admin)
    )
}

/// Carries out `plan` (which must have no problems) on `remotes`, one per
/// member. `timeout` bounds the start commands and the wait for health.
pub async fn apply(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    plan: &RestorePlan,
    remotes: &[Remote],
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<RestoreReport, EtcdRestoreError> {
    let started = Instant::now();
    if !plan.problems.is_empty() {
        return Err(EtcdRestoreError::Refused(plan.problems.join("; ")));
    }
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    for m in &plan.members {
        let r = remotes
            .iter()
            .find(|r| r.target.node == m.node)
            .ok_or_else(|| {
                EtcdRestoreError::Failed(format!("node {}: no connection to it", m.node))
            })?;
        pairs.push((m, r));
    }

    // 1. Upload and restore beside the live data; etcd keeps running.
    progress.info(&format!(
        "streaming snapshot {} ({} bytes) to {} members",
        plan.snapshot,
        plan.size,
        pairs.len()
    ));
    if let Err(e) = upload(vault, snap, identity, &pairs).await {
        clean_up(&pairs, false).await;
        return Err(e);
    }
    progress.info("restoring the snapshot beside each member's data");
    let restored = on_all(&pairs, "restoring the snapshot", |m| restore_cmd(plan, m)).await;
    let mut failed = failures(&pairs, &restored);
    for ((m, _), r) in pairs.iter().zip(&restored) {
        if let Ok(out) = r {
            let status: Option<serde_json::Value> = out
                .lines()
                .find(|l| l.trim_start().starts_with('{'))
                .and_then(|l| serde_json::from_str(l).ok());
            let rev = status
                .as_ref()
                .and_then(|s| s.get("revision"))
                .and_then(serde_json::Value::as_u64);
            if rev != Some(plan.revision) {
                failed.push(format!(
                    "{}: the uploaded snapshot reports revision {}, the vault's index {}",
                    m.node,
                    rev.map(|r| r.to_string()).unwrap_or("none".into()),
                    plan.revision
                ));
            }
        }
    }
    if !failed.is_empty() {
        clean_up(&pairs, true).await;
        return Err(EtcdRestoreError::Failed(format!(
            "restoring the snapshot failed, nothing was changed and etcd was not stopped: {}",
            failed.join("; ")
        )));
    }

    // 2. Stop every member.
    progress.info(&format!("stopping etcd: {}", plan.commands.stop));
    let stopped = on_all(&pairs, "stopping etcd", |m| {
        format!(
            "{{ {}\n}} || {{ echo \"the stop command failed\" >&2; exit 1; }}; {}",
            plan.commands.stop,
            stopped_cmd(m)
        )
    })
    .await;
    let failed = failures(&pairs, &stopped);
    if !failed.is_empty() {
        let restarted = on_all(&pairs, "starting etcd", |_| plan.commands.start.clone()).await;
        clean_up(&pairs, true).await;
        let not = failures(&pairs, &restarted);
        return Err(EtcdRestoreError::Failed(format!(
            "stopping etcd failed, so nothing was restored: {}; etcd was started again on every member with its old data{}",
            failed.join("; "),
            if not.is_empty() {
                String::new()
            } else {
                format!(" (but starting it failed on {})", not.join("; "))
            }
        )));
    }

    // 3. Swap the data in.
    progress.info("moving the old data aside and the restored data into place");
    let swapped = on_all(&pairs, "moving the restored data into place", swap_cmd).await;
    let failed = failures(&pairs, &swapped);
    if !failed.is_empty() {
        clean_up(&pairs, false).await;
        let state: Vec<String> = pairs
            .iter()
            .zip(&swapped)
            .map(|((m, _), r)| match r {
                Ok(_) => format!("{} has the restored data (old data in {})", m.node, m.aside),
                Err(_) => format!(
                    "{} is unchanged or half way: check {}/member, {} and {}",
                    m.node, m.data_dir, m.aside, m.restore_dir
                ),
            })
            .collect();
        return Err(EtcdRestoreError::Failed(format!(
            "moving the restored data into place failed: {}. etcd is stopped on every member; {}. Finish by hand, then run the start command ({})",
            failed.join("; "),
            state.join("; "),
            plan.commands.start
        )));
    }
    let moved: Vec<bool> = swapped
        .iter()
        .map(|r| r.as_ref().is_ok_and(|o| o.contains("aside")))
        .collect();

    // 4. Start every member at once: each waits for the others' quorum.
    progress.info(&format!("starting etcd: {}", plan.commands.start));
    let start_errors = match tokio::time::timeout(
        timeout,
        on_all(&pairs, "starting etcd", |_| plan.commands.start.clone()),
    )
    .await
    {
        Ok(r) => r.into_iter().map(|r| r.err()).collect(),
        Err(_) => vec![
            Some(format!(
                "the start command did not finish within {} s",
                timeout.as_secs()
            ));
            pairs.len()
        ],
    };
    clean_up(&pairs, false).await;

    // 5. Wait until every member answers.
    let deadline = Instant::now() + timeout;
    let mut members: Vec<MemberResult> = Vec::new();
    let waits = join_all(pairs.iter().map(|(m, r)| async move {
        loop {
            match r
                .run_privileged(&health_cmd(m, "health"), "asking etcd for its health")
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }))
    .await;
    for (i, ((m, r), healthy)) in pairs.iter().zip(waits).enumerate() {
        let mut revision = None;
        if healthy.is_ok() {
            if let Ok(out) = r
                .run_privileged(
                    &health_cmd(m, "status -w json"),
                    "asking etcd for its status",
                )
                .await
            {
                revision = serde_json::from_str::<serde_json::Value>(out.trim())
                    .ok()
                    .and_then(|v| v[0]["Status"]["header"]["revision"].as_u64());
            }
        }
        let error = match (&healthy, &start_errors[i]) {
            (Ok(_), _) => None,
            (Err(h), Some(s)) => Some(format!("start failed: {s}; {h}")),
            (Err(h), None) => Some(format!(
                "not healthy {} s after starting: {h}",
                timeout.as_secs()
            )),
        };
        if let Some(e) = &error {
            progress.warn(&format!("node {}: {e}", m.node));
        } else {
            progress.finish(&m.node, "healthy");
        }
        members.push(MemberResult {
            node: m.node.clone(),
            member: m.member.clone(),
            healthy: healthy.is_ok(),
            revision,
            old_data: moved[i].then(|| m.aside.clone()),
            error,
        });
    }
    Ok(RestoreReport {
        snapshot: plan.snapshot.clone(),
        revision: plan.revision,
        members,
        seconds: started.elapsed().as_secs_f64(),
    })
}
