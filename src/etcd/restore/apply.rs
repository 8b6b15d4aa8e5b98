//! Carrying out an etcd restore plan on every member (see the module
//! documentation for the steps and what each failure leaves behind). The
//! steps run against [`NodeFs`], so their order and every failure path are
//! unit-tested on fake nodes (`apply_tests.rs`).

use super::follow::{follow, outcome, remove_finished, tell, Run};
use super::members::{failures, named, on_all, run_on, within, Deadlines, Pair};
use super::plan::{MemberPlan, RestorePlan};
use super::script::{self, Data, ScriptPlan, State};
use super::upload::{upload, Pieces};
use super::{EtcdRestoreError, Unchanged};
use crate::etcd::capture::etcdctl;
use crate::etcd::reassemble;
use crate::etcd::store::StoredSnapshot;
use crate::paths::parent;
use crate::progress::Progress;
use crate::source::remote::shell_quote;
use crate::source::{NewFile, NodeFs, Remote};
use crate::vault::crypto::Identity;
use crate::vault::trust::Authentic;
use crate::vault::Vault;
use futures_util::future::join_all;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

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

fn q(s: &str) -> String {
    shell_quote(s)
}

/// Removes what the restore put on the nodes besides etcd's data: the
/// uploaded snapshots and unused restore directories.
async fn clean_up<N: NodeFs>(pairs: &[Pair<'_, N>], restore_dirs: bool, limit: Duration) {
    on_all(pairs, "removing the uploaded snapshot", limit, |m| {
        if restore_dirs {
            format!("rm -rf {} {}", q(parent(&m.upload)), q(&m.restore_dir))
        } else {
            format!("rm -rf {}", q(parent(&m.upload)))
        }
    })
    .await;
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

fn health_cmd(m: &MemberPlan, what: &str) -> String {
    format!(
        "{} --dial-timeout=3s --command-timeout=5s endpoint {what}",
        etcdctl(&m.client_url, &m.admin)
    )
}

/// The revision the uploaded snapshot reports in the output of
/// [`restore_cmd`] (its `snapshot status -w json` line).
fn uploaded_revision(out: &str) -> Option<u64> {
    out.lines()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|s| s.get("revision").and_then(serde_json::Value::as_u64))
}

/// The revision in `endpoint status -w json`.
fn status_revision(out: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(out.trim())
        .ok()
        .and_then(|v| v[0]["Status"]["header"]["revision"].as_u64())
}

/// Why the members were not all stopped and swapped, one sentence each.
fn not_swapped<N>(
    runs: &[Run<'_, N>],
    launch_failed: Vec<String>,
    deadlines: Deadlines,
) -> Vec<String> {
    let mut why = launch_failed;
    for run in runs {
        match &run.state {
            Some(State::Done { why: Some(w), .. }) if !w.starts_with("another member") => {
                why.push(format!("{}: {w}", run.m.node))
            }
            Some(State::Done { .. }) => {}
            _ if run.lost => why.push(format!(
                "{}: did not answer for {} s (frozen or unreachable), so it was cut off",
                run.m.node,
                deadlines.step.as_secs()
            )),
            _ if run.launched => why.push(format!(
                "{}: not stopped and swapped within {} s",
                run.m.node,
                deadlines.settle().as_secs()
            )),
            _ => {}
        }
    }
    why
}

/// Every launched member is back on its old data with etcd started.
fn all_back<N>(runs: &[Run<'_, N>]) -> bool {
    runs.iter().all(|r| {
        !r.launched
            || matches!(
                r.state,
                Some(State::Done {
                    data: Data::Old,
                    started: true,
                    ..
                })
            )
    })
}

/// Carries out `plan` (which must have no problems) on `remotes`, one per
/// member, each step within `deadlines`.
pub async fn apply(
    vault: &Vault,
    snap: &Authentic<StoredSnapshot>,
    identity: &Identity,
    plan: &RestorePlan,
    remotes: &[&Remote],
    deadlines: Deadlines,
    progress: &dyn Progress,
) -> Result<RestoreReport, EtcdRestoreError> {
    let reader = reassemble::Reader::open(vault, snap, identity)?;
    execute(plan, remotes, (&snap.name, reader), deadlines, progress).await
}

/// The steps of [`apply`] on any nodes, with the snapshot `(name, pieces)`.
pub(super) async fn execute<N: NodeFs, P: Pieces>(
    plan: &RestorePlan,
    nodes: &[&N],
    (name, pieces): (&str, P),
    deadlines: Deadlines,
    progress: &dyn Progress,
) -> Result<RestoreReport, EtcdRestoreError> {
    let started = Instant::now();
    let step = deadlines.step;
    if !plan.problems.is_empty() {
        return Err(EtcdRestoreError::Refused(plan.problems.join("; ")));
    }
    let mut pairs: Vec<Pair<'_, N>> = Vec::new();
    for m in &plan.members {
        let n = *nodes
            .iter()
            .find(|n| n.node() == m.node)
            .ok_or_else(|| EtcdRestoreError::NoConnection(m.node.clone()))?;
        pairs.push((m, n));
    }

    // 0. What earlier runs cut off left behind goes first.
    let swept = on_all(
        &pairs,
        "removing what an earlier etcd restore left",
        step,
        |m| script::sweep_command(&m.data_dir),
    )
    .await;
    let failed = failures(&pairs, &swept);
    if !failed.is_empty() {
        return Err(EtcdRestoreError::Unchanged {
            step: Unchanged::Sweep,
            failures: failed,
        });
    }

    // 1. Upload and restore beside the live data; etcd keeps running.
    progress.info(&format!(
        "streaming snapshot {} ({} bytes) to {} members",
        plan.snapshot,
        plan.size,
        pairs.len()
    ));
    if let Err(e) = upload(name, pieces, &pairs, step).await {
        clean_up(&pairs, false, step).await;
        return Err(e);
    }
    progress.info("restoring the snapshot beside each member's data");
    let restored = on_all(&pairs, "restoring the snapshot", step, |m| {
        restore_cmd(plan, m)
    })
    .await;
    let mut failed = failures(&pairs, &restored);
    for ((m, _), r) in pairs.iter().zip(&restored) {
        if let Ok(out) = r {
            let rev = uploaded_revision(out);
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
        clean_up(&pairs, true, step).await;
        return Err(EtcdRestoreError::Unchanged {
            step: Unchanged::Restore,
            failures: failed,
        });
    }

    // 2. Each member's stop, swap and start, as one script detached on it.
    let mut failed = Vec::new();
    for (m, n) in &pairs {
        let dir = parent(&m.upload);
        let text = script::member_script(&ScriptPlan {
            dir,
            snapshot: &m.upload,
            data_dir: &m.data_dir,
            restore_dir: &m.restore_dir,
            aside: &m.aside,
            stop: &plan.commands.stop,
            start: &plan.commands.start,
            step: step.as_secs().max(1),
            wait: deadlines.script_wait(),
        });
        let path = format!("{dir}/{}", script::SCRIPT);
        let written = within(&m.node, "writing the restore script", step, async {
            let mut f = n.create_new(&path).await?;
            f.write(text.as_bytes()).await?;
            f.finish().await
        })
        .await;
        if let Err(e) = written {
            failed.push(named(&m.node, &e));
        }
    }
    if !failed.is_empty() {
        clean_up(&pairs, true, step).await;
        return Err(EtcdRestoreError::Unchanged {
            step: Unchanged::Script,
            failures: failed,
        });
    }
    progress.info(&format!(
        "stopping etcd and moving the restored data in, on each member by a script of its own: {}",
        plan.commands.stop
    ));
    let launch_at = Instant::now();
    let launched = on_all(&pairs, "starting the restore script", step, |m| {
        let dir = parent(&m.upload);
        script::launch_command(dir, &dir[dir.rfind('/').map_or(0, |i| i + 1)..])
    })
    .await;
    let mut runs: Vec<Run<'_, N>> = pairs
        .iter()
        .zip(&launched)
        .map(|((m, n), l)| Run {
            m,
            n: *n,
            dir: parent(&m.upload),
            launched: l.is_ok(),
            state: None,
            decision: None,
            wait: deadlines.script_wait(),
            answered: launch_at,
            lost: false,
        })
        .collect();
    let launch_failed = failures(&pairs, &launched);
    if launch_failed.is_empty() {
        follow(
            &mut runs,
            launch_at + deadlines.settle(),
            step,
            State::settled,
        )
        .await;
    }
    let all_swapped = launch_failed.is_empty()
        && runs
            .iter()
            .all(|r| !r.lost && matches!(r.state, Some(State::Swapped)));

    if !all_swapped {
        // Not every member is stopped and swapped: every one goes back to
        // its old data and starts.
        tell(&mut runs, "abort", step).await;
        follow(&mut runs, Instant::now() + deadlines.settle(), step, |s| {
            matches!(s, State::Done { .. })
        })
        .await;
        let why = not_swapped(&runs, launch_failed, deadlines);
        let back = all_back(&runs);
        remove_finished(&runs, step).await;
        return Err(EtcdRestoreError::NotStopped {
            why,
            back,
            members: runs.iter().map(outcome).collect(),
        });
    }

    // 3. Every member is stopped and swapped: the go, to all at once; each
    //    starts etcd and waits for the others' quorum.
    progress.info(&format!("starting etcd: {}", plan.commands.start));
    tell(&mut runs, "go", step).await;
    let deadline = Instant::now() + deadlines.healthy;
    follow(&mut runs, deadline, step, |s| {
        matches!(s, State::Done { .. })
    })
    .await;
    remove_finished(&runs, step).await;

    // 4. Wait until every member answers.
    let waits = join_all(runs.iter().map(|run| async move {
        if !run.restored() {
            return Err(outcome(run));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = left.clamp(Duration::from_secs(1), Duration::from_secs(15));
            let cmd = health_cmd(run.m, "health");
            let tried = run_on(run.n, &cmd, "asking etcd for its health", limit).await;
            match tried {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "not healthy {} s after the go: {e}",
                        deadlines.healthy.as_secs()
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }))
    .await;
    let mut members: Vec<MemberResult> = Vec::new();
    for (run, healthy) in runs.iter().zip(waits) {
        let mut revision = None;
        if healthy.is_ok() {
            let cmd = health_cmd(run.m, "status -w json");
            if let Ok(out) = run_on(run.n, &cmd, "asking etcd for its status", step).await {
                revision = status_revision(&out);
            }
        }
        let error = healthy.err();
        if let Some(e) = &error {
            progress.warn(&format!("node {}: {e}", run.m.node));
        } else {
            progress.finish(&run.m.node, "healthy");
        }
        let moved = matches!(
            run.state,
            Some(State::Done {
                data: Data::Restored,
                ..
            })
        ) && run.m.has_data;
        members.push(MemberResult {
            node: run.m.node.clone(),
            member: run.m.member.clone(),
            healthy: error.is_none(),
            revision,
            old_data: moved.then(|| run.m.aside.clone()),
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
