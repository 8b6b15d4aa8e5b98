//! `sprayvault inventory`: show the hosts of a kubespray inventory as
//! sprayvault reads them.

use super::exit::Exit;
use super::{args, output, Global};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: args::Inventory,
    /// Only hosts matching this Ansible pattern.
    #[arg(long, value_name = "PATTERN")]
    limit: Option<String>,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    // Hosts left out by --limit may be unusable, as for Ansible.
    let inv = sprayvault::inventory::read(&a.inventory.inventory)?;
    let selected = inv.select(a.limit.as_deref())?;
    if g.json {
        let mut all = inv.to_json();
        let keep: std::collections::BTreeSet<&str> =
            selected.iter().map(|h| h.name.as_str()).collect();
        if let Some(hosts) = all.get_mut("hosts").and_then(|h| h.as_object_mut()) {
            hosts.retain(|name, _| keep.contains(name.as_str()));
        }
        output::json(&all)?;
        return Ok(Exit::Success);
    }
    let mut t = output::Table::new(&["HOST", "ADDRESS", "PORT", "USER", "BECOME", "GROUPS"]);
    for h in selected {
        t.row(vec![
            h.name.clone(),
            h.address.clone(),
            h.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            h.user.clone().unwrap_or_else(|| "-".into()),
            if h.become_ { "yes".into() } else { "no".into() },
            h.groups.join(","),
        ]);
    }
    t.print();
    Ok(Exit::Success)
}
