//! Disaster recovery when etcd has lost quorum: every member of the
//! inventory's `etcd` group gets the same snapshot, restored with the
//! member's own name, peer URLs and initial cluster as the vault's copy of
//! its `/etc/etcd.env` records them.
//!
//! Like a node restore it is two steps. [`plan::make_plan`] reads the
//! vault and every member and changes nothing. [`apply::apply`] then:
//!
//! 1. streams the decrypted snapshot to a 0600 file under `/var/tmp` on
//!    every member (its sha256 trailer checked on the way; the plaintext is
//!    never written on the control host), and runs `snapshot restore` into
//!    a new directory beside the member's data (`DATA/.sprayvault-restore-T`)
//!    with `etcdutl` where the member has it (`etcdctl` on etcd 3.4), and
//!    `--bump-revision --mark-compacted` where that etcdutl has them
//!    (3.5.10 and later; the plan warns when it has not, see [`tool`]).
//!    etcd keeps running meanwhile; a failure here changes nothing;
//! 2. writes a script into that root-only upload directory and starts it
//!    detached from the connection ([`script`]): it stops etcd, waits for
//!    bbolt's lock to go, moves `DATA/member` aside to
//!    `DATA/.sprayvault-before-T/member` (never deleted) and the restored
//!    `member` into its place, owned like `DATA`, and waits for the decision;
//! 3. once every member is stopped and swapped, gives the go to all at once
//!    (each starts etcd and waits for the others' quorum), and waits until
//!    every member answers `endpoint health`. Without the go (a failed
//!    member, a lost connection, a killed run) each script goes back to its
//!    old data and starts etcd by itself.
//!
//! Every command, every piece of the upload and every wait has a deadline
//! ([`Deadlines`]): a member that stops answering ends the run with its name
//! and the step. The uploaded snapshot and unused restored copies are removed
//! whatever happens; what a run cut off leaves, the next one sweeps first.

pub(crate) mod apply;
#[cfg(test)]
mod apply_tests;
mod follow;
mod members;
pub(crate) mod plan;
#[cfg(test)]
mod rules;
pub(crate) mod script;
pub(crate) mod tool;
mod upload;

use crate::source::SourceError;
use crate::vault::VaultError;
use thiserror::Error;

pub use apply::{apply, MemberResult, RestoreReport};
pub use members::Deadlines;
pub use plan::{make_plan, MemberPlan, RestorePlan};

/// The commands that stop and start etcd on a member, run through the
/// member's shell (as root, through `sudo -n` when the inventory says
/// `become`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Commands {
    pub stop: String,
    pub start: String,
}

impl Default for Commands {
    /// kubespray runs etcd as the systemd unit `etcd.service`, both for
    /// `etcd_deployment_type: host` and for its container deployments.
    fn default() -> Self {
        Commands {
            stop: "systemctl stop etcd".into(),
            start: "systemctl start etcd".into(),
        }
    }
}

#[derive(Debug, Error)]
pub enum EtcdRestoreError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The restore cannot be carried out safely; nothing was changed.
    #[error("{0}")]
    Refused(String),
    #[error("node {0}: no connection to it")]
    NoConnection(String),
    #[error("node {node}: looking at etcd's data directory and tools did not finish within {} s: the node is frozen or unreachable, so it was cut off (raise --step-timeout if it is only slow); nothing was changed", .limit.as_secs())]
    ProbeCutOff {
        node: String,
        limit: std::time::Duration,
    },
    /// A step before any member was stopped failed on the members named.
    #[error("{}", .step.say(.failures))]
    Unchanged {
        step: Unchanged,
        failures: Vec<String>,
    },
    #[error("etcd snapshot {0} does not match its sha256 trailer after reassembly; nothing was changed; run `sprayvault verify --full`")]
    Trailer(String),
    /// Not every member was stopped and swapped, so none got the go: each
    /// was told to go back to its old data.
    #[error("stopping etcd failed, so nothing was restored: {}; {}", .why.join("; "), if *.back { "etcd was started again on every member with its old data".to_string() } else { .members.join("; ") })]
    NotStopped {
        /// Why, one sentence per member.
        why: Vec<String>,
        /// Every member is back on its old data with etcd started.
        back: bool,
        /// Where each member ended up.
        members: Vec<String>,
    },
}

/// The steps that change nothing when they fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unchanged {
    /// Removing what an earlier run left.
    Sweep,
    /// Streaming the snapshot to the members.
    Upload,
    /// `snapshot restore` beside each member's data.
    Restore,
    /// Writing each member's script.
    Script,
}

impl Unchanged {
    fn say(&self, failures: &[String]) -> String {
        let f = failures.join("; ");
        match self {
            Unchanged::Sweep | Unchanged::Upload => format!("{f}; nothing was changed"),
            Unchanged::Restore => format!(
                "restoring the snapshot failed, nothing was changed and etcd was not stopped: {f}"
            ),
            Unchanged::Script => format!(
                "writing the restore script failed, nothing was changed and etcd was not stopped: {f}"
            ),
        }
    }
}

impl crate::error::Classify for EtcdRestoreError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            EtcdRestoreError::Refused(_) => crate::error::ErrorClass::Refused,
            EtcdRestoreError::Vault(v) => v.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}
