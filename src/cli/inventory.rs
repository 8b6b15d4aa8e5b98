//! `sprayvault inventory`: show the hosts of a kubespray inventory as
//! sprayvault reads them.

use super::{output, Global};
use sprayvault::exit::Exit;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The inventory file or directory (as for ansible -i).
    #[arg(short = 'i', long = "inventory", value_name = "PATH")]
    inventory: PathBuf,
    /// Only hosts matching this Ansible pattern.
    #[arg(long, value_name = "PATTERN")]
    limit: Option<String>,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let inv = sprayvault::inventory::load(&a.inventory)?;
    if g.json {
        output::json(&inv.to_json())?;
        return Ok(Exit::Success);
    }
    let mut t = output::Table::new(&["HOST", "ADDRESS", "PORT", "USER", "BECOME", "GROUPS"]);
    for h in inv.select(a.limit.as_deref())? {
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
