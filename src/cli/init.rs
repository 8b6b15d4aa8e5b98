//! `sprayvault init`: create a vault.

use super::exit::Exit;
use super::{output, Global};
use sprayvault::vault::config::VaultConfig;
use sprayvault::vault::Vault;

#[derive(clap::Args)]
pub struct Args {
    /// A public key to encrypt to: `age1...`, or an OpenSSH `ssh-ed25519`/`ssh-rsa` public key. Repeatable.
    #[arg(long = "recipient", short = 'r', value_name = "PUBKEY")]
    recipients: Vec<String>,
    /// A file of recipients, one per line (`#` comments), like age's -R.
    #[arg(long = "recipients-file", short = 'R', value_name = "FILE")]
    recipients_files: Vec<std::path::PathBuf>,
    /// Also back up this absolute path (a directory is taken recursively; `*` allowed in the last component). Repeatable.
    #[arg(long = "include", value_name = "PATH")]
    include: Vec<String>,
    /// Never back up paths matching this absolute path or glob. Repeatable.
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let dir = g.vault_dir()?;
    let mut recipients = a.recipients.clone();
    for f in &a.recipients_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read recipients file {}: {e}", f.display()))?;
        recipients.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if recipients.is_empty() {
        return Err(super::UsageError("give at least one --recipient PUBKEY (for example the output of `age-keygen -y key.txt`); the vault is encrypted to it".into()).into());
    }
    let config = VaultConfig::new(recipients, &a.include, &a.exclude)?;
    let vault = Vault::init(dir, config.clone())?;
    if g.json {
        output::json(
            &serde_json::json!({"vault": dir, "commit": vault.head()?.to_string(), "config": config, "fingerprint": vault.fingerprint()?.display()}),
        )?;
    } else {
        println!(
            "created vault {} for {} recipient(s); every backup records these paths on each node (directories with everything below them):",
            dir.display(),
            config.recipients.len()
        );
        for p in &config.include {
            println!("  {p}");
        }
        for p in &config.exclude {
            println!("  except {p}");
        }
        println!("the list is kept in the vault's sprayvault.json and stays as it is when sprayvault changes its defaults");
        println!(
            "fingerprint: {}\ngive its signer to the operators: a machine trusts this vault only when told (`sprayvault trust --pin SIGNER`, or --expect-signer SIGNER)",
            vault.fingerprint()?.display()
        );
    }
    Ok(Exit::Success)
}
