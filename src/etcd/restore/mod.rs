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

pub mod apply;
pub mod plan;
#[cfg(test)]
mod rules;
pub mod script;
pub mod tool;

use crate::source::SourceError;
use crate::vault::VaultError;
use thiserror::Error;

pub use apply::{apply, Deadlines, MemberResult, RestoreReport};
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
    /// A step failed; the message says what state each member was left in.
    #[error("{0}")]
    Failed(String),
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
