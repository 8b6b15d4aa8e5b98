//! `sprayvault backup`: the nightly run.

use super::{output, progress, Global};
use sprayvault::backup::{BackupOptions, BackupReport};
use sprayvault::exit::Exit;
use sprayvault::metrics::RunMetrics;
use sprayvault::source::SshOptions;
use sprayvault::vault::Vault;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The kubespray inventory (file or directory).
    #[arg(short = 'i', long = "inventory", value_name = "PATH")]
    inventory: PathBuf,
    /// Only back up hosts matching this Ansible pattern; the others keep their last state.
    #[arg(long, short = 'l', value_name = "PATTERN")]
    limit: Option<String>,
    /// ssh configuration file, passed to ssh as -F.
    #[arg(long, short = 'F', value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Nodes read at the same time.
    #[arg(long, short = 'j', default_value_t = 8)]
    jobs: usize,
    /// Seconds to wait for ssh to connect to a node.
    #[arg(long, default_value_t = 15)]
    connect_timeout: u64,
    /// Seconds one node may take (connecting and reading, and the etcd
    /// snapshot each); a node past it is cut off and fails (exit 3).
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    node_timeout: u64,
    /// Files larger than this are skipped with a per-file error (exit 3);
    /// a number of bytes with an optional K, M or G suffix.
    #[arg(long, default_value = "64M", value_parser = parse_size, value_name = "SIZE")]
    max_file_size: u64,
    /// Seconds to wait for another run's lock before giving up (exit 5).
    #[arg(long, default_value_t = 0)]
    lock_wait: u64,
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
    /// Do not back up Ansible's fact cache.
    #[arg(long, conflicts_with = "ansible_dir")]
    no_facts: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let metrics_file = a.metrics_file.clone();
    let result = backup(g, a);
    if let Some(path) = metrics_file {
        let mut m = match &result {
            Ok((exit, Some(r))) => RunMetrics {
                exit_code: exit.code(),
                nodes_ok: Some(r.nodes.iter().filter(|n| n.status == "ok").count()),
                nodes_partial: Some(r.nodes.iter().filter(|n| n.status == "partial").count()),
                nodes_failed: Some(r.nodes.iter().filter(|n| n.status == "failed").count()),
                bytes_added: Some(r.bytes_added),
                objects_added: Some(r.new_blobs),
                soonest_cert_expiry: r.soonest_cert_expiry,
                ..Default::default()
            },
            Ok((exit, None)) => RunMetrics {
                exit_code: exit.code(),
                ..Default::default()
            },
            Err(e) => RunMetrics {
                exit_code: super::exit_for(e).code(),
                ..Default::default()
            },
        };
        m.end = time::OffsetDateTime::now_utc().unix_timestamp();
        m.duration_seconds = started.elapsed().as_secs_f64();
        if let Err(e) = m.write(&path) {
            eprintln!(
                "warning: cannot write the metrics file {}: {e}",
                path.display()
            );
        }
    }
    result.map(|(exit, _)| exit)
}

fn backup(g: &Global, a: Args) -> anyhow::Result<(Exit, Option<BackupReport>)> {
    let vault = Vault::open(g.vault_dir()?)?;
    let inventory = sprayvault::inventory::load(&a.inventory)?;
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
        limit: a.limit.clone(),
        ssh: SshOptions {
            config_file: a.ssh_config.clone(),
            connect_timeout: Duration::from_secs(a.connect_timeout),
        },
        jobs: a.jobs,
        lock_wait: Duration::from_secs(a.lock_wait),
        node_timeout: Duration::from_secs(a.node_timeout.max(1)),
        max_file_size: a.max_file_size,
    };
    let progress = progress::Stderr::new(g.quiet);
    let rt = super::runtime()?;
    let report = rt.block_on(sprayvault::backup::run(
        &vault, &inventory, &opts, &progress,
    ));
    // What a node cut off at its deadline left (its ssh is killed) must not
    // hold the end of the run.
    rt.shutdown_timeout(Duration::from_secs(1));
    let report = report?;
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
        if let Err(e) = sprayvault::vault::replicate::push(&vault, opts.ssh.config_file.as_deref())
        {
            eprintln!("error: {e}");
            exit = Exit::PushFailed;
        } else if !g.quiet {
            eprintln!("pushed to {}", vault.remote_url().unwrap_or_default());
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
            n.status.clone(),
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
            "etcd snapshot: {} from {} ({}), revision {}, {} keys, {} bytes in {} chunks, {} new",
            s.reference.trim_start_matches("refs/sprayvault/etcd/"),
            s.member,
            s.node,
            s.revision,
            s.keys,
            s.size,
            s.chunks,
            s.new_chunks
        ),
        Some(Err(why)) => println!("etcd snapshot FAILED: {why}"),
        None => {}
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

/// `123`, `64K`, `64M`, `2G` (powers of 1024) as a number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => {
            return Err(format!(
                "{s:?}: use a number of bytes with an optional K, M or G"
            ))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or(format!(
            "{s:?}: use a number of bytes with an optional K, M or G"
        ))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }
}
