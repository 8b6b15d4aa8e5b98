//! An etcd-only run (`sprayvault etcd snapshot`): a snapshot from the first
//! member of the inventory's etcd group that gives one, stored as a signed
//! snapshot ref, under the same lock as a backup, and nothing else: no node
//! files, no commit on `main` (vault-layout, "etcd snapshots"). An hourly
//! timer calls it between the nightly backups.

use super::{snapshot, SnapshotReport};
use crate::error::{Classify, ErrorClass};
use crate::inventory::{Inventory, InventoryError};
use crate::progress::Progress;
use crate::source::{SshOptions, Target};
use crate::vault::session::Session;
use crate::vault::{Vault, VaultError};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SnapshotRunError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(
        "inventory {0} has no hosts in its etcd group: there is no member to take a snapshot from"
    )]
    NoMembers(String),
    #[error("no etcd member gave a snapshot, nothing was stored:\n{}", .0.join("\n"))]
    Failed(Vec<String>),
    #[error("the etcd snapshot did not end within {0} s; cut off, nothing was stored (raise --node-timeout if the cluster is only slow)")]
    Deadline(u64),
}

impl Classify for SnapshotRunError {
    fn class(&self) -> ErrorClass {
        match self {
            SnapshotRunError::Vault(v) => v.class(),
            SnapshotRunError::Inventory(i) => i.class(),
            _ => ErrorClass::Failed,
        }
    }
}

pub struct SnapshotRunOptions {
    pub ssh: SshOptions,
    pub lock_wait: Duration,
    /// How long the snapshot may take before it is cut off.
    pub timeout: Duration,
    /// The most bytes the snapshot stream may carry (None: 4 times the last).
    pub limit: Option<u64>,
}

/// Takes one snapshot. A run that fails leaves the vault as it found it:
/// the chunks it wrote are removed (`vault::mark`).
pub async fn run(
    vault: &Vault,
    inventory: &Inventory,
    inventory_name: &str,
    opts: &SnapshotRunOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport, SnapshotRunError> {
    let members: Vec<Target> = inventory
        .hosts
        .values()
        .filter(|h| h.is_etcd())
        .map(Target::from_host)
        .collect();
    if members.is_empty() {
        return Err(SnapshotRunError::NoMembers(inventory_name.to_string()));
    }
    let _lock = vault.lock(opts.lock_wait)?;
    let mark = vault.mark()?;
    let result = take(vault, &members, opts, progress).await;
    if let Err(e) = &result {
        let wrote = vault.discard_since(&mark);
        if matches!(e, SnapshotRunError::Vault(v) if v.is_disk_full()) {
            return Err(VaultError::DiskFull {
                dir: vault.dir().to_path_buf(),
                what: crate::vault::removed_what(wrote),
            }
            .into());
        }
    }
    result
}

async fn take(
    vault: &Vault,
    members: &[Target],
    opts: &SnapshotRunOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport, SnapshotRunError> {
    let parent = vault.head()?;
    let previous = vault.backup(parent)?;
    // The key, recipients and bindings of the vault as its newest backup
    // has them; the parent must be this host's, as for a backup.
    vault.check_ours(parent, previous.config.format)?;
    let mut session = Session::new(vault, &previous)?;
    super::announce(members, progress);
    let taken = snapshot(&mut session, members, &opts.ssh, opts.limit);
    match tokio::time::timeout(opts.timeout, taken).await {
        Err(_) => Err(SnapshotRunError::Deadline(opts.timeout.as_secs())),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(Err(reasons))) => Err(SnapshotRunError::Failed(reasons)),
        Ok(Ok(Ok(report))) => Ok(report),
    }
}
