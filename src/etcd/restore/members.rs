//! Running a step's commands on every member at once, each within its
//! deadline, and naming the members that failed.

use super::plan::MemberPlan;
use super::script;
use crate::source::{NodeFs, SourceError};
use futures_util::future::join_all;
use std::future::Future;
use std::time::Duration;

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
    pub(super) fn settle(&self) -> Duration {
        self.step + Duration::from_secs(script::LOCK_WAIT + 10)
    }

    /// How long a script waits, from its start, for the decision: later
    /// than sprayvault can give it, so a live sprayvault always decides.
    pub(super) fn script_wait(&self) -> u64 {
        self.settle().as_secs() + 20
    }
}

/// A member's plan and the node it runs on.
pub(super) type Pair<'a, N> = (&'a MemberPlan, &'a N);

/// One member's failure in one step.
#[derive(Clone, Debug, thiserror::Error)]
pub(super) enum StepError {
    /// Cut off at its deadline.
    #[error("node {node}: {what} did not finish within {} s: the node is frozen or unreachable, so it was cut off (raise --step-timeout if it is only slow)", .limit.as_secs())]
    Past {
        node: String,
        what: String,
        limit: Duration,
    },
    /// The node answered with an error.
    #[error(transparent)]
    Node(#[from] SourceError),
}

/// Runs `fut` (work on `node`) within `limit`; dropping it on the deadline
/// kills its ssh process.
pub(super) async fn within<T, F>(
    node: &str,
    what: &str,
    limit: Duration,
    fut: F,
) -> Result<T, StepError>
where
    F: Future<Output = Result<T, SourceError>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(StepError::Past {
            node: node.into(),
            what: what.into(),
            limit,
        }),
    }
}

/// Runs `cmd` on `n` as root within `limit`.
pub(super) async fn run_on<N: NodeFs>(
    n: &N,
    cmd: &str,
    what: &str,
    limit: Duration,
) -> Result<String, StepError> {
    within(n.node(), what, limit, n.run_privileged(cmd, what)).await
}

/// Runs one command per member at once, each within `limit`.
pub(super) async fn on_all<N: NodeFs, F>(
    pairs: &[Pair<'_, N>],
    what: &str,
    limit: Duration,
    cmd: F,
) -> Vec<Result<String, StepError>>
where
    F: Fn(&MemberPlan) -> String,
{
    join_all(pairs.iter().map(|(m, n)| {
        let c = cmd(m);
        async move { run_on(*n, &c, what, limit).await }
    }))
    .await
}

/// The failures of a step, each naming its node once.
pub(super) fn failures<N>(
    pairs: &[Pair<'_, N>],
    results: &[Result<String, StepError>],
) -> Vec<String> {
    results
        .iter()
        .zip(pairs)
        .filter_map(|(r, (m, _))| r.as_ref().err().map(|e| named(&m.node, e)))
        .collect()
}

/// `e` as a sentence that names `node` once.
pub(super) fn named(node: &str, e: &StepError) -> String {
    let e = e.to_string();
    if e.starts_with(&format!("node {node}:")) {
        e
    } else {
        format!("{node}: {e}")
    }
}
