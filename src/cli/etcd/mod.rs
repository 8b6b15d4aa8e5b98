//! `sprayvault etcd ls|export` and `sprayvault prune`: etcd snapshots
//! (`etcd restore` is in `restore`, `etcd snapshot` in `snapshot`).

mod restore;
mod snapshot;

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::etcd::prune::{self, Policy};
use sprayvault::etcd::select;
use sprayvault::etcd::store::{self, StoredSnapshot};
use sprayvault::etcd::trailer::Trailer;
use sprayvault::vault::trust::{Authentic, TrustedVault};
use sprayvault::vault::{rfc3339, Vault};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List snapshots: time, member, revision, keys, size.
    Ls,
    /// Reassemble, decrypt and verify one snapshot into a file for `etcdctl snapshot restore`.
    Export(ExportArgs),
    /// Restore every etcd member from one snapshot (quorum lost). Shows the plan; acts with --yes.
    Restore(restore::Args),
    /// Take one etcd snapshot now, and nothing else (for an hourly timer).
    Snapshot(snapshot::Args),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Which snapshot: latest (default), its name, an etcd revision, a backup
    /// (commit id, latest~N), or a date (the last taken at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    /// Where to write the snapshot file; - for standard output (then a
    /// snapshot failing its sha256 check is reported only after its bytes
    /// went out: check the exit status).
    #[arg(short = 'o', long, value_name = "FILE|-")]
    output: args::OutputPath,
    #[command(flatten)]
    identity: args::Identity,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Keep the N newest snapshots.
    #[arg(
        long,
        env = "SPRAYVAULT_KEEP_LAST",
        value_name = "N",
        default_value_t = 0
    )]
    keep_last: usize,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(
        long,
        env = "SPRAYVAULT_KEEP_HOURLY",
        value_name = "N",
        default_value_t = 0
    )]
    keep_hourly: usize,
    /// Keep the newest snapshot of each of the last N days.
    #[arg(
        long,
        env = "SPRAYVAULT_KEEP_DAILY",
        value_name = "N",
        default_value_t = 0
    )]
    keep_daily: usize,
    /// Keep the newest snapshot of each of the last N weeks.
    #[arg(
        long,
        env = "SPRAYVAULT_KEEP_WEEKLY",
        value_name = "N",
        default_value_t = 0
    )]
    keep_weekly: usize,
    /// Keep the newest snapshot of each of the last N months.
    #[arg(
        long,
        env = "SPRAYVAULT_KEEP_MONTHLY",
        value_name = "N",
        default_value_t = 0
    )]
    keep_monthly: usize,
    /// Show what would be removed and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Free only unreachable objects older than this (written or last
    /// repacked that long ago: git gc's prune period); 0 frees at once, safe
    /// only when nothing but sprayvault writes to the vault.
    #[arg(
        long,
        env = "SPRAYVAULT_GC_GRACE",
        value_name = "DURATION",
        default_value = "2w",
        value_parser = args::seconds
    )]
    gc_grace: std::time::Duration,
    #[command(flatten)]
    lock: args::LockWait,
}

pub fn run(g: &Global, c: Command) -> anyhow::Result<Exit> {
    // An etcd-only run writes its metrics even when the vault cannot be opened.
    let c = match c {
        Command::Snapshot(a) => return snapshot::run(g, a),
        c => c,
    };
    let vault = Vault::open(g.vault_dir()?)?;
    match c {
        Command::Ls => {
            super::trust::note_unpinned(g, &vault);
            let (snaps, bad) = store::list_readable(&vault)?;
            for (name, why) in &bad {
                eprintln!("skipped {name}: {why}");
            }
            if g.json {
                output::json(&snaps)?;
            } else {
                let mut t = output::Table::new(&[
                    "NAME", "TAKEN", "MEMBER", "NODE", "REVISION", "KEYS", "SIZE", "BLOBS",
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
                        (i.chunks.len() + store::packs(&vault, s)?.len()).to_string(),
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
        Command::Restore(a) => restore::run(g, a),
        Command::Snapshot(_) => unreachable!("handled above"),
    }
}

/// Every readable snapshot; a ref that cannot be read is named on stderr
/// and skipped, so one bad ref does not make every other snapshot unusable.
pub fn readable(g: &Global, vault: &Vault) -> anyhow::Result<Vec<store::StoredSnapshot>> {
    let (snaps, bad) = store::list_readable(vault)?;
    if !g.quiet {
        for (name, e) in &bad {
            eprintln!("warning: snapshot ref {name} cannot be read ({e}); skipped");
        }
    }
    Ok(snaps)
}

fn export(g: &Global, vault: &Vault, a: ExportArgs) -> anyhow::Result<Exit> {
    let identity = a.identity.load()?;
    let snaps = readable(g, vault)?;
    let trusted = super::trust::authenticate(g, vault, &[])?;
    let snap = pick_signed(g, &trusted, &snaps, a.at.as_deref())?;
    let snap = &*snap;
    a.output.write(true, |out| {
        let mut trailer = Trailer::default();
        sprayvault::etcd::reassemble::read(vault, snap, &identity, |chunk| {
            trailer.update(chunk);
            out.write_all(chunk)
        })?;
        anyhow::ensure!(
            trailer.valid(),
            "etcd snapshot {} does not match its sha256 trailer after reassembly; run `sprayvault verify`",
            snap.name
        );
        Ok(())
    })?;
    let message = format!(
        "wrote etcd snapshot {} ({} at revision {}, {} keys, {} bytes, sha256 trailer verified) to {}",
        snap.name, snap.index.member, snap.index.revision, snap.index.keys, snap.index.size, a.output
    );
    if a.output.is_stdout() {
        // Standard output carries the snapshot: the result line goes to stderr.
        if !g.quiet {
            eprintln!("{message}");
        }
    } else if g.json {
        output::json(&serde_json::json!({"snapshot": snap, "output": a.output.to_string()}))?;
    } else {
        println!("{message}");
    }
    Ok(Exit::Success)
}

pub fn prune_cmd(g: &Global, a: PruneArgs) -> anyhow::Result<Exit> {
    let policy = Policy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
    };
    if policy.is_empty() {
        return Err(super::UsageError("give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly (prune never removes every snapshot)".into()).into());
    }
    let vault = Vault::open(g.vault_dir()?)?;
    // Held from the listing through gc: no backup, pull or push runs meanwhile.
    let lock = vault.lock(a.lock.lock_wait)?;
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
    let freed = prune::remove(&vault, &lock, &forget, a.gc_grace)?;
    println!(
        "removed {} snapshots, kept {}, freed {} bytes (unreachable objects younger than {} s are kept for a later prune){}",
        forget.len(),
        keep.len(),
        freed.max(0),
        a.gc_grace.as_secs(),
        if forget.is_empty() || vault.remote_url().is_none() {
            ""
        } else {
            "; `sprayvault push --prune` removes them from the remote"
        }
    );
    Ok(Exit::Success)
}

/// The snapshot `--at` names (a name, a revision, latest), resolved among
/// the vault's snapshot refs and accepted only when its commit is signed by
/// the vault's signer; says which one and how old it is.
pub(super) fn pick_signed(
    g: &Global,
    trusted: &TrustedVault<'_>,
    snaps: &[StoredSnapshot],
    at: Option<&str>,
) -> anyhow::Result<Authentic<StoredSnapshot>> {
    let snap = select::pick(trusted.vault(), snaps, at)?;
    let snap = trusted.signed(snap.clone())?;
    if at.is_none_or(|a| a == "latest") {
        store::check_newest_present(trusted, snaps)?;
    }
    if !g.quiet {
        eprintln!(
            "using etcd snapshot {} of {} ({} old)",
            snap.name,
            rfc3339(snap.index.taken),
            super::trust::ago(time::OffsetDateTime::now_utc().unix_timestamp() - snap.index.taken)
        );
    }
    Ok(snap)
}
