//! Carrying out a replacement plan, step by step (see the module
//! documentation for the steps and what a failure at each leaves behind).

use super::gather::{Gathered, ENV_PATH};
use super::plan::{EtcdAction, EtcdPlan, ReplacePlan};
use crate::etcd::env::EtcdEnv;
use crate::etcd::member::{self, Etcdctl};
use crate::etcd::restore::Commands;
use crate::facts::config::FactCache;
use crate::progress::Progress;
use crate::restore::{self, TrustStore};
use crate::source::remote::shell_quote;
use crate::source::remote::SMALL_FILE_LIMIT;
use crate::source::Remote;
use crate::vault::crypto::Identity;
use crate::vault::{Backup, Vault};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One step carried out, in words.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub outcome: String,
    /// How long it took.
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplaceReport {
    pub node: String,
    pub backup: String,
    pub steps: Vec<Step>,
    /// The step that failed, what state it left, and what to do.
    pub failed: Option<String>,
    /// Things that went wrong without stopping the replacement.
    pub warnings: Vec<String>,
    /// The id of the node's etcd member at the end.
    pub member_id: Option<String>,
    /// Commands left for the operator.
    pub left: Vec<String>,
    pub seconds: f64,
    /// When the step under way started.
    #[serde(skip)]
    mark: Instant,
}

impl ReplaceReport {
    /// Records a finished step, timed from the end of the one before.
    fn done(&mut self, step: &'static str, outcome: String) {
        let now = Instant::now();
        self.steps.push(Step {
            step,
            outcome,
            seconds: now.duration_since(self.mark).as_secs_f64(),
        });
        self.mark = now;
    }
}

/// Everything the executor needs.
pub struct Context<'a> {
    pub vault: &'a Vault,
    pub backup: &'a Backup,
    pub identity: &'a Identity,
    pub plan: &'a ReplacePlan,
    pub gathered: &'a Gathered,
    pub node: &'a Remote,
    /// Connections to the other etcd members that answered.
    pub others: &'a [&'a Remote],
    pub commands: &'a Commands,
    pub timeout: Duration,
    /// The fact cache, or why it is not used.
    pub fact_cache: &'a Result<FactCache, crate::facts::config::FactsConfigError>,
    /// The inventory path, for the commands left to run.
    pub inventory: &'a str,
    pub progress: &'a dyn Progress,
}

/// A step failed: the message says what state it left and what to do.
struct Failed(String);

fn rerun(node: &str) -> String {
    format!("then run `sprayvault replace {node}` again: it carries on from where this run stopped")
}

/// Retries `f` every `every` until it succeeds, a non-retryable error, or
/// `deadline`.
async fn retry<F, Fut, T, E>(deadline: Instant, every: Duration, mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// After the stop command, etcd's database must not be locked (no etcd is
/// using the data directory that is about to be moved aside).
fn stop_cmd(stop: &str, data: &str) -> String {
    format!(
        "{{ {stop}\n}} >/dev/null 2>&1 || true; db={}/member/snap/db; \
         if [ -e \"$db\" ] && command -v flock >/dev/null 2>&1; then i=0; \
         until flock -n -x \"$db\" true; do i=$((i+1)); \
         if [ $i -ge 30 ]; then echo \"$db is still locked 30 s after the stop command: etcd still runs there\" >&2; exit 1; fi; \
         sleep 1; done; fi",
        shell_quote(data)
    )
}

/// Moves everything in the data directory aside into `DATA/.sprayvault-before-T`
/// (earlier such directories stay where they are); prints where, if anything moved.
fn aside_cmd(data: &str, stamp: &str) -> String {
    format!(
        "set -e; d={d}; a=\"$d/.sprayvault-before-{stamp}\"; \
         if [ ! -d \"$d\" ]; then mkdir -p -m 0700 \"$d\"; exit 0; fi; \
         n=$(find \"$d\" -mindepth 1 -maxdepth 1 ! -name '.sprayvault-before-*' | wc -l); \
         if [ \"$n\" -gt 0 ]; then mkdir -m 0700 \"$a\"; \
         find \"$d\" -mindepth 1 -maxdepth 1 ! -name '.sprayvault-before-*' -exec mv -t \"$a\" {{}} +; echo \"$a\"; fi",
        d = shell_quote(data),
    )
}

async fn etcd_step(
    c: &Context<'_>,
    e: &EtcdPlan,
    report: &mut ReplaceReport,
    deadline: Instant,
) -> Result<(), Failed> {
    let node = &c.plan.node;
    let via = c
        .others
        .iter()
        .find(|r| r.target.node == e.via)
        .copied()
        .ok_or_else(|| Failed(format!("no connection to {}", e.via)))?;
    let via_ctl = &c.gathered.ctls[&e.via];
    let say = |m: String| c.progress.info(&m);
    let mut id = match &e.action {
        EtcdAction::Done { id } | EtcdAction::Promote { id } => id.clone(),
        EtcdAction::Replace { .. } => String::new(),
    };
    if let EtcdAction::Replace { remove } = &e.action {
        say(format!("stopping etcd on {node}: {}", c.commands.stop));
        c.node
            .run_privileged(&stop_cmd(&c.commands.stop, &e.data_dir), "stopping etcd")
            .await
            .map_err(|err| {
                Failed(format!(
                    "{err}; the cluster was not changed; stop etcd on {node}, {}",
                    rerun(node)
                ))
            })?;
        report.done("etcd: stop on the node", c.commands.stop.clone());
        if let Some(old) = remove {
            say(format!(
                "removing the old member {} ({}) through {}",
                old.id,
                old.peer_urls.join(","),
                e.via
            ));
            retry(deadline, Duration::from_millis(500), || async {
                match member::remove(via, via_ctl, &old.id).await {
                    Err(m) if m.member_not_found() => Ok(()),
                    r => r,
                }
            })
            .await
            .map_err(|err| {
                Failed(format!(
                    "removing the old member {} failed: {err}; the cluster is as it was; {}",
                    old.id,
                    rerun(node)
                ))
            })?;
            report.done(
                "etcd: remove the old member",
                format!("removed {} ({})", old.id, old.peer_urls.join(",")),
            );
        }
        say(format!(
            "adding {} ({}) as a learner",
            e.member,
            e.peer_urls.join(",")
        ));
        let added = retry(deadline, Duration::from_millis(500), || {
            member::add_learner(via, via_ctl, &e.member, &e.peer_urls)
        })
        .await
        .map_err(|err| {
            Failed(format!(
                "adding {} as a learner failed: {err}; the cluster runs healthy without it; {}",
                e.member,
                rerun(node)
            ))
        })?;
        id = added.id.clone();
        report.member_id = Some(id.clone());
        report.done(
            "etcd: add the member as a learner",
            format!("member {id}, initial cluster {}", added.initial_cluster),
        );
        let learner_left = |what: String| {
            Failed(format!(
                "{what}; learner {id} stays in the cluster without a vote, so the cluster is as healthy as before; fix that, {} (it replaces the learner), or take it out: etcdctl member remove {id}",
                rerun(node)
            ))
        };
        let (entry, text) = c
            .gathered
            .recorded_env
            .as_ref()
            .ok_or_else(|| learner_left(format!("the vault holds no {ENV_PATH} of {node}")))?;
        let env = member::rewrite_env(
            &String::from_utf8_lossy(text),
            &[
                ("ETCD_INITIAL_CLUSTER_STATE", "existing"),
                ("ETCD_INITIAL_CLUSTER", &added.initial_cluster),
            ],
        );
        restore::put_file(c.node, entry, env.as_bytes())
            .await
            .map_err(|err| learner_left(format!("writing {ENV_PATH} failed: {err}")))?;
        report.done(
            "etcd: write /etc/etcd.env",
            "ETCD_INITIAL_CLUSTER_STATE=existing, ETCD_INITIAL_CLUSTER as member add reported it"
                .into(),
        );
        let stamp = crate::vault::stamp(time::OffsetDateTime::now_utc().unix_timestamp());
        let moved = c
            .node
            .run_privileged(
                &aside_cmd(&e.data_dir, &stamp),
                "moving the old etcd data aside",
            )
            .await
            .map_err(|err| learner_left(err.to_string()))?;
        report.done(
            "etcd: move the data directory's content aside",
            match moved.trim() {
                "" => format!("{} was empty", e.data_dir),
                a => format!("moved to {a}"),
            },
        );
        say(format!("starting etcd on {node}: {}", c.commands.start));
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(
            left,
            c.node.run_privileged(&c.commands.start, "starting etcd"),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                return Err(learner_left(format!("etcd did not start on {node}: {err}")))
            }
            Err(_) => {
                return Err(learner_left(format!(
                    "the start command did not finish within {} s",
                    c.timeout.as_secs()
                )))
            }
        }
        report.done("etcd: start", c.commands.start.clone());
    }
    if !matches!(e.action, EtcdAction::Done { .. }) {
        say(format!("promoting learner {id} once it has caught up"));
        let started = Instant::now();
        retry(deadline, Duration::from_millis(500), || {
            member::promote(via, via_ctl, &id)
        })
        .await
        .map_err(|err| {
            Failed(format!(
                "learner {id} was not promoted within {} s: {err}; it stays without a vote, the cluster is as healthy as before; see why etcd on {node} does not catch up, {}",
                c.timeout.as_secs(),
                rerun(node)
            ))
        })?;
        report.done(
            "etcd: promote the learner",
            format!(
                "{id} is a voting member (caught up in {:.1} s)",
                started.elapsed().as_secs_f64()
            ),
        );
    }
    report.member_id = Some(id.clone());
    // Every member, each through its own connection and certificate.
    let own = c
        .node
        .read(ENV_PATH, SMALL_FILE_LIMIT)
        .await
        .map_err(|err| Failed(err.to_string()))
        .and_then(|t| {
            Etcdctl::from_env(node, &EtcdEnv::parse(&String::from_utf8_lossy(&t)))
                .ok_or_else(|| Failed(format!("{node}: {ENV_PATH} has no client URL")))
        })?;
    let mut all: Vec<(&Remote, &Etcdctl)> = vec![(c.node, &own)];
    for r in c.others {
        if let Some(ctl) = c.gathered.ctls.get(&r.target.node) {
            all.push((r, ctl));
        }
    }
    let healthy = futures_util::future::join_all(all.iter().map(|(r, ctl)| async move {
        retry(deadline, Duration::from_millis(500), || {
            member::health(r, ctl)
        })
        .await
        .map_err(|e| format!("{}: {e}", r.target.node))
    }))
    .await;
    let sick: Vec<String> = healthy.into_iter().filter_map(Result::err).collect();
    if !sick.is_empty() {
        return Err(Failed(format!(
            "not every member is healthy: {}; member {id} is in the cluster; look at etcd's log there",
            sick.join("; ")
        )));
    }
    report.done(
        "etcd: endpoint health on every member",
        format!("{} members healthy", all.len()),
    );
    Ok(())
}

fn mtime(path: &std::path::Path) -> Option<i64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

fn facts_step(c: &Context<'_>, cache: &FactCache) -> Result<String, Failed> {
    let node = &c.plan.node;
    let fail = |e: String| {
        Failed(format!(
            "{e}; the node itself is replaced; finish with `sprayvault facts restore` and remove {} by hand",
            cache.file(node).display()
        ))
    };
    std::fs::create_dir_all(&cache.dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", cache.dir.display())))?;
    let (mut restored, mut kept) = (Vec::new(), Vec::new());
    for (host, entry) in &c.backup.facts.entries {
        if host == node {
            continue;
        }
        let target = cache.file(host);
        if mtime(&target).is_some_and(|t| t >= entry.mtime) {
            kept.push(host.clone());
            continue;
        }
        let data = crate::facts::read(c.vault, c.backup, host, c.identity)
            .map_err(|e| fail(e.to_string()))?;
        crate::facts::write_cache_file(&target, &data).map_err(|e| fail(e.to_string()))?;
        restored.push(host.clone());
    }
    let own = cache.file(node);
    let dropped = match std::fs::remove_file(&own) {
        Ok(()) => format!("dropped {node}'s cached facts ({})", own.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("no cached facts of {node}")
        }
        Err(e) => return Err(fail(format!("cannot remove {}: {e}", own.display()))),
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    Ok(format!(
        "restored facts of {} as of backup {}; kept newer cached facts of {}; {dropped}",
        list(&restored),
        c.backup.short_id(),
        list(&kept)
    ))
}

/// Carries out `c.plan`, which must have no refusals.
pub async fn apply(c: &Context<'_>) -> ReplaceReport {
    let started = Instant::now();
    let deadline = started + c.timeout;
    let node = c.plan.node.clone();
    let mut report = ReplaceReport {
        node: node.clone(),
        backup: c.plan.backup.clone(),
        steps: Vec::new(),
        failed: None,
        warnings: c.plan.warnings.clone(),
        member_id: None,
        left: Vec::new(),
        seconds: 0.0,
        mark: started,
    };
    let result = async {
        if !c.plan.refusals.is_empty() {
            return Err(Failed("the plan has refusals; nothing was changed".into()));
        }
        // 2. The node's files.
        let plan = c
            .gathered
            .restore
            .as_ref()
            .ok_or_else(|| Failed(format!("no restore plan for {node}")))?;
        c.progress.info(&format!("restoring the files of {node}"));
        let r = restore::apply(plan, c.node, c.progress)
            .await
            .map_err(|e| {
                Failed(format!(
                    "restoring the files failed: {e}; the cluster was not changed; {}",
                    rerun(&node)
                ))
            })?;
        if !r.errors.is_empty() {
            let list: Vec<String> = r.errors.iter().map(|(p, w)| format!("{p}: {w}")).collect();
            return Err(Failed(format!(
                "restoring the files failed for {} entries ({}); the cluster was not changed; {}",
                r.errors.len(),
                list.join("; "),
                rerun(&node)
            )));
        }
        let trust = match &r.trust_store {
            Some(TrustStore::Updated) => ", trust store updated".to_string(),
            Some(TrustStore::NotUpdated(why)) => {
                report.warnings.push(format!("node {node}: {why}"));
                ", trust store NOT updated".to_string()
            }
            None => String::new(),
        };
        report.done(
            "restore the node's files",
            format!(
                "{} created, {} replaced, {} updated, {} unchanged, {} files verified{trust}",
                r.created, r.replaced, r.updated, r.left, r.verified
            ),
        );
        // 3. etcd.
        if let Some(e) = &c.plan.etcd {
            etcd_step(c, e, &mut report, deadline).await?;
        }
        // 4. The fact cache.
        match c.fact_cache {
            Ok(cache) => {
                let outcome = facts_step(c, cache)?;
                report.done("Ansible fact cache", outcome);
            }
            Err(why) => report.done("Ansible fact cache", format!("skipped: {why}")),
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            report.left = vec![format!("kubectl get node {node} && kubectl delete node {node}   # if the cluster still lists the old {node} (sprayvault does not ask the API server)")];
            report
                .left
                .extend(c.plan.first_control_plane.iter().cloned());
            report.left.push(format!(
                "ansible-playbook -i {} cluster.yml --limit {node}",
                c.inventory
            ));
        }
        Err(Failed(why)) => {
            c.progress.warn(&why);
            report.failed = Some(why);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}
