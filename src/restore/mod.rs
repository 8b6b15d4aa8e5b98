//! Putting a node's recorded state back onto a machine, before kubespray runs.
//!
//! A restore is two steps: [`plan::make_plan`] compares the backup with the
//! target and changes nothing; [`apply::apply`] carries the plan out. Every
//! file is written under a temporary name in its own directory, given its mode
//! and owner, renamed into place, and read back to check its hash. A restore
//! never writes outside the paths recorded for the node, and never through a
//! symlink where the backup recorded a directory. Directories it creates get
//! the mode and owner the backup recorded from the start. When certificates
//! under `/usr/local/share/ca-certificates` were restored it runs
//! `update-ca-certificates`, so the node's trust store holds the cluster CAs.
//! [`apply_within`] bounds each of those steps: a node that stops answering
//! ends the restore at the deadline, with the step named, instead of hanging it.

pub(crate) mod apply;
mod hold;
pub mod plan;
#[cfg(test)]
mod tests;

use crate::source::SourceError;
use crate::vault::VaultError;
use thiserror::Error;

pub use apply::{apply, apply_within, put_file, RestoreReport, TrustStore, CA_DIR, NO_DEADLINE};
pub use plan::{make_plan, make_plan_with, Action, Owners, Plan, PlanItem};

#[derive(Debug, Error)]
pub enum RestoreError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("node {node}: {path}: {why}")]
    Refused {
        node: String,
        path: String,
        why: String,
    },
}

impl crate::error::Classify for RestoreError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            RestoreError::Vault(v) => v.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}
