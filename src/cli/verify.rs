//! `sprayvault verify`: are all backups intact?

use super::{args, output, Global};
use sprayvault::exit::Exit;
use sprayvault::vault::Vault;

#[derive(clap::Args)]
pub struct Args {
    /// Also decrypt every file and check it against its manifest's keyed hash (needs --identity).
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    identity: args::IdentityOpt,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    if a.full && a.identity.identity.is_none() {
        return Err(super::UsageError(
            "verify --full decrypts every file: give --identity FILE".into(),
        )
        .into());
    }
    let vault = Vault::open(g.vault_dir()?)?;
    let identity = a.identity.load()?;
    let report = sprayvault::verify::verify(&vault, if a.full { identity.as_ref() } else { None })?;
    if g.json {
        output::json(&report)?;
    } else {
        for p in &report.problems {
            println!(
                "DAMAGED backup {}{}{}: {}",
                p.backup,
                p.node
                    .as_ref()
                    .map(|n| format!(" node {n}"))
                    .unwrap_or_default(),
                p.path.as_ref().map(|x| format!(" {x}")).unwrap_or_default(),
                p.what
            );
        }
        println!(
            "verified {} backups, {} objects{}: {} problems",
            report.backups,
            report.objects,
            if a.full {
                format!(", {} decrypted and checked", report.decrypted)
            } else {
                String::new()
            },
            report.problems.len()
        );
    }
    Ok(if report.problems.is_empty() {
        Exit::Success
    } else {
        Exit::Damaged
    })
}
