//! `sprayvault preflight NODE...`: what a `cluster.yml --limit NODE...` run
//! needs, checked before it starts. Read-only.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::preflight::{self, Options, Report, Status};
use sprayvault::vault::Vault;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The hosts of the kubespray run's --limit (names in the inventory).
    #[arg(required = true, value_name = "NODE")]
    nodes: Vec<String>,
    #[command(flatten)]
    inventory: args::Inventory,
    /// kubespray's directory, whose ansible.cfg says where the fact cache is.
    #[arg(long, value_name = "DIR")]
    ansible_dir: Option<PathBuf>,
    #[command(flatten)]
    identity: args::IdentityOpt,
    #[command(flatten)]
    ssh: args::Ssh,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    for n in &a.nodes {
        sprayvault::paths::check_node_name(n).map_err(|e| super::UsageError(e.to_string()))?;
    }
    let inv = sprayvault::inventory::load(&a.inventory.inventory)?;
    if let Some(n) = a.nodes.iter().find(|n| !inv.hosts.contains_key(*n)) {
        return Err(super::UsageError(format!(
            "node {n} is not in inventory {}",
            a.inventory.inventory.display()
        ))
        .into());
    }
    // The vault, when one is given: read as any restore reads it.
    let identity = a.identity.load()?;
    let vault = match (&g.vault, &identity) {
        (Some(dir), Some(_)) => Some(Vault::open(dir)?),
        _ => None,
    };
    let trusted = vault
        .as_ref()
        .map(|v| super::trust::authenticate(g, v, &[]))
        .transpose()?;
    let backup = trusted.as_ref().map(|t| t.backup(None)).transpose()?;
    let ssh = a.ssh.options();
    let started = std::time::Instant::now();
    let gathered = super::run::block_on(preflight::gather(&Options {
        inventory: &inv,
        inventory_path: &a.inventory.inventory,
        limit: &a.nodes,
        ssh: &ssh,
        ansible_dir: a.ansible_dir.as_deref(),
        vault: match (&vault, &backup, &identity) {
            (Some(v), Some(b), Some(i)) => Some((v, b, i)),
            _ => None,
        },
        max_age: g.max_age.as_secs(),
    }))?;
    let report = Report {
        limit: a.nodes.clone(),
        checks: gathered.checks,
        seconds: started.elapsed().as_secs_f64(),
    };
    print(g, &report)?;
    Ok(if report.count(Status::Fail) > 0 {
        Exit::PreflightFailed
    } else {
        Exit::Success
    })
}

fn print(g: &Global, r: &Report) -> anyhow::Result<()> {
    if g.json {
        return output::json(r);
    }
    println!("preflight for cluster.yml --limit {}", r.limit.join(","));
    let mut t = output::Table::new(&["CHECK", "HOST", "STATUS", "DETAIL"]);
    for c in &r.checks {
        t.row(vec![
            c.area.to_string(),
            c.subject.clone(),
            c.status.word().to_string(),
            c.detail.clone(),
        ]);
    }
    t.print();
    let todo: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .filter_map(|c| c.fix.as_ref().map(|f| (c, f)))
        .collect();
    if !todo.is_empty() {
        println!("to do before the run:");
        for (c, f) in todo {
            println!(
                "  {} {}: {}",
                c.status.word(),
                sprayvault::term::escape(&c.subject),
                sprayvault::term::escape(f)
            );
        }
    }
    println!(
        "preflight of {}: {} checks, {} failed, {} warnings in {:.1} s{}",
        r.limit.join(","),
        r.checks.len(),
        r.count(Status::Fail),
        r.count(Status::Warn),
        r.seconds,
        if r.count(Status::Fail) == 0 {
            ": kubespray's --limit run can start"
        } else {
            ": fix those first"
        }
    );
    Ok(())
}
