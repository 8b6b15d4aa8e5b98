//! `sprayvault remote`, `push` and `pull`: the vault's off-site copy.

use super::exit::Exit;
use super::{args, Global};
use sprayvault::vault::replicate::{self, plan::MainAction, ReplicateError};
use sprayvault::vault::Vault;

#[derive(clap::Args)]
pub struct RemoteArgs {
    /// The git URL to replicate to (e.g. git@git.example:ops/vault.git); without it, show the current one.
    url: Option<String>,
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// Also delete on the remote the etcd snapshot refs `prune` removed here
    /// (only those: same name, same commit).
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    ssh: args::SshConfig,
    #[command(flatten)]
    lock: args::LockWait,
}

#[derive(clap::Args)]
pub struct PullArgs {
    /// The remote to pull from; required when the vault directory does not exist yet.
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    #[command(flatten)]
    ssh: args::SshConfig,
    #[command(flatten)]
    lock: args::LockWait,
}

/// A vault error inside a replication error keeps its own exit code
/// (locked: 5, no vault: 4).
fn exit_coded(e: ReplicateError) -> anyhow::Error {
    match e {
        ReplicateError::Vault(v) => v.into(),
        e => e.into(),
    }
}

pub fn remote(g: &Global, a: RemoteArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    match a.url {
        Some(url) => {
            vault.set_remote(&url)?;
            println!("off-site remote of {}: {url}", vault.dir().display());
        }
        None => match vault.remote_url() {
            Some(url) => println!("{url}"),
            None => return Err(ReplicateError::NoRemote(vault.dir().into()).into()),
        },
    }
    Ok(Exit::Success)
}

pub fn push(g: &Global, a: PushArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let lock = vault.lock(a.lock.lock_wait)?;
    let ssh = a.ssh.ssh_config.as_deref();
    // Deletions first: a new snapshot may reuse a pruned name.
    let deleted = if a.prune {
        replicate::prune_remote(&vault, &lock, ssh).map_err(exit_coded)?
    } else {
        vec![]
    };
    for name in &deleted {
        println!("deleted on the remote: {name} (pruned here)");
    }
    replicate::push(&vault, ssh).map_err(exit_coded)?;
    println!(
        "pushed {} to {}{}",
        &vault.head()?.to_string()[..10],
        vault.remote_url().unwrap_or_default(),
        if a.prune {
            format!(", {} pruned snapshot refs deleted there", deleted.len())
        } else {
            String::new()
        }
    );
    Ok(Exit::Success)
}

pub fn pull(g: &Global, a: PullArgs) -> anyhow::Result<Exit> {
    let dir = g.vault_dir()?;
    let (vault, report, trusted) = replicate::pull(
        dir,
        a.from.as_deref(),
        a.ssh.ssh_config.as_deref(),
        &g.naming,
        a.lock.lock_wait,
    )
    .map_err(exit_coded)?;
    if trusted.pinned_now && !g.quiet {
        eprintln!(
            "pinned vault {}: {}",
            dir.display(),
            trusted.fingerprint.display()
        );
    }
    for name in &report.skipped_pruned {
        println!("not pulled: {name} (pruned here; `push --prune` deletes it on the remote)");
    }
    let mut notes = vec![];
    if report.main == MainAction::Ahead {
        notes.push("main is ahead of the remote's (push it)".to_string());
    }
    if !report.skipped_pruned.is_empty() {
        notes.push(format!(
            "{} pruned snapshot refs not pulled",
            report.skipped_pruned.len()
        ));
    }
    println!(
        "pulled {} from {} into {}{}",
        &vault.head()?.to_string()[..10],
        vault.remote_url().unwrap_or_default(),
        dir.display(),
        notes.iter().map(|n| format!("; {n}")).collect::<String>()
    );
    Ok(Exit::Success)
}
