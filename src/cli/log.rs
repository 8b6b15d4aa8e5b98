//! `sprayvault log`: one line per backup.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::vault::message::Outcome;
use sprayvault::vault::{rfc3339, Vault};

#[derive(clap::Args)]
pub struct Args {
    /// Only this node's status and changes.
    #[arg(long)]
    node: Option<String>,
    /// Only changes at or below this absolute path.
    #[arg(long)]
    path: Option<String>,
    #[command(flatten)]
    identity: args::IdentityOpt,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    super::trust::note_unpinned(g, &vault);
    let identity = a.identity.load()?;
    let entries = sprayvault::history::log(
        &vault,
        a.node.as_deref(),
        a.path.as_deref(),
        identity.as_ref(),
    )?;
    if g.json {
        output::json(&entries)?;
        return Ok(Exit::Success);
    }
    let mut t = output::Table::new(&[
        "COMMIT", "TIME", "KIND", "NODES", "ADDED", "CHANGED", "REMOVED", "NOTE",
    ]);
    for e in &entries {
        let ok = e.nodes.values().filter(|s| **s == Outcome::Ok).count();
        let ran = e.nodes.values().filter(|s| **s != Outcome::Carried).count();
        t.row(vec![
            e.commit[..10].to_string(),
            rfc3339(e.time),
            e.kind.clone(),
            if e.kind == "backup" {
                format!("{ok}/{ran}")
            } else {
                "-".into()
            },
            e.added.to_string(),
            e.changed.to_string(),
            e.removed.to_string(),
            if e.partial {
                format!("PARTIAL {}", e.reasons.join("; "))
            } else {
                String::new()
            },
        ]);
    }
    t.print();
    Ok(Exit::Success)
}
