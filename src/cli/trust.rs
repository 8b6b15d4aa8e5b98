//! `sprayvault trust`: the vault's fingerprint, pinned on first use; and
//! the check every reading command runs before it reads.

use super::Global;
use sprayvault::exit::Exit;
use sprayvault::vault::signing::allowed_signers_line;
use sprayvault::vault::Vault;

#[derive(clap::Args)]
pub struct Args {
    /// Print the line of a git allowed-signers file that trusts the vault's
    /// signer (for `git -c gpg.ssh.allowedSignersFile=FILE verify-commit`).
    #[arg(long)]
    allowed_signers: bool,
    /// On the backup host: print the fingerprint of its own signing key and
    /// mac-key instead of authenticating the history.
    #[arg(long)]
    backup_host: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let fp = if a.backup_host {
        vault.fingerprint()?
    } else {
        authenticate(g, &vault, &[])?
    };
    if a.allowed_signers {
        println!("{}", allowed_signers_line(&fp.signer));
    } else if g.json {
        super::output::json(&serde_json::json!({
            "signer": fp.signer.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
            "mac_key": fp.mac_key.to_string(),
        }))?;
    } else {
        println!("{}", fp.display());
    }
    Ok(Exit::Success)
}

/// Authenticates the vault's history (and `extra` commits) against the
/// pinned fingerprint, pinning it on first use; says so on stderr.
pub fn authenticate(
    g: &Global,
    vault: &Vault,
    extra: &[git2::Oid],
) -> anyhow::Result<sprayvault::vault::trust::Fingerprint> {
    let t = vault.authenticate(extra, g.accept_new_key)?;
    if t.pinned_now && !g.quiet {
        eprintln!(
            "pinned vault {}: {} (in {})",
            vault.dir().display(),
            t.fingerprint.display(),
            sprayvault::vault::trust::pin_file().display()
        );
    }
    Ok(t.fingerprint)
}
