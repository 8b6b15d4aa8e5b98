//! `sprayvault etcd snapshot`: an etcd-only run for an hourly timer.

use crate::cli::exit::{Exit, Numbered};
use crate::cli::{args, output, Global};
use sprayvault::etcd::run::SnapshotRunOptions;
use sprayvault::metrics::RunMetrics;
use sprayvault::vault::Vault;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: args::Inventory,
    #[command(flatten)]
    ssh: args::Ssh,
    #[command(flatten)]
    lock: args::LockWait,
    /// How long the snapshot may take; past it the run is cut off (exit 1).
    #[arg(long, default_value = "15m", value_parser = args::seconds, value_name = "DURATION")]
    node_timeout: std::time::Duration,
    /// The most the snapshot may be (default: 4 times the last one, at
    /// least 256M; 8G for the first); bytes with an optional K, M or G suffix.
    #[arg(long, value_parser = args::size, value_name = "SIZE")]
    etcd_snapshot_limit: Option<u64>,
    /// After storing it, push the vault to its off-site remote (exit 9 if that fails).
    #[arg(long)]
    push: bool,
    /// Write a Prometheus textfile about this run (its samples carry
    /// run="etcd-snapshot"; give it a file of its own beside the backup's).
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let metrics_file = a.metrics_file.clone();
    let result = snapshot(g, a);
    if let Some(path) = metrics_file {
        let mut m = match &result {
            Ok((exit, Some(r))) => RunMetrics {
                exit_code: exit.code(),
                etcd_snapshot_ok: Some(true),
                bytes_added: Some(r.bytes_added),
                objects_added: Some(r.new_blobs),
                ..Default::default()
            },
            Ok((exit, None)) => RunMetrics {
                exit_code: exit.code(),
                ..Default::default()
            },
            Err(e) => RunMetrics {
                exit_code: crate::cli::exit_for(e).code(),
                etcd_snapshot_ok: Some(false),
                ..Default::default()
            },
        };
        m.run = Some("etcd-snapshot".into());
        crate::cli::backup::write_metrics(g, m, started, &path);
    }
    result.map(|(exit, _)| exit)
}

fn snapshot(
    g: &Global,
    a: Args,
) -> anyhow::Result<(Exit, Option<sprayvault::etcd::SnapshotReport>)> {
    let vault = Vault::open(g.vault_dir()?)?;
    let inventory = sprayvault::inventory::read(&a.inventory.inventory)?;
    let opts = SnapshotRunOptions {
        ssh: a.ssh.options(),
        lock_wait: a.lock.lock_wait,
        timeout: a.node_timeout.max(std::time::Duration::from_secs(1)),
        limit: a.etcd_snapshot_limit,
    };
    let progress = g.progress();
    let started = std::time::Instant::now();
    let report = crate::cli::run::block_on(sprayvault::etcd::run::run(
        &vault,
        &inventory,
        &a.inventory.inventory.display().to_string(),
        &opts,
        &progress,
    ))?;
    let r = report?;
    drop(progress);
    if g.json {
        output::json(&r)?;
    } else {
        println!(
            "etcd snapshot: {} from {} ({}), revision {}, {} keys, {} bytes in {} packs, {} new blobs ({} bytes), in {:.1} s",
            r.reference.trim_start_matches(sprayvault::etcd::store::PREFIX),
            r.node,
            r.member,
            r.revision,
            r.keys,
            r.size,
            r.packs,
            r.new_blobs,
            r.bytes_added,
            started.elapsed().as_secs_f64()
        );
    }
    let pushed = a
        .push
        .then(|| crate::cli::backup::push_after(g, &vault, opts.ssh.config_file.as_deref()));
    let exit = pushed.flatten().unwrap_or(Exit::Success);
    Ok((exit, Some(r)))
}
