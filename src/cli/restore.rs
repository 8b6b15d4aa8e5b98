//! `sprayvault restore`: put a node's state back, showing the plan first.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::restore::{Action, Owners, Plan};
use sprayvault::source::Target;
use sprayvault::vault::Vault;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The node whose backed-up state to restore.
    node: String,
    #[command(flatten)]
    inventory: args::InventoryOpt,
    #[command(flatten)]
    identity: args::Identity,
    /// Which backup: a commit id, latest, latest~N, or a date (the last backup at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    /// Restore onto this address instead of the inventory's.
    #[arg(long, value_name = "ADDRESS")]
    to: Option<String>,
    /// Show the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace entries that differ on the target, and accept a different hostname.
    #[arg(long)]
    force: bool,
    /// Where a recorded owner or group name does not exist on the target, apply
    /// the recorded id instead of root.
    #[arg(long)]
    numeric_ids: bool,
    /// How long each step may take on the node (reading it for the plan,
    /// each file, each directory): a node that stops answering is cut off at
    /// it and the restore ends, exit 1 before anything was written, else 3
    /// (5m, 300s; a plain number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = args::seconds)]
    step_timeout: Duration,
    #[command(flatten)]
    ssh: args::Ssh,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    sprayvault::paths::check_node_name(&a.node).map_err(|e| super::UsageError(e.to_string()))?;
    let vault = Vault::open(g.vault_dir()?)?;
    let trusted = super::trust::authenticate(g, &vault, &[])?;
    let identity = a.identity.load()?;
    let backup = trusted.backup(a.at.as_deref())?;
    super::trust::say_age(g, &backup);
    backup.node(&a.node)?;
    let mut target = match &a.inventory.inventory {
        Some(path) => {
            let inv = sprayvault::inventory::load(path)?;
            match inv.hosts.get(&a.node) {
                Some(h) => Target::from_host(h),
                None if a.to.is_some() => bare_target(&a.node),
                None => {
                    return Err(super::UsageError(format!(
                        "node {} is not in inventory {}; add it, or give --to ADDRESS",
                        a.node,
                        path.display()
                    ))
                    .into())
                }
            }
        }
        None if a.to.is_some() => bare_target(&a.node),
        None => {
            return Err(super::UsageError(
                "give -i INVENTORY (or --to ADDRESS) so sprayvault knows where the node is".into(),
            )
            .into())
        }
    };
    if let Some(to) = &a.to {
        target.address = to.clone();
    }
    let ssh = a.ssh.options();
    let progress = g.progress();
    let step = a.step_timeout;
    let node = a.node.clone();
    super::run::with_nodes(&[target.clone()], &ssh, false, async |nodes| {
        let remote = match nodes.get(&node) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(e.clone().into()),
            None => unreachable!("the one target"),
        };
        let owners = if a.numeric_ids {
            Owners::NumericIds
        } else {
            Owners::RootForMissing
        };
        let planning = sprayvault::restore::make_plan_with(
            &vault, &backup, &a.node, &identity, remote, owners,
        );
        let plan = match tokio::time::timeout(step, planning).await {
                Ok(p) => p?,
                Err(_) => anyhow::bail!(
                    "node {}: reading it for the restore plan did not finish within {} s: the node is frozen or unreachable, so it was cut off (raise --step-timeout if it is only slow); nothing was changed",
                    a.node,
                    step.as_secs()
                ),
            };
        print_plan(g, &plan)?;
        let conflicts = plan.conflicts();
        if !conflicts.is_empty() && !a.force {
            eprintln!("error: restore of {} refused: {}; check that {} is the machine you mean, then re-run with --force", a.node, conflicts.join("; "), target.display());
            return Ok(Exit::Refused);
        }
        if a.dry_run {
            if !g.json {
                println!("dry run: nothing was changed");
            }
            return Ok(Exit::Success);
        }
        let report = sprayvault::restore::apply_within(&plan, remote, &progress, step).await?;
        if g.json {
            output::json(&report)?;
        } else {
            for (path, why) in &report.errors {
                println!("FAILED {path}: {why}");
            }
            match &report.trust_store {
                Some(sprayvault::restore::TrustStore::Updated) => {
                    println!("trust store updated (update-ca-certificates)")
                }
                Some(sprayvault::restore::TrustStore::NotUpdated(why)) => {
                    println!("FAILED trust store: {why}")
                }
                None => {}
            }
            println!(
                    "restored {} from {}: {} created, {} replaced, {} updated, {} unchanged, {} files verified, {} errors",
                    plan.node,
                    &plan.commit[..10],
                    report.created,
                    report.replaced,
                    report.updated,
                    report.left,
                    report.verified,
                    report.errors.len()
                );
        }
        if let Some(why) = &report.cut_off {
            eprintln!("error: {why}");
        }
        let trusted = !matches!(
            report.trust_store,
            Some(sprayvault::restore::TrustStore::NotUpdated(_))
        );
        anyhow::Ok(if report.errors.is_empty() && trusted {
            Exit::Success
        } else {
            Exit::Partial
        })
    })
}

fn bare_target(node: &str) -> Target {
    Target {
        node: node.to_string(),
        address: String::new(),
        port: None,
        user: None,
        key_file: None,
        become_: false,
    }
}

fn print_plan(g: &Global, plan: &Plan) -> anyhow::Result<()> {
    if g.json {
        return output::json(plan);
    }
    println!(
        "restore plan for {} onto {} (hostname {}) from backup {} ({})",
        plan.node,
        plan.target,
        plan.target_hostname,
        &plan.commit[..10],
        sprayvault::vault::rfc3339(plan.backup_time)
    );
    let mut t = output::Table::new(&["ACTION", "KIND", "MODE/OWNER", "PATH", "NOTE"]);
    for i in &plan.items {
        t.row(vec![
            i.action.word().to_string(),
            i.kind.to_string(),
            i.want.clone(),
            i.path.clone(),
            i.detail.clone().unwrap_or_default(),
        ]);
    }
    t.print();
    println!(
        "{} to create, {} to replace, {} to update, {} unchanged",
        plan.count(Action::Create),
        plan.count(Action::Replace),
        plan.count(Action::Update),
        plan.count(Action::Leave)
    );
    Ok(())
}
