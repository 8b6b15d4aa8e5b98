//! `sprayvault backup`: the nightly run.

use super::exit::Exit;
use super::exit::Numbered;
use super::{args, output, Global};
use sprayvault::backup::{BackupOptions, BackupReport};
use sprayvault::metrics::{RunMetrics, SnapshotMetrics};
use sprayvault::vault::message::Outcome;
use sprayvault::vault::Vault;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: args::Inventory,
    /// Only back up hosts matching this Ansible pattern; the others keep their last state.
    #[arg(long, short = 'l', value_name = "PATTERN")]
    limit: Option<String>,
    #[command(flatten)]
    ssh: args::Ssh,
    /// Nodes read at the same time.
    #[arg(long, short = 'j', default_value_t = 8)]
    jobs: usize,
    #[command(flatten)]
    lock: args::LockWait,
    /// How long one node may take (connecting and reading, and the etcd
    /// snapshot each); a node past it is cut off and fails (exit 3).
    #[arg(long, default_value = "15m", value_parser = args::seconds, value_name = "DURATION")]
    node_timeout: std::time::Duration,
    /// Files larger than this are skipped with a per-file error (exit 3);
    /// a number of bytes with an optional K, M or G suffix.
    #[arg(long, default_value = "64M", value_parser = args::size, value_name = "SIZE")]
    max_file_size: u64,
    /// How long a node's SFTP server may answer nothing while a file's open
    /// waits; past it the file is skipped with a per-file error (exit 3: a
    /// FIFO swapped in, or a hanging file system) and the node is connected
    /// again for the rest.
    #[arg(long, default_value = "20s", value_parser = args::seconds, value_name = "DURATION")]
    stall_timeout: std::time::Duration,
    /// Back up on top of a newest commit this host did not sign (this host
    /// was rebuilt from the off-site copy and the old signing key is lost);
    /// readers then accept the new signer with `--accept-new-key`.
    #[arg(long)]
    adopt_history: bool,
    /// After committing, push the vault to its off-site remote (exit 9 if that fails).
    #[arg(long)]
    push: bool,
    /// Write a Prometheus textfile about this run (for node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// kubespray's directory, whose ansible.cfg says where the fact cache is.
    #[arg(long, value_name = "DIR")]
    ansible_dir: Option<PathBuf>,
    /// Do not take an etcd snapshot.
    #[arg(long)]
    no_etcd_snapshot: bool,
    /// The most an etcd snapshot may be (default: 4 times the last one,
    /// at least 256M; 8G for the first); a number of bytes with an optional
    /// K, M or G suffix.
    #[arg(long, value_parser = args::size, value_name = "SIZE")]
    etcd_snapshot_limit: Option<u64>,
    /// The control host's kubespray checkout, recorded with the inventory (default: the
    /// checkout the inventory lies in, as inventory/NAME/, else --ansible-dir).
    #[arg(long, value_name = "DIR")]
    kubespray_dir: Option<PathBuf>,
    /// Do not record the control host (inventory, credentials, kubespray version).
    #[arg(long, conflicts_with = "kubespray_dir")]
    no_control: bool,
    /// Do not back up Ansible's fact cache.
    #[arg(long, conflicts_with = "ansible_dir")]
    no_facts: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let metrics_file = a.metrics_file.clone();
    let result = backup(g, a);
    if let Some(path) = metrics_file {
        let m = match &result {
            Ok((exit, Some(r))) => {
                let count = |o: Outcome| r.nodes.iter().filter(|n| n.status == o).count();
                RunMetrics {
                    exit_code: exit.code(),
                    etcd_snapshot_ok: r.etcd.as_ref().map(|s| s.is_ok()),
                    nodes_ok: Some(count(Outcome::Ok)),
                    nodes_partial: Some(count(Outcome::Partial)),
                    nodes_failed: Some(count(Outcome::Failed)),
                    bytes_added: Some(r.bytes_added),
                    objects_added: Some(r.new_blobs),
                    soonest_cert_expiry: r.soonest_cert_expiry,
                    ..Default::default()
                }
            }
            Ok((exit, None)) => RunMetrics {
                exit_code: exit.code(),
                ..Default::default()
            },
            Err(e) => RunMetrics {
                exit_code: super::exit_for(e).code(),
                ..Default::default()
            },
        };
        write_metrics(g, m, started, &path);
    }
    result.map(|(exit, _)| exit)
}

/// Completes a run's metrics (the vault, its newest snapshot, end and
/// duration) and writes them to `path`; a file that cannot be written is a
/// warning, never the run's failure.
pub(super) fn write_metrics(
    g: &Global,
    mut m: RunMetrics,
    started: std::time::Instant,
    path: &std::path::Path,
) {
    if let Some(dir) = &g.vault {
        m.vault = dir.display().to_string();
        m.etcd_snapshot = newest_snapshot(dir);
    }
    m.end = time::OffsetDateTime::now_utc().unix_timestamp();
    m.duration_seconds = started.elapsed().as_secs_f64();
    if let Err(e) = m.write(path) {
        eprintln!(
            "warning: cannot write the metrics file {}: {e}",
            path.display()
        );
    }
}

/// `--push` after a run that stored something: exit 9 when it fails.
pub(super) fn push_after(
    g: &Global,
    vault: &Vault,
    ssh_config: Option<&std::path::Path>,
) -> Option<Exit> {
    match sprayvault::vault::replicate::push(vault, ssh_config) {
        Err(e) => {
            eprintln!("error: {e}");
            Some(Exit::PushFailed)
        }
        Ok(_) => {
            if !g.quiet {
                eprintln!("pushed to {}", vault.remote_url().unwrap_or_default());
            }
            None
        }
    }
}

/// The newest etcd snapshot in the vault, for the metrics: its age is what
/// an alert wants, whether or not this run's snapshot succeeded.
fn newest_snapshot(dir: &std::path::Path) -> Option<SnapshotMetrics> {
    let vault = Vault::open(dir).ok()?;
    let snaps = sprayvault::etcd::store::list(&vault).ok()?;
    snaps
        .iter()
        .max_by_key(|s| s.index.taken)
        .map(|s| SnapshotMetrics {
            taken: s.index.taken,
            size_bytes: s.index.size,
            revision: s.index.revision,
        })
}

fn backup(g: &Global, a: Args) -> anyhow::Result<(Exit, Option<BackupReport>)> {
    let vault = Vault::open(g.vault_dir()?)?;
    // Only the hosts --limit selects must be usable (checked by the backup).
    let inventory = sprayvault::inventory::read(&a.inventory.inventory)?;
    let facts = if a.no_facts {
        None
    } else {
        match sprayvault::facts::config::find(a.ansible_dir.as_deref()) {
            Ok(cache) => Some(cache),
            Err(e) if a.ansible_dir.is_some() => return Err(e.into()),
            Err(e) => {
                if !g.quiet {
                    eprintln!(
                        "facts: {e}; the fact cache is not backed up (--no-facts silences this)"
                    );
                }
                None
            }
        }
    };
    let opts = BackupOptions {
        facts,
        etcd_snapshot: !a.no_etcd_snapshot,
        etcd_snapshot_limit: a.etcd_snapshot_limit,
        control: (!a.no_control).then(|| sprayvault::control::ControlOptions {
            kubespray_dir: a.kubespray_dir.clone(),
            inventory: a.inventory.inventory.clone(),
            ansible_dir: a.ansible_dir.clone(),
        }),
        limit: a.limit.clone(),
        ssh: a.ssh.options(),
        jobs: a.jobs,
        lock_wait: a.lock.lock_wait,
        node_timeout: a.node_timeout.max(std::time::Duration::from_secs(1)),
        max_file_size: a.max_file_size,
        stall_timeout: a.stall_timeout.max(std::time::Duration::from_secs(1)),
        adopt_history: a.adopt_history,
    };
    let progress = g.progress();
    let report = super::run::block_on(sprayvault::backup::run(
        &vault, &inventory, &opts, &progress,
    ))??;
    drop(progress);
    if g.json {
        output::json(&report)?;
    } else {
        print_report(&report);
    }
    let mut exit = if report.partial {
        Exit::Partial
    } else {
        Exit::Success
    };
    if a.push {
        if let Some(failed) = push_after(g, &vault, opts.ssh.config_file.as_deref()) {
            exit = failed;
        }
    }
    Ok((exit, Some(report)))
}

fn print_report(r: &BackupReport) {
    let mut t = output::Table::new(&[
        "NODE", "STATUS", "FILES", "ADDED", "CHANGED", "REMOVED", "NOTE",
    ]);
    for n in &r.nodes {
        t.row(vec![
            n.node.clone(),
            n.status.word().to_string(),
            n.files.to_string(),
            n.added.to_string(),
            n.changed.to_string(),
            n.removed.to_string(),
            n.reason.clone().unwrap_or_default(),
        ]);
    }
    t.print();
    for n in &r.nodes {
        for (path, why) in &n.errors {
            println!("{}: {path}: {why}", n.node);
        }
    }
    match &r.etcd {
        Some(Ok(s)) => println!(
            "etcd snapshot: {} from {} ({}), revision {}, {} keys, {} bytes in {} packs, {} new blobs",
            s.reference.trim_start_matches("refs/sprayvault/etcd/"),
            s.member,
            s.node,
            s.revision,
            s.keys,
            s.size,
            s.packs,
            s.new_blobs
        ),
        Some(Err(why)) => println!("etcd snapshot FAILED: {why}"),
        None => {}
    }
    if let Some(c) = &r.control {
        print_control(c);
    }
    if let Some(f) = &r.facts {
        println!(
            "facts: {} stored, {} unchanged (volatile facts ignored), {} not in the cache{}",
            f.stored.len(),
            f.unchanged.len(),
            f.missing.len(),
            if f.errors.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable", f.errors.len())
            }
        );
        for (host, why) in &f.errors {
            println!("facts of {host}: {why}");
        }
    }
    println!(
        "{}, {} new objects ({} bytes)",
        r.summary(),
        r.new_blobs,
        r.bytes_added
    );
}

fn print_control(c: &sprayvault::control::ControlReport) {
    match (&c.dir, &c.version) {
        (Some(dir), Some(v)) => println!(
            "control host: {dir} (found by {}), kubespray {v}, {} files, {} added, {} changed, {} removed",
            c.found_by.as_deref().unwrap_or("-"),
            c.files,
            c.added,
            c.changed,
            c.removed
        ),
        _ => println!("control host {}: {}", c.status, c.note.as_deref().unwrap_or("")),
    }
    if c.dir.is_some() {
        if let Some(n) = &c.note {
            println!("control host note: {n}");
        }
    }
    for (path, why) in &c.errors {
        println!("control host: {path}: {why}");
    }
}
