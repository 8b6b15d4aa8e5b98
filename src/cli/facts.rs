//! `sprayvault facts restore` and `facts diff`: Ansible's fact cache.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::facts::{self, config};
use sprayvault::vault::{rfc3339, Vault};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write facts from a backup back into the cache (with a current timestamp).
    Restore(RestoreArgs),
    /// Which stable facts changed between two backups: facts diff [A] [B] [HOST].
    Diff(DiffArgs),
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// Hosts whose facts to restore; default every host the backup has facts for.
    hosts: Vec<String>,
    /// Which backup (commit id, latest, latest~N, or a date).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    #[command(flatten)]
    identity: args::Identity,
    /// kubespray's directory, whose ansible.cfg says where the fact cache is.
    #[arg(long, value_name = "DIR")]
    ansible_dir: Option<PathBuf>,
    #[command(flatten)]
    inventory: args::InventoryOpt,
    /// Overwrite facts in the cache that are newer than the backup's.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// [A] [B] [HOST]: two backups (default latest~1 and latest) and a host.
    args: Vec<String>,
    #[command(flatten)]
    identity: args::Identity,
}

pub fn run(g: &Global, c: Command) -> anyhow::Result<Exit> {
    match c {
        Command::Restore(a) => restore(g, a),
        Command::Diff(a) => diff(g, a),
    }
}

fn restore(g: &Global, a: RestoreArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let trusted = super::trust::authenticate(g, &vault, &[])?;
    let identity = a.identity.load()?;
    let backup = trusted.backup(a.at.as_deref())?;
    super::trust::say_age(g, &backup);
    let cache = config::find(a.ansible_dir.as_deref())?;
    let inventory = a
        .inventory
        .inventory
        .as_deref()
        .map(sprayvault::inventory::load)
        .transpose()?;
    let report = facts::restore::restore(
        &vault,
        &backup,
        &identity,
        &cache,
        inventory.as_ref(),
        &a.hosts,
        a.force,
    )?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if g.json {
        let restored: Vec<serde_json::Value> = report
            .restored
            .iter()
            .map(|r| serde_json::json!({"host": r.host, "path": r.path, "gathered": rfc3339(r.gathered)}))
            .collect();
        output::json(
            &serde_json::json!({"backup": backup.commit.to_string(), "restored": restored, "refused": report.refused}),
        )?;
    } else {
        for r in &report.restored {
            println!(
                "restored facts of {} (gathered {}) to {}",
                r.host,
                rfc3339(r.gathered),
                r.path.display()
            );
        }
        if !report.restored.is_empty() {
            println!(
                "restored files carry the current time: the {} cache treats facts older than fact_caching_timeout ({} s) as expired",
                match cache.plugin {
                    config::Plugin::Jsonfile => "jsonfile",
                    config::Plugin::Yaml => "yaml",
                },
                cache.timeout
            );
        }
    }
    for r in &report.refused {
        eprintln!("refused: {r}");
    }
    Ok(if report.refused.is_empty() {
        Exit::Success
    } else {
        Exit::Refused
    })
}

fn diff(g: &Global, a: DiffArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    super::trust::note_unpinned(g, &vault);
    let identity = a.identity.load()?;
    let mut revs = Vec::new();
    let mut host = None;
    for (i, arg) in a.args.iter().enumerate() {
        if i == a.args.len() - 1 && vault.resolve(Some(arg)).is_err() {
            host = Some(arg.clone());
        } else {
            revs.push(arg.clone());
        }
    }
    if revs.len() > 2 {
        return Err(super::UsageError(
            "facts diff takes at most two backups and a host: facts diff [A] [B] [HOST]".into(),
        )
        .into());
    }
    let old = vault
        .backup(vault.resolve(Some(revs.first().map(String::as_str).unwrap_or("latest~1")))?)?;
    let new =
        vault.backup(vault.resolve(Some(revs.get(1).map(String::as_str).unwrap_or("latest")))?)?;
    let cache = config::FactCache {
        plugin: config::Plugin::Jsonfile,
        dir: PathBuf::new(),
        prefix: String::new(),
        timeout: 0,
        config: None,
    };
    let hosts: std::collections::BTreeSet<&String> = old
        .facts
        .entries
        .keys()
        .chain(new.facts.entries.keys())
        .filter(|h| host.as_ref().is_none_or(|w| w == *h))
        .collect();
    if let Some(h) = &host {
        if hosts.is_empty() {
            return Err(facts::FactsError::NoFacts {
                rev: new.short_id(),
                host: h.clone(),
                known: new
                    .facts
                    .entries
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
    }
    let mut changes = Vec::new();
    for h in hosts {
        let read = |b| -> anyhow::Result<serde_json::Value> {
            Ok(match facts::read(&vault, b, h, &identity) {
                Ok(d) => facts::parse(&cache, &d),
                Err(facts::FactsError::NoFacts { .. }) => {
                    serde_json::Value::Object(Default::default())
                }
                Err(e) => return Err(e.into()),
            })
        };
        changes.extend(facts::diff(h, &read(&old)?, &read(&new)?));
    }
    if g.json {
        output::json(
            &serde_json::json!({"from": old.commit.to_string(), "to": new.commit.to_string(), "changes": changes}),
        )?;
        return Ok(Exit::Success);
    }
    println!(
        "facts diff {} .. {} (volatile facts left out)",
        old.short_id(),
        new.short_id()
    );
    if changes.is_empty() {
        println!("no changes");
    }
    let show = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|x| x.to_string())
            .unwrap_or_else(|| "(none)".into())
    };
    for c in &changes {
        println!(
            "~ {} {}: {} -> {}",
            c.host,
            c.fact,
            show(&c.old),
            show(&c.new)
        );
    }
    Ok(Exit::Success)
}
