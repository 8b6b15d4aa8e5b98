//! Carrying out an etcd restore plan on every member (see the module
//! documentation for the steps and what each failure leaves behind).

use super::plan::{MemberPlan, RestorePlan};
use super::script::{self, Data, ScriptPlan, State};
use super::EtcdRestoreError;
use crate::etcd::capture::etcdctl;
use crate::etcd::reassemble;
use crate::etcd::store::StoredSnapshot;
use crate::etcd::trailer::Trailer;
use crate::paths::parent;
use crate::progress::Progress;
use crate::source::remote::shell_quote;
use crate::source::Remote;
use crate::vault::crypto::Identity;
use crate::vault::trust::Authentic;
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

/// How long each step may take on each member.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// Each command of a step on a member, each piece of the upload, and
    /// (plus the lock wait) stopping and swapping every member.
    pub step: Duration,
    /// From the go until every member is started and healthy.
    pub healthy: Duration,
}

impl Deadlines {
    /// How long sprayvault waits, from the launch of the scripts, for every
    /// member to be stopped and swapped: the stop command's bound (plus the
    /// 10 s `timeout -k` grace) and the database lock's wait.
    fn settle(&self) -> Duration {
        self.step + Duration::from_secs(script::LOCK_WAIT + 10)
    }

    /// How long a script waits, from its start, for the decision: later
    /// than sprayvault can give it, so a live sprayvault always decides.
    fn script_wait(&self) -> u64 {
        self.settle().as_secs() + 20
    }
}

/// The message of a member cut off at its deadline.
fn past(node: &str, what: &str, limit: Duration) -> String {
    format!(
        "node {node}: {what} did not finish within {} s: the node is frozen or unreachable, so it was cut off (raise --step-timeout if it is only slow)",
        limit.as_secs()
    )
}

/// Runs `fut` (work on `node`) within `limit`; dropping it on the deadline
/// kills its ssh process.
async fn within<T, F>(node: &str, what: &str, limit: Duration, fut: F) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, String>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(past(node, what, limit)),
    }
}

/// Runs `cmd` on `r` within `limit`.
async fn run_on(r: &Remote, cmd: &str, what: &str, limit: Duration) -> Result<String, String> {
    within(&r.target.node, what, limit, async {
        r.run_privileged(cmd, what).await.map_err(|e| e.to_string())
    })
    .await
}

/// Runs one command per member at once, each within `limit`; the errors,
/// named by node.
async fn on_all<'a, F>(
    pairs: &[Pair<'a>],
    what: &str,
    limit: Duration,
    cmd: F,
) -> Vec<Result<String, String>>
where
    F: Fn(&MemberPlan) -> String,
{
    join_all(pairs.iter().map(|(m, r)| {
        let c = cmd(m);
        async move { run_on(r, &c, what, limit).await }
    }))
    .await
}

fn failures(pairs: &[Pair<'_>], results: &[Result<String, String>]) -> Vec<String> {
    results
        .iter()
        .zip(pairs)
        .filter_map(|(r, (m, _))| {
            r.as_ref().err().map(|e| {
                if e.starts_with(&format!("node {}:", m.node)) {
                    e.clone()
                } else {
                    format!("{}: {e}", m.node)
                }
            })
        })
        .collect()
}

/// Removes what the restore put on the nodes besides etcd's data: the
/// uploaded snapshots and unused restore directories.
async fn clean_up(pairs: &[Pair<'_>], restore_dirs: bool, limit: Duration) {
    on_all(pairs, "removing the uploaded snapshot", limit, |m| {
        if restore_dirs {
            format!("rm -rf {} {}", q(parent(&m.upload)), q(&m.restore_dir))
        } else {
            format!("rm -rf {}", q(parent(&m.upload)))
        }
    })
    .await;
}

/// Streams the snapshot, decrypted chunk by chunk, to every member; each
/// piece must reach every member within `limit`.
async fn upload(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    pairs: &[Pair<'_>],
    limit: Duration,
) -> Result<(), EtcdRestoreError> {
    let what = "streaming the snapshot";
    let failed = |e: String| EtcdRestoreError::Failed(format!("{e}; nothing was changed"));
    let mut files = Vec::new();
    for (m, r) in pairs {
        let file = within(&m.node, what, limit, async {
            r.make_private_dir(parent(&m.upload))
                .await
                .map_err(|e| e.to_string())?;
            r.create_new(&m.upload).await.map_err(|e| e.to_string())
        })
        .await
        .map_err(failed)?;
        files.push((m.node.as_str(), file));
    }
    let mut trailer = Trailer::default();
    let mut reader = reassemble::Reader::open(vault, snap, identity)?;
    // Runs of units can be a page long: written in pieces of about 1 MiB.
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(2 << 20));
    loop {
        let piece = reader.next_piece()?;
        let end = piece.is_none();
        if let Some(p) = piece {
            trailer.update(p);
            plain.extend_from_slice(p);
            if plain.len() < 1 << 20 {
                continue;
            }
        }
        if !plain.is_empty() {
            let writes = join_all(files.iter_mut().map(|(node, f)| {
                let plain = &plain;
                within(node, what, limit, async move {
                    f.write(plain).await.map_err(|e| e.to_string())
                })
            }))
            .await;
            for r in writes {
                r.map_err(failed)?;
            }
            zeroize::Zeroize::zeroize(&mut *plain);
        }
        if end {
            break;
        }
    }
    for (node, f) in files {
        within(node, what, limit, async move {
            f.finish().await.map_err(|e| e.to_string())
        })
        .await
        .map_err(failed)?;
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

fn health_cmd(m: &MemberPlan, what: &str) -> String {
    format!(
        "{} --dial-timeout=3s --command-timeout=5s endpoint {what}",
        etcdctl(&m.client_url, &m.admin)
    )
}

/// One member's detached script, as sprayvault follows it.
struct Run<'a> {
    m: &'a MemberPlan,
    r: &'a Remote,
    /// The upload directory, where the script and its files are.
    dir: &'a str,
    launched: bool,
    state: Option<State>,
    /// The decision as the member holds it, once made.
    decision: Option<String>,
    /// Seconds its script waits for the decision.
    wait: u64,
    /// When it last answered a question.
    answered: Instant,
    /// It did not answer for a whole step: no longer asked.
    lost: bool,
}

impl Run<'_> {
    /// Nothing more to ask it: not started, lost, or `done` holds.
    fn over(&self, done: fn(&State) -> bool) -> bool {
        !self.launched || self.lost || self.state.as_ref().is_some_and(done)
    }
}

/// Asks every launched member for its state until `done(state)` holds for
/// all of them or `until` passes. A member that does not answer is asked
/// again over a new connection, until it has been silent for `step`: then
/// it is lost (its script fends for itself).
async fn follow(runs: &mut [Run<'_>], until: Instant, step: Duration, done: fn(&State) -> bool) {
    loop {
        let ask = runs.iter().map(|run| async move {
            if run.over(done) {
                return None;
            }
            let left = until.saturating_duration_since(Instant::now());
            let limit = left
                .min(step)
                .clamp(Duration::from_secs(1), Duration::from_secs(15));
            let cmd = script::state_command(run.dir);
            let out = run_on(run.r, &cmd, "reading the restore's state", limit).await;
            Some(out.ok().map(|o| State::parse(&o)))
        });
        let seen = join_all(ask).await;
        let now = Instant::now();
        for (run, s) in runs.iter_mut().zip(seen) {
            match s {
                Some(Some(state)) => {
                    run.answered = now;
                    if state.is_some() {
                        run.state = state;
                    }
                }
                Some(None) if now.duration_since(run.answered) >= step => run.lost = true,
                _ => {}
            }
        }
        let all = runs.iter().all(|r| r.over(done));
        if all || Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Makes `decision` on every launched member that has none yet; records
/// the one each holds (the script's own `timeout` may have come first).
async fn decide(runs: &mut [Run<'_>], decision: &str, limit: Duration) {
    let made = join_all(runs.iter().map(|run| async move {
        if !run.launched || run.decision.is_some() {
            return run.decision.clone();
        }
        let cmd = script::decide_command(run.dir, decision);
        // A lost member is tried once more, briefly: it may only be slow.
        let limit = if run.lost {
            limit.min(Duration::from_secs(5))
        } else {
            limit
        };
        run_on(run.r, &cmd, "telling the member what to do", limit)
            .await
            .ok()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
    }))
    .await;
    for (run, d) in runs.iter_mut().zip(made) {
        run.decision = d;
    }
}

/// What a member's script said, for messages.
fn outcome(run: &Run<'_>) -> String {
    let node = &run.m.node;
    match &run.state {
        _ if !run.launched => format!("{node}: its restore script was not started"),
        Some(State::Done {
            data,
            started,
            why,
        }) => {
            let data = match data {
                Data::Restored => "runs on the restored data".to_string(),
                Data::Old => "is back on its old data".to_string(),
                Data::Unknown => "is half way between its old and the restored data".to_string(),
            };
            let started = if *started {
                "etcd was started"
            } else {
                "etcd could not be started"
            };
            match why {
                Some(w) => format!("{node} {data}, {started} ({w})"),
                None => format!("{node} {data}, {started}"),
            }
        }
        _ if run.lost => format!(
            "{node}: did not answer for a whole step (frozen or unreachable), so it was cut off; its restore script goes back to its old data and starts etcd by itself at the latest {} s after it started, unless it got the go (see {}/{} there)",
            run.wait,
            run.dir,
            script::LOG
        ),
        other => format!(
            "{node}: no word from its restore script ({}); it starts etcd on its own at the latest {} s after it started (see {}/{})",
            match other {
                Some(State::Running) => "last seen stopping etcd",
                Some(State::Stopped) => "last seen moving the data",
                Some(State::Swapped) => "last seen waiting for the go",
                _ => "no state",
            },
            run.wait,
            run.dir,
            script::LOG
        ),
    }
}

/// Carries out `plan` (which must have no problems) on `remotes`, one per
/// member, each step within `deadlines`.
pub async fn apply(
    vault: &Vault,
    snap: &Authentic<StoredSnapshot>,
    identity: &Identity,
    plan: &RestorePlan,
    remotes: &[Remote],
    deadlines: Deadlines,
    progress: &dyn Progress,
) -> Result<RestoreReport, EtcdRestoreError> {
    let started = Instant::now();
    let step = deadlines.step;
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
        return Err(EtcdRestoreError::Failed(format!(
            "{}; nothing was changed",
            failed.join("; ")
        )));
    }

    // 1. Upload and restore beside the live data; etcd keeps running.
    progress.info(&format!(
        "streaming snapshot {} ({} bytes) to {} members",
        plan.snapshot,
        plan.size,
        pairs.len()
    ));
    if let Err(e) = upload(vault, snap, identity, &pairs, step).await {
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
        clean_up(&pairs, true, step).await;
        return Err(EtcdRestoreError::Failed(format!(
            "restoring the snapshot failed, nothing was changed and etcd was not stopped: {}",
            failed.join("; ")
        )));
    }

    // 2. Each member's stop, swap and start, as one script detached on it.
    let mut written = Vec::new();
    for (m, r) in &pairs {
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
        written.push(
            within(&m.node, "writing the restore script", step, async {
                let mut f = r.create_new(&path).await.map_err(|e| e.to_string())?;
                f.write(text.as_bytes()).await.map_err(|e| e.to_string())?;
                f.finish().await.map_err(|e| e.to_string())
            })
            .await,
        );
    }
    let failed: Vec<String> = written.iter().filter_map(|r| r.clone().err()).collect();
    if !failed.is_empty() {
        clean_up(&pairs, true, step).await;
        return Err(EtcdRestoreError::Failed(format!(
            "writing the restore script failed, nothing was changed and etcd was not stopped: {}",
            failed.join("; ")
        )));
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
    let mut runs: Vec<Run<'_>> = pairs
        .iter()
        .zip(&launched)
        .map(|((m, r), l)| Run {
            m,
            r,
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
        decide(&mut runs, "abort", step).await;
        follow(&mut runs, Instant::now() + deadlines.settle(), step, |s| {
            matches!(s, State::Done { .. })
        })
        .await;
        let mut why = launch_failed;
        for run in &runs {
            match &run.state {
                Some(State::Done { why: Some(w), .. }) if !w.starts_with("another member") => {
                    why.push(format!("{}: {w}", run.m.node))
                }
                Some(State::Done { .. }) => {}
                _ if run.lost => why.push(format!(
                    "{}: did not answer for {} s (frozen or unreachable), so it was cut off",
                    run.m.node,
                    step.as_secs()
                )),
                _ if run.launched => why.push(format!(
                    "{}: not stopped and swapped within {} s",
                    run.m.node,
                    deadlines.settle().as_secs()
                )),
                _ => {}
            }
        }
        let all_back = runs.iter().all(|r| {
            !r.launched
                || matches!(
                    r.state,
                    Some(State::Done {
                        data: Data::Old,
                        started: true,
                        ..
                    })
                )
        });
        remove_finished(&runs, step).await;
        let state: Vec<String> = runs.iter().map(outcome).collect();
        return Err(EtcdRestoreError::Failed(format!(
            "stopping etcd failed, so nothing was restored: {}; {}",
            why.join("; "),
            if all_back {
                "etcd was started again on every member with its old data".to_string()
            } else {
                state.join("; ")
            }
        )));
    }

    // 3. Every member is stopped and swapped: the go, to all at once; each
    //    starts etcd and waits for the others' quorum.
    progress.info(&format!("starting etcd: {}", plan.commands.start));
    decide(&mut runs, "go", step).await;
    let go_at = Instant::now();
    let deadline = go_at + deadlines.healthy;
    follow(&mut runs, deadline, step, |s| {
        matches!(s, State::Done { .. })
    })
    .await;
    remove_finished(&runs, step).await;

    // 4. Wait until every member answers.
    let waits = join_all(runs.iter().map(|run| async move {
        let restored = matches!(
            run.state,
            Some(State::Done {
                data: Data::Restored,
                started: true,
                ..
            })
        );
        if !restored {
            return Err(outcome(run));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = left.clamp(Duration::from_secs(1), Duration::from_secs(15));
            let cmd = health_cmd(run.m, "health");
            let tried = run_on(run.r, &cmd, "asking etcd for its health", limit).await;
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
            if let Ok(out) = run_on(run.r, &cmd, "asking etcd for its status", step).await {
                revision = serde_json::from_str::<serde_json::Value>(out.trim())
                    .ok()
                    .and_then(|v| v[0]["Status"]["header"]["revision"].as_u64());
            }
        }
        let error = healthy.as_ref().err().cloned();
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
            healthy: healthy.is_ok(),
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

/// Removes the upload directories of the members whose script has ended
/// (the script itself removed the snapshot; a running one still needs its
/// directory, and the next run removes it).
async fn remove_finished(runs: &[Run<'_>], limit: Duration) {
    join_all(runs.iter().map(|run| async move {
        let ended = !run.launched || matches!(run.state, Some(State::Done { .. }));
        if ended {
            // A script that never ran leaves the restored copy to remove too.
            let cmd = if run.launched {
                format!("rm -rf {}", q(run.dir))
            } else {
                format!("rm -rf {} {}", q(run.dir), q(&run.m.restore_dir))
            };
            let _ = run_on(run.r, &cmd, "removing the restore's files", limit).await;
        }
    }))
    .await;
}
