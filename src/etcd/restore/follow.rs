//! Steps 2 and 3 of an etcd restore as sprayvault sees them: following each
//! member's detached script through its state file, making the decision
//! (`go` or `abort`) on every member, and saying where each one ended up.

use super::members::run_on;
use super::plan::MemberPlan;
use super::script::{self, Data, State};
use crate::source::remote::shell_quote;
use crate::source::NodeFs;
use futures_util::future::join_all;
use std::time::Duration;
use tokio::time::Instant;

/// One member's detached script, as sprayvault follows it.
pub(super) struct Run<'a, N> {
    pub m: &'a MemberPlan,
    pub n: &'a N,
    /// The upload directory, where the script and its files are.
    pub dir: &'a str,
    pub launched: bool,
    pub state: Option<State>,
    /// The decision as the member holds it, once made.
    pub decision: Option<String>,
    /// Seconds its script waits for the decision.
    pub wait: u64,
    /// When it last answered a question.
    pub answered: Instant,
    /// It did not answer for a whole step: no longer asked.
    pub lost: bool,
}

impl<N> Run<'_, N> {
    /// Nothing more to ask it: not started, lost, or `done` holds.
    fn over(&self, done: fn(&State) -> bool) -> bool {
        !self.launched || self.lost || self.state.as_ref().is_some_and(done)
    }

    /// Its script finished on the restored data and started etcd.
    pub fn restored(&self) -> bool {
        matches!(
            self.state,
            Some(State::Done {
                data: Data::Restored,
                started: true,
                ..
            })
        )
    }
}

/// Asks every launched member for its state until `done(state)` holds for
/// all of them or `until` passes. A member that does not answer is asked
/// again over a new connection, until it has been silent for `step`: then
/// it is lost (its script fends for itself).
pub(super) async fn follow<N: NodeFs>(
    runs: &mut [Run<'_, N>],
    until: Instant,
    step: Duration,
    done: fn(&State) -> bool,
) {
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
            let out = run_on(run.n, &cmd, "reading the restore's state", limit).await;
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
pub(super) async fn tell<N: NodeFs>(runs: &mut [Run<'_, N>], decision: &str, limit: Duration) {
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
        run_on(run.n, &cmd, "telling the member what to do", limit)
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
pub(super) fn outcome<N>(run: &Run<'_, N>) -> String {
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

/// Removes the upload directories of the members whose script has ended
/// (the script itself removed the snapshot; a running one still needs its
/// directory, and the next run removes it).
pub(super) async fn remove_finished<N: NodeFs>(runs: &[Run<'_, N>], limit: Duration) {
    join_all(runs.iter().map(|run| async move {
        let ended = !run.launched || matches!(run.state, Some(State::Done { .. }));
        if ended {
            // A script that never ran leaves the restored copy to remove too.
            let cmd = if run.launched {
                format!("rm -rf {}", shell_quote(run.dir))
            } else {
                format!(
                    "rm -rf {} {}",
                    shell_quote(run.dir),
                    shell_quote(&run.m.restore_dir)
                )
            };
            let _ = run_on(run.n, &cmd, "removing the restore's files", limit).await;
        }
    }))
    .await;
}
