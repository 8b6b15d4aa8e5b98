//! `sprayvault backup`: the nightly run.

use super::{output, progress, Global};
use sprayvault::backup::{BackupOptions, BackupReport};
use sprayvault::exit::Exit;
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
    /// Seconds to wait for another run's lock before giving up (exit 5).
    #[arg(long, default_value_t = 0)]
    lock_wait: u64,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let inventory = sprayvault::inventory::load(&a.inventory)?;
    let opts = BackupOptions {
        limit: a.limit,
        ssh: SshOptions {
            config_file: a.ssh_config,
            connect_timeout: Duration::from_secs(a.connect_timeout),
        },
        jobs: a.jobs,
        lock_wait: Duration::from_secs(a.lock_wait),
    };
    let progress = progress::Stderr::new(g.quiet);
    let report = super::runtime()?.block_on(sprayvault::backup::run(
        &vault, &inventory, &opts, &progress,
    ))?;
    drop(progress);
    if g.json {
        output::json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(if report.partial {
        Exit::Partial
    } else {
        Exit::Success
    })
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
    println!(
        "{}, {} new objects ({} bytes)",
        r.summary(),
        r.new_blobs,
        r.bytes_added
    );
}
