//! `sprayvault remote`, `push` and `pull`: the vault's off-site copy.

use super::{args, Global};
use sprayvault::exit::Exit;
use sprayvault::vault::replicate;
use sprayvault::vault::Vault;

#[derive(clap::Args)]
pub struct RemoteArgs {
    /// The git URL to replicate to (e.g. git@git.example:ops/vault.git); without it, show the current one.
    url: Option<String>,
}

#[derive(clap::Args)]
pub struct PushArgs {
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
            None => return Err(replicate::ReplicateError::NoRemote(vault.dir().into()).into()),
        },
    }
    Ok(Exit::Success)
}

pub fn push(g: &Global, a: PushArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let _lock = vault.lock(a.lock.lock_wait)?;
    replicate::push(&vault, a.ssh.ssh_config.as_deref())?;
    println!(
        "pushed {} to {}",
        &vault.head()?.to_string()[..10],
        vault.remote_url().unwrap_or_default()
    );
    Ok(Exit::Success)
}

pub fn pull(g: &Global, a: PullArgs) -> anyhow::Result<Exit> {
    let dir = g.vault_dir()?;
    let (vault, _, trusted) = replicate::pull(
        dir,
        a.from.as_deref(),
        a.ssh.ssh_config.as_deref(),
        g.accept_new_key,
    )?;
    if trusted.pinned_now && !g.quiet {
        eprintln!(
            "pinned vault {}: {}",
            dir.display(),
            trusted.fingerprint.display()
        );
    }
    println!(
        "pulled {} from {} into {}",
        &vault.head()?.to_string()[..10],
        vault.remote_url().unwrap_or_default(),
        dir.display()
    );
    Ok(Exit::Success)
}
