//! `sprayvault etcd restore`: bring every etcd member back from one
//! snapshot when quorum is lost. Shows the plan; acts only with `--yes`.

use crate::cli::exit::Exit;
use crate::cli::{args, output, Global};
use sprayvault::etcd::env::deployment_refusal;
use sprayvault::etcd::restore::{self, Commands, RestorePlan};
use sprayvault::source::Target;
use sprayvault::vault::{rfc3339, Vault};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Which snapshot: latest (default), its name, an etcd revision, a backup
    /// (commit id, latest~N), or a date (the last taken at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    #[command(flatten)]
    identity: args::Identity,
    #[command(flatten)]
    inventory: args::Inventory,
    /// Carry the plan out (without it, the plan is shown and nothing changes).
    #[arg(long)]
    yes: bool,
    /// Accept members whose /etc/etcd.env differs from the vault's copy.
    #[arg(long)]
    force: bool,
    /// Command that stops etcd on a member (run as root there).
    #[arg(long, value_name = "CMD", default_value_t = Commands::default().stop)]
    stop_command: String,
    /// Command that starts etcd on a member (run as root there).
    #[arg(long, value_name = "CMD", default_value_t = Commands::default().start)]
    start_command: String,
    /// How long each step may take on each member (streaming a piece of the
    /// snapshot, restoring it, stopping etcd, each command): a member that
    /// stops answering is cut off at it and the run ends, exit 1 (5m, 300s;
    /// a plain number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = args::seconds)]
    step_timeout: Duration,
    /// How long to wait, once every member is stopped and swapped, for all
    /// of them to start and become healthy (default: --step-timeout).
    #[arg(long, value_name = "DURATION", value_parser = args::seconds)]
    timeout: Option<Duration>,
    #[command(flatten)]
    ssh: args::Ssh,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let identity = a.identity.load()?;
    let snaps = super::readable(g, &vault)?;
    let trusted = crate::cli::trust::authenticate(g, &vault, &[])?;
    let snap = super::pick_signed(g, &trusted, &snaps, a.at.as_deref())?;
    let inv = sprayvault::inventory::load(&a.inventory.inventory)?;
    let hosts: Vec<_> = inv.hosts.values().filter(|h| h.is_etcd()).collect();
    let refusals: Vec<String> = hosts
        .iter()
        .filter_map(|h| {
            let kind = h.vars.get("etcd_deployment_type").and_then(|v| v.as_str());
            deployment_refusal(&h.name, kind)
        })
        .collect();
    if !refusals.is_empty() {
        for r in &refusals {
            eprintln!("error: {r}");
        }
        eprintln!("etcd restore refused; nothing was changed");
        return Ok(Exit::Refused);
    }
    let targets: Vec<Target> = hosts.into_iter().map(Target::from_host).collect();
    if targets.is_empty() {
        return Err(crate::cli::UsageError(format!(
            "inventory {} has no hosts in its etcd group; an etcd restore restores every member of it",
            a.inventory.inventory.display()
        ))
        .into());
    }
    let ssh = a.ssh.options();
    let commands = Commands {
        stop: a.stop_command.clone(),
        start: a.start_command.clone(),
    };
    let progress = g.progress();
    crate::cli::run::with_nodes(&targets, &ssh, false, async |nodes| {
        let unreachable: Vec<String> = nodes.unreachable().iter().map(|e| e.to_string()).collect();
        let remotes = nodes.open_ones();
        if !unreachable.is_empty() {
            anyhow::bail!(
                    "every etcd member must be reachable to restore them together, and {}; nothing was changed",
                    unreachable.join("; ")
                );
        }
        let plan = restore::make_plan(
            &trusted,
            &snap,
            &identity,
            &remotes,
            &commands,
            a.force,
            a.step_timeout,
        )
        .await?;
        print_plan(g, &plan)?;
        if !plan.problems.is_empty() {
            for p in &plan.problems {
                eprintln!("error: {p}");
            }
            eprintln!("etcd restore refused; nothing was changed");
            return Ok(Exit::Refused);
        }
        if !a.yes {
            eprintln!("nothing was changed: this restores every member above; re-run with --yes to carry it out");
            return Ok(Exit::Refused);
        }
        let report = restore::apply(
            &vault,
            &snap,
            &identity,
            &plan,
            &remotes,
            restore::Deadlines {
                step: a.step_timeout,
                healthy: a.timeout.unwrap_or(a.step_timeout),
            },
            &progress,
        )
        .await?;
        let healthy = report.members.iter().all(|m| m.healthy);
        if g.json {
            output::json(&report)?;
        } else {
            let mut t = output::Table::new(&["NODE", "MEMBER", "STATE", "REVISION", "OLD DATA"]);
            for m in &report.members {
                t.row(vec![
                    m.node.clone(),
                    m.member.clone(),
                    m.error.clone().unwrap_or_else(|| "healthy".into()),
                    m.revision
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.old_data.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            t.print();
            println!(
                "restored etcd snapshot {} (revision {}) onto {} members in {:.1} s: {}",
                report.snapshot,
                report.revision,
                report.members.len(),
                report.seconds,
                if healthy {
                    "all healthy".to_string()
                } else {
                    format!(
                        "{} not healthy",
                        report.members.iter().filter(|m| !m.healthy).count()
                    )
                }
            );
        }
        anyhow::Ok(if healthy {
            Exit::Success
        } else {
            Exit::Failure
        })
    })
}

fn print_plan(g: &Global, plan: &RestorePlan) -> anyhow::Result<()> {
    if g.json {
        return output::json(plan);
    }
    println!(
        "etcd restore plan: snapshot {} (taken {}, revision {}, {} keys, {} bytes, from etcd {})",
        plan.snapshot,
        rfc3339(plan.taken),
        plan.revision,
        plan.keys,
        plan.size,
        plan.etcd.as_deref().unwrap_or("of a version not recorded")
    );
    println!(
        "members as recorded in backup {} ({}): initial cluster {}{}",
        plan.backup,
        rfc3339(plan.backup_time),
        plan.initial_cluster,
        plan.cluster_token
            .as_deref()
            .map(|t| format!(", token {t}"))
            .unwrap_or_default()
    );
    let mut t = output::Table::new(&[
        "NODE",
        "MEMBER",
        "PEER URLS",
        "NOW",
        "TOOL",
        "DATA DIR",
        "OLD DATA GOES TO",
    ]);
    for m in &plan.members {
        t.row(vec![
            m.node.clone(),
            m.member.clone(),
            m.peer_urls.clone(),
            if m.answering {
                "answering"
            } else {
                "not answering"
            }
            .to_string(),
            format!(
                "{} {}{}",
                m.tool.tool,
                m.tool.version.as_deref().unwrap_or("?"),
                if m.tool.bump { " (bumps revision)" } else { "" }
            ),
            m.data_dir.clone(),
            if m.has_data {
                format!("{}/member", m.aside)
            } else {
                "- (no member/ now)".into()
            },
        ]);
    }
    t.print();
    println!(
        "steps: stream the snapshot to /var/tmp on each member and restore it beside the data; \
         then a script detached on each member stops etcd ({}) and moves the data in, and once every member is stopped \
         starts etcd everywhere ({}) (on its old data if the go never comes); wait until every member is healthy",
        plan.commands.stop, plan.commands.start
    );
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
