//! `sprayvault etcd ls|export` and `sprayvault prune`: etcd snapshots
//! (`etcd restore` is in `etcd_restore`).

use super::{output, Global};
use sprayvault::etcd::prune::{self, Policy};
use sprayvault::etcd::select;
use sprayvault::etcd::store::{self, StoredSnapshot};
use sprayvault::etcd::trailer::Trailer;
use sprayvault::exit::Exit;
use sprayvault::vault::crypto::Identity;
use sprayvault::vault::{rfc3339, Vault};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List snapshots: time, member, revision, keys, size.
    Ls,
    /// Reassemble, decrypt and verify one snapshot into a file for `etcdctl snapshot restore`.
    Export(ExportArgs),
    /// Restore every etcd member from one snapshot (quorum lost). Shows the plan; acts with --yes.
    Restore(super::etcd_restore::Args),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Which snapshot: latest (default), its name, an etcd revision, a backup
    /// (commit, tag, latest~N), or a date (the last taken at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    /// Where to write the snapshot file.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: PathBuf,
    /// An identity that can decrypt the vault.
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    #[arg(long, default_value_t = 0)]
    keep_last: usize,
    #[arg(long, default_value_t = 0)]
    keep_daily: usize,
    #[arg(long, default_value_t = 0)]
    keep_weekly: usize,
    #[arg(long, default_value_t = 0)]
    keep_monthly: usize,
    /// Show what would be removed and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds to wait for another run's lock.
    #[arg(long, default_value_t = 0)]
    lock_wait: u64,
}

pub fn run(g: &Global, c: Command) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    match c {
        Command::Ls => {
            let (snaps, bad) = store::list_readable(&vault)?;
            for (name, why) in &bad {
                eprintln!("skipped {name}: {why}");
            }
            if g.json {
                output::json(&snaps)?;
            } else {
                let mut t = output::Table::new(&[
                    "NAME", "TAKEN", "MEMBER", "NODE", "REVISION", "KEYS", "SIZE", "CHUNKS",
                ]);
                for s in &snaps {
                    let i = &s.index;
                    t.row(vec![
                        s.name.clone(),
                        rfc3339(i.taken),
                        i.member.clone(),
                        i.node.clone(),
                        i.revision.to_string(),
                        i.keys.to_string(),
                        i.size.to_string(),
                        i.chunks.len().to_string(),
                    ]);
                }
                t.print();
                println!("{} snapshots", snaps.len());
            }
            Ok(if bad.is_empty() {
                Exit::Success
            } else {
                Exit::Partial
            })
        }
        Command::Export(a) => export(g, &vault, a),
        Command::Restore(a) => super::etcd_restore::run(g, a),
    }
}

fn export(g: &Global, vault: &Vault, a: ExportArgs) -> anyhow::Result<Exit> {
    let identity = Identity::load(&a.identity)?;
    let snaps = store::list(vault)?;
    let snap = select::pick(vault, &snaps, a.at.as_deref()).map_err(anyhow::Error::msg)?;
    super::trust::authenticate(g, vault, &[snap_commit(snap)?])?;
    let dir = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.sprayvault-{}",
        a.output
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?
    };
    let mut trailer = Trailer::default();
    let written = store::read(vault, snap, &identity, |chunk| {
        trailer.update(chunk);
        file.write_all(chunk)
    });
    let valid = trailer.valid();
    let result = written.map_err(anyhow::Error::from).and_then(|_| {
        if valid {
            file.sync_all()?;
            std::fs::rename(&tmp, &a.output)?;
            Ok(())
        } else {
            Err(anyhow::anyhow!("etcd snapshot {} does not match its sha256 trailer after reassembly; run `sprayvault verify`", snap.name))
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if g.json {
        output::json(&serde_json::json!({"snapshot": snap, "output": a.output}))?;
    } else {
        println!(
            "wrote etcd snapshot {} ({} at revision {}, {} keys, {} bytes, sha256 trailer verified) to {}",
            snap.name,
            snap.index.member,
            snap.index.revision,
            snap.index.keys,
            snap.index.size,
            a.output.display()
        );
    }
    Ok(Exit::Success)
}

pub fn prune_cmd(g: &Global, a: PruneArgs) -> anyhow::Result<Exit> {
    let policy = Policy {
        last: a.keep_last,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
    };
    if policy.is_empty() {
        return Err(super::UsageError("give at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly (prune never removes every snapshot)".into()).into());
    }
    let vault = Vault::open(g.vault_dir()?)?;
    let _lock = vault.lock(std::time::Duration::from_secs(a.lock_wait))?;
    let snaps = store::list(&vault)?;
    let keep = prune::keep(&snaps, policy);
    let forget: Vec<&StoredSnapshot> = snaps.iter().filter(|s| !keep.contains(&s.name)).collect();
    for s in &snaps {
        println!(
            "{} {} ({})",
            if keep.contains(&s.name) {
                "keep  "
            } else {
                "remove"
            },
            s.name,
            rfc3339(s.index.taken)
        );
    }
    if a.dry_run {
        println!(
            "dry run: {} snapshots would be removed, {} kept",
            forget.len(),
            keep.len()
        );
        return Ok(Exit::Success);
    }
    let freed = prune::remove(&vault, &forget)?;
    println!(
        "removed {} snapshots, kept {}, freed {} bytes",
        forget.len(),
        keep.len(),
        freed.max(0)
    );
    Ok(Exit::Success)
}

/// The commit a snapshot ref points at, for `trust::authenticate`.
pub(super) fn snap_commit(snap: &StoredSnapshot) -> anyhow::Result<git2::Oid> {
    Ok(git2::Oid::from_str(&snap.commit)?)
}
