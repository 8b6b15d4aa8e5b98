//! `sprayvault trust`: pin a signer, print a vault's fingerprint; and the
//! checks every command runs before it reads a vault.

use super::exit::Exit;
use super::Global;
use sprayvault::vault::pins;
use sprayvault::vault::signing::allowed_signers_line;
use sprayvault::vault::trust::{self, TrustedVault};
use sprayvault::vault::{Backup, Vault};

#[derive(clap::Args)]
pub struct Args {
    /// Trust this signer (SHA256:..., as `sprayvault init` printed it) on
    /// this machine before its vault is first read; re-pinning forgets the
    /// newest backup seen from it (after a deliberate rollback).
    #[arg(long, value_name = "SIGNER", conflicts_with_all = ["backup_host", "allowed_signers"])]
    pin: Option<String>,
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
    if let Some(signer) = &a.pin {
        let signer = pins::parse_signer(signer)
            .ok_or_else(|| trust::TrustError::BadSigner(signer.clone()))?;
        let file = pins::pin_file();
        pins::pin(&file, &signer)?;
        if !g.quiet {
            println!("pinned signer {signer} (in {})", file.display());
        }
        return Ok(Exit::Success);
    }
    let vault = Vault::open(g.vault_dir()?)?;
    let fp = if a.backup_host {
        vault.fingerprint()?
    } else {
        authenticate(g, &vault, &[])?.trusted.fingerprint
    };
    if a.allowed_signers {
        println!("{}", allowed_signers_line(&fp.signer));
    } else if g.json {
        super::output::json(&serde_json::json!({
            "signer": pins::signer_text(&fp.signer),
            "mac_key": fp.mac_key.to_string(),
        }))?;
    } else {
        println!("{}", fp.display());
    }
    Ok(Exit::Success)
}

/// Authenticates the vault's history (and `extra` commits) against what
/// this machine trusts and the signer the operator named; says on stderr
/// when it pinned the signer, and warns when the newest backup is older
/// than `--max-age`.
pub fn authenticate<'v>(
    g: &Global,
    vault: &'v Vault,
    extra: &[git2::Oid],
) -> anyhow::Result<TrustedVault<'v>> {
    let t = vault.authenticate(extra, &g.naming)?;
    if !g.quiet {
        if t.trusted.pinned_now {
            eprintln!(
                "pinned vault {}: {} (in {})",
                vault.dir().display(),
                t.trusted.fingerprint.display(),
                pins::pin_file().display()
            );
        }
        let age = now() - t.trusted.head_time;
        if age > g.max_age.as_secs() as i64 {
            eprintln!(
                "warning: the newest backup in vault {} is {} old ({}), more than --max-age {}: is the nightly backup still running, and is this copy current?",
                vault.dir().display(),
                ago(age),
                sprayvault::vault::rfc3339(t.trusted.head_time),
                ago(g.max_age.as_secs() as i64)
            );
        }
    }
    Ok(t)
}

/// Says which backup a restoring command uses and how old it is.
pub fn say_age(g: &Global, backup: &Backup) {
    if !g.quiet {
        eprintln!(
            "using backup {} of {} ({} old)",
            backup.short_id(),
            sprayvault::vault::rfc3339(backup.time),
            ago(now() - backup.time)
        );
    }
}

/// For read-only commands: a vault whose signer this machine has not
/// pinned is shown, but not as authenticated.
pub fn note_unpinned(g: &Global, vault: &Vault) {
    if g.quiet {
        return;
    }
    if let Some(signer) = trust::unpinned_signer(vault) {
        eprintln!(
            "note: vault {} is signed by {}, which this machine has not pinned: what follows is not authenticated (`sprayvault trust --pin SIGNER` after checking it with the backup host)",
            vault.dir().display(),
            sprayvault::term::escape(&signer)
        );
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `3d 4h`, `5h 12m`, `42m`, `12s`.
pub fn ago(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}
