//! `sprayvault diff`: what changed between two backups, certificates in meaning.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::history::inspect::{detail, Detail};
use sprayvault::history::{compare, ChangeKind, Contents};
use sprayvault::vault::manifest::{Kind, Manifest};
use sprayvault::vault::{rfc3339, Vault};

#[derive(clap::Args)]
pub struct Args {
    /// The older backup; default latest~1.
    a: Option<String>,
    /// The newer backup; default latest.
    b: Option<String>,
    /// Only this node.
    #[arg(long)]
    node: Option<String>,
    #[command(flatten)]
    identity: args::IdentityOpt,
}

#[derive(serde::Serialize)]
struct Item {
    #[serde(flatten)]
    change: sprayvault::history::Change,
    detail: Option<Detail>,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    super::trust::note_unpinned(g, &vault);
    let old = vault.backup(vault.resolve(Some(a.a.as_deref().unwrap_or("latest~1")))?)?;
    let new = vault.backup(vault.resolve(Some(a.b.as_deref().unwrap_or("latest")))?)?;
    if let Some(n) = &a.node {
        if !old.nodes.contains_key(n) && !new.nodes.contains_key(n) {
            new.node(n)?;
        }
    }
    let identity = a.identity.load()?;
    let mut contents = identity.as_ref().map(|i| Contents::new(&vault, i));
    let empty = Manifest::default();
    let names: std::collections::BTreeSet<&String> = old
        .nodes
        .keys()
        .chain(new.nodes.keys())
        .filter(|n| a.node.as_ref().is_none_or(|w| w == *n))
        .collect();
    let mut items = Vec::new();
    for n in names {
        let om = old.nodes.get(n).map(|s| &s.manifest).unwrap_or(&empty);
        let nm = new.nodes.get(n).map(|s| &s.manifest).unwrap_or(&empty);
        for ch in compare(n, om, nm, None) {
            let is_file = |e: &Option<sprayvault::vault::manifest::Entry>| {
                e.as_ref().is_some_and(|e| e.kind == Kind::File)
            };
            let d = match contents.as_mut() {
                Some(c) if ch.content_changed && (is_file(&ch.old) || is_file(&ch.new)) => {
                    let o = if is_file(&ch.old) {
                        Some(c.get(&old, n, &ch.path)?)
                    } else {
                        None
                    };
                    let nn = if is_file(&ch.new) {
                        Some(c.get(&new, n, &ch.path)?)
                    } else {
                        None
                    };
                    Some(detail(
                        o.as_deref().map(Vec::as_slice),
                        nn.as_deref().map(Vec::as_slice),
                    ))
                }
                _ => None,
            };
            items.push(Item {
                change: ch,
                detail: d,
            });
        }
    }
    // --node asks about one node; the control host is not one.
    let control = match &a.node {
        Some(_) => Default::default(),
        None => super::control::diff(&vault, &old, &new, identity.as_ref())?,
    };
    if g.json {
        output::json(
            &serde_json::json!({"from": old.commit.to_string(), "to": new.commit.to_string(), "changes": items, "control": control}),
        )?;
        return Ok(Exit::Success);
    }
    println!(
        "diff {} ({}) .. {} ({})",
        old.short_id(),
        rfc3339(old.time),
        new.short_id(),
        rfc3339(new.time)
    );
    if items.is_empty() && control.is_empty() {
        println!("no changes");
    }
    for it in &items {
        let c = &it.change;
        let sign = match c.change {
            ChangeKind::Added => "+",
            ChangeKind::Removed => "-",
            ChangeKind::Changed => "~",
        };
        let mut what = c.meta.clone();
        if c.change == ChangeKind::Changed && c.content_changed {
            what.insert(0, "content changed".into());
        }
        println!(
            "{sign} {} {}{}",
            c.node,
            c.path,
            if what.is_empty() {
                String::new()
            } else {
                format!("  ({})", what.join(", "))
            }
        );
        match &it.detail {
            Some(Detail::Certificate { changes }) | Some(Detail::Variables { changes }) => {
                changes.iter().for_each(|l| println!("    {l}"))
            }
            Some(Detail::PrivateKey { old, new }) => println!(
                "    private key: {} -> {}",
                old.as_deref().unwrap_or("none"),
                new.as_deref().unwrap_or("none")
            ),
            Some(Detail::Lines { removed, added }) => {
                removed.iter().for_each(|l| println!("    - {l}"));
                added.iter().for_each(|l| println!("    + {l}"));
            }
            Some(Detail::Binary { old_size, new_size }) => {
                println!("    binary: {old_size} -> {new_size} bytes")
            }
            None => {}
        }
    }
    super::control::print_diff(&control);
    if contents.is_none() && items.iter().any(|i| i.change.content_changed) {
        eprintln!("note: give --identity to see what changed inside files");
    }
    Ok(Exit::Success)
}
