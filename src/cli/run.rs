//! The one runner of every command that talks to nodes: it builds the
//! async runtime, opens the command's connections through the library's
//! [`Connections`] (all at once), runs the command's work, closes every
//! connection within [`CLOSE_WITHIN`] whatever the work returned, and shuts
//! the runtime down within [`SHUTDOWN`], so that a node cut off at a
//! deadline (its ssh killed) never holds the end of the run. Commands whose
//! library operation connects by itself run through [`block_on`]: backup
//! (node by node within `--jobs`, each under `--node-timeout`), etcd
//! snapshot (one member after another) and preflight (a [`Connections`] of
//! its own, opened and closed the same way).
//!
//! [`CLOSE_WITHIN`]: sprayvault::source::connections::CLOSE_WITHIN

use sprayvault::source::connections::Connections;
use sprayvault::source::{SshOptions, Target};
use std::future::Future;
use std::time::Duration;

/// How long what is still running at the end may take to stop.
const SHUTDOWN: Duration = Duration::from_secs(1);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs `work` to its end on a runtime of its own.
pub fn block_on<T>(work: impl Future<Output = T>) -> anyhow::Result<T> {
    let rt = runtime()?;
    let out = rt.block_on(work);
    rt.shutdown_timeout(SHUTDOWN);
    Ok(out)
}

/// Connects to `targets` (`read_only`: SFTP servers that change nothing),
/// runs `work` with the connections, and closes them all.
pub fn with_nodes<T>(
    targets: &[Target],
    ssh: &SshOptions,
    read_only: bool,
    work: impl AsyncFnOnce(&Connections) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    block_on(async {
        let nodes = Connections::open(targets, ssh, read_only).await;
        let out = work(&nodes).await;
        nodes.close().await;
        out
    })?
}
