//! `sprayvault replace`: bring a dead or reinstalled node back as the node
//! it was, its etcd member included. Shows the plan; acts only with `--yes`.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::etcd::restore::Commands;
use sprayvault::replace::{self, EtcdAction, ReplacePlan, ReplaceReport};
use sprayvault::restore::Action;
use sprayvault::source::{Remote, Target};
use sprayvault::vault::Vault;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The node to replace (its name in the inventory).
    node: String,
    #[command(flatten)]
    inventory: args::Inventory,
    #[command(flatten)]
    identity: args::Identity,
    /// Which backup: a commit id, latest, latest~N, or a date (the last backup at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    /// Carry the plan out (without it, the plan is shown and nothing changes).
    #[arg(long)]
    yes: bool,
    /// Accept a machine with another hostname, and overwrite files on it that differ from the backup.
    #[arg(long)]
    force: bool,
    /// Command that starts etcd on the node (run as root there).
    #[arg(long, value_name = "CMD", default_value_t = Commands::default().start)]
    start_command: String,
    /// Command that stops etcd on the node before its data is moved aside (run as root there).
    #[arg(long, value_name = "CMD", default_value_t = Commands::default().stop)]
    stop_command: String,
    /// How long to wait for the membership changes, for etcd to start and catch up, and for
    /// health (5m, 300s; a plain number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = args::seconds)]
    timeout: Duration,
    /// kubespray's directory, whose ansible.cfg says where the fact cache is.
    #[arg(long, value_name = "DIR")]
    ansible_dir: Option<PathBuf>,
    #[command(flatten)]
    ssh: args::Ssh,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    sprayvault::paths::check_node_name(&a.node).map_err(|e| super::UsageError(e.to_string()))?;
    let vault = Vault::open(g.vault_dir()?)?;
    // Signed by the pinned key before anything is read from it.
    let trusted = super::trust::authenticate(g, &vault, &[])?;
    let identity = a.identity.load()?;
    let backup = trusted.backup(a.at.as_deref())?;
    super::trust::say_age(g, &backup);
    let inv = sprayvault::inventory::load(&a.inventory.inventory)?;
    let host = inv.hosts.get(&a.node).ok_or_else(|| {
        super::UsageError(format!(
            "node {} is not in inventory {}; a replacement takes the inventory's place for it: add it there first",
            a.node,
            a.inventory.inventory.display()
        ))
    })?;
    let target = Target::from_host(host);
    let others: Vec<Target> = if host.is_etcd() {
        inv.etcd_order
            .iter()
            .filter(|n| **n != a.node)
            .filter_map(|n| inv.hosts.get(n))
            .map(Target::from_host)
            .collect()
    } else {
        Vec::new()
    };
    let ssh = a.ssh.options();
    let commands = Commands {
        stop: a.stop_command.clone(),
        start: a.start_command.clone(),
    };
    let fact_cache = sprayvault::facts::config::find(a.ansible_dir.as_deref());
    let progress = g.progress();
    let mut targets = vec![target];
    targets.extend(others);
    super::run::with_nodes(&targets, &ssh, false, async |nodes| {
        let gathered =
            replace::gather(&vault, &backup, &identity, &inv, &a.node, nodes, a.force).await?;
        let plan = replace::decide(&gathered.observed);
        print_plan(g, &plan, &gathered, &commands, &fact_cache)?;
        if !plan.refusals.is_empty() {
            for r in &plan.refusals {
                eprintln!("error: {r}");
            }
            eprintln!("replacement of {} refused; nothing was changed", a.node);
            return Ok(Exit::Refused);
        }
        if !a.yes {
            eprintln!("nothing was changed: re-run with --yes to carry out the steps above");
            return Ok(Exit::Refused);
        }
        let node = match nodes.get(&a.node) {
            Some(Ok(r)) => r,
            _ => unreachable!("a plan without refusals has reached the node"),
        };
        let others: Vec<&Remote> = nodes
            .each()
            .filter(|(n, _)| *n != a.node)
            .filter_map(|(_, r)| r.ok())
            .collect();
        let inventory = a.inventory.inventory.display().to_string();
        let report = replace::apply(&replace::Context {
            vault: &vault,
            backup: &backup,
            identity: &identity,
            plan: &plan,
            gathered: &gathered,
            node,
            others: &others,
            commands: &commands,
            timeout: a.timeout,
            fact_cache: &fact_cache,
            inventory: &inventory,
            progress: &progress,
        })
        .await;
        print_report(g, &report)?;
        anyhow::Ok(if report.failed.is_some() {
            Exit::Failure
        } else if report.warnings.len() > plan.warnings.len() {
            Exit::Partial
        } else {
            Exit::Success
        })
    })
}

fn print_plan(
    g: &Global,
    plan: &ReplacePlan,
    gathered: &replace::Gathered,
    commands: &Commands,
    fact_cache: &Result<
        sprayvault::facts::config::FactCache,
        sprayvault::facts::config::FactsConfigError,
    >,
) -> anyhow::Result<()> {
    if g.json {
        return output::json(&serde_json::json!({"plan": plan}));
    }
    println!(
        "replacement plan for {} from backup {}",
        plan.node, plan.backup
    );
    let o = &gathered.observed;
    match &o.target {
        Ok(t) => println!("1. preflight: {} answers as {:?}", plan.node, t.hostname),
        Err(why) => println!("1. preflight: {} cannot be reached: {why}", plan.node),
    }
    if let Some(e) = &o.etcd {
        let mut t = output::Table::new(&["MEMBER HOST", "ETCD_NAME", "HEALTH"]);
        for m in &e.others {
            t.row(vec![
                m.node.clone(),
                m.name.clone().unwrap_or_else(|| "-".into()),
                match &m.health {
                    Ok(()) => "healthy".into(),
                    Err(w) => w.clone(),
                },
            ]);
        }
        t.print();
    }
    match &gathered.restore {
        Some(r) => println!(
            "2. restore files: {} to create, {} to replace, {} to update, {} unchanged (as `sprayvault restore` does; trust store updated if CA certificates change)",
            r.count(Action::Create),
            r.count(Action::Replace),
            r.count(Action::Update),
            r.count(Action::Leave)
        ),
        None => println!("2. restore files: -"),
    }
    match &plan.etcd {
        None if o.etcd.is_none() => println!("3. etcd: not a member (a worker): nothing to do"),
        None => println!("3. etcd: cannot be planned (see the errors)"),
        Some(e) => {
            println!(
                "3. etcd member {} ({}), {} voting members, {} healthy besides it, membership changed through {}:",
                e.member,
                e.peer_urls.join(","),
                e.voters,
                e.healthy,
                e.via
            );
            match &e.action {
                EtcdAction::Replace { remove } => {
                    println!("   stop etcd on {} ({})", plan.node, commands.stop);
                    match remove {
                        Some(m) => println!(
                            "   member remove {} ({}{})",
                            m.id,
                            if m.name.is_empty() { "never started" } else { &m.name },
                            if m.learner { ", a learner" } else { "" }
                        ),
                        None => println!("   no member to remove (none has the name or peer URL)"),
                    }
                    println!(
                        "   member add {} --peer-urls {} --learner",
                        e.member,
                        e.peer_urls.join(",")
                    );
                    println!("   write /etc/etcd.env: ETCD_INITIAL_CLUSTER_STATE=existing, ETCD_INITIAL_CLUSTER as member add reports it");
                    println!("   move the content of {} aside to {}/.sprayvault-before-TIME", e.data_dir, e.data_dir);
                    println!("   start etcd ({}), promote the learner once caught up, endpoint health on every member", commands.start);
                }
                EtcdAction::Promote { id } => println!(
                    "   learner {id} of an earlier run is running: promote it, endpoint health on every member"
                ),
                EtcdAction::Done { id } => println!(
                    "   member {id} is a healthy voting member already: endpoint health on every member"
                ),
            }
        }
    }
    match fact_cache {
        Ok(c) => println!(
            "4. fact cache {}: restore every other host's facts as of the backup, drop {}'s",
            c.dir.display(),
            plan.node
        ),
        Err(why) => println!("4. fact cache: skipped ({why})"),
    }
    println!(
        "5. print what is left: kubectl delete node, cluster.yml --limit {}",
        plan.node
    );
    for step in &plan.first_control_plane {
        println!("   first control-plane host: {step}");
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    Ok(())
}

fn print_report(g: &Global, r: &ReplaceReport) -> anyhow::Result<()> {
    if g.json {
        return output::json(r);
    }
    let mut t = output::Table::new(&["STEP", "TIME", "OUTCOME"]);
    for s in &r.steps {
        t.row(vec![
            s.step.to_string(),
            format!("{:.1} s", s.seconds),
            s.outcome.clone(),
        ]);
    }
    t.print();
    for w in &r.warnings {
        println!("warning: {w}");
    }
    if let Some(why) = &r.failed {
        println!("FAILED: {why}");
        println!(
            "replacement of {} stopped after {} steps in {:.1} s",
            r.node,
            r.steps.len(),
            r.seconds
        );
        return Ok(());
    }
    println!("left to do:");
    for l in &r.left {
        println!("  {l}");
    }
    println!(
        "replaced {} from backup {} in {:.1} s{}",
        r.node,
        r.backup,
        r.seconds,
        r.member_id
            .as_deref()
            .map(|id| format!(", etcd member {id}"))
            .unwrap_or_default()
    );
    Ok(())
}
