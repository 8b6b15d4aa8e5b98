//! Replacing a dead or reinstalled node end to end, before kubespray runs
//! `cluster.yml --limit NODE` on it.
//!
//! [`gather::gather`] reads the vault, the node and every other etcd member
//! (each through its own connection and admin certificate) and changes
//! nothing; [`plan::decide`] is a pure function from that to the steps and
//! every refusal; [`apply::apply`] carries the steps out:
//!
//! 1. preflight (the plan): the node is reachable and is the node, the
//!    backup has it; for an etcd member the others are healthy enough that
//!    changing the membership keeps quorum, and the member name recorded in
//!    the vault is the inventory's `etcd_member_name`;
//! 2. the node's files are restored as `sprayvault restore` does (its
//!    `/etc/etcd.env` is written in step 3);
//! 3. an etcd member: etcd stopped on the node; the old member removed (found
//!    by name or peer URL); the member added back as a learner with the same
//!    name and peer URLs; `/etc/etcd.env` written with
//!    `ETCD_INITIAL_CLUSTER_STATE=existing` and the `ETCD_INITIAL_CLUSTER`
//!    `member add` reported; the data directory's content moved aside (never
//!    deleted); etcd started; the learner promoted once it has caught up;
//!    `endpoint health` on every member;
//! 4. the Ansible fact cache: every other host's facts as of the backup
//!    (newer cached ones are kept), the node's own dropped so Ansible gathers
//!    them from the new machine;
//! 5. what is left, as commands.
//!
//! A learner has no vote, so a failure after it was added leaves the cluster
//! as healthy as it was; re-running finds the learner (by its peer URL) and
//! carries on: a running learner is promoted, one that never started is
//! removed and added again.

pub(crate) mod apply;
pub(crate) mod gather;
pub(crate) mod plan;

use crate::restore::RestoreError;
use crate::source::SourceError;
use crate::vault::VaultError;
use thiserror::Error;

pub use apply::{apply, Context, ReplaceReport};
pub use gather::{gather, Gathered};
pub use plan::{decide, EtcdAction, Refusal, ReplacePlan};

#[derive(Debug, Error)]
pub enum ReplaceError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

impl crate::error::Classify for ReplaceError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            ReplaceError::Vault(v) => v.class(),
            ReplaceError::Restore(r) => r.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}
