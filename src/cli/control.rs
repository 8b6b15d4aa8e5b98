//! `sprayvault control show` and `control restore`: the control host's
//! kubespray directory as a backup recorded it; and the control host's part
//! of `sprayvault diff`.

use super::exit::Exit;
use super::{args, output, Global, UsageError};
use sprayvault::control::diff::{self, ControlDiff, Side};
use sprayvault::control::restore as plan;
use sprayvault::history::ChangeKind;
use sprayvault::restore::Action;
use sprayvault::vault::control::ControlState;
use sprayvault::vault::crypto::Identity;
use sprayvault::vault::manifest::{Kind, Manifest};
use sprayvault::vault::{rfc3339, Backup, Vault};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The control host's recorded files and kubespray version in one backup.
    Show(ShowArgs),
    /// Write the recorded kubespray directory (inventory, ansible.cfg) into a directory.
    Restore(RestoreArgs),
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// Which backup (commit id, latest, latest~N, or a date); default latest.
    at: Option<String>,
    /// Print the recorded local modifications of the checkout (a patch for `git apply`); needs --identity.
    #[arg(long, requires = "identity")]
    patch: bool,
    #[command(flatten)]
    identity: args::IdentityOpt,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    identity: args::Identity,
    /// The directory to write into; it stands for the kubespray directory.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Which backup: a commit id, latest, latest~N, or a date (the last backup at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
    /// Show the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace files in DIR that differ from the backup.
    #[arg(long)]
    force: bool,
}

pub fn run(g: &Global, c: Command) -> anyhow::Result<Exit> {
    match c {
        Command::Show(a) => show(g, a),
        Command::Restore(a) => restore(g, a),
    }
}

fn state(vault: &Vault, backup: &Backup) -> anyhow::Result<ControlState> {
    vault.control(backup.commit)?.ok_or_else(|| {
        anyhow::anyhow!(
            "backup {} records no control host; back up with -i pointing into the kubespray directory, or with --kubespray-dir",
            backup.short_id()
        )
    })
}

fn show(g: &Global, a: ShowArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let backup = vault.backup(vault.resolve(a.at.as_deref())?)?;
    let s = state(&vault, &backup)?;
    if a.patch {
        let id = a.identity.load()?.expect("clap requires --identity");
        match vault.decrypt_changes(&s, backup.commit, &id)? {
            Some(p) => std::io::stdout().write_all(&p)?,
            None => eprintln!(
                "the checkout had no local changes in backup {}",
                backup.short_id()
            ),
        }
        return Ok(Exit::Success);
    }
    if g.json {
        let files: Vec<_> = s.manifest.entries.values().map(row_json).collect();
        output::json(&serde_json::json!({
            "commit": backup.commit.to_string(),
            "time": rfc3339(backup.time),
            "kubespray": s.record,
            "files": files,
        }))?;
        return Ok(Exit::Success);
    }
    let r = &s.record;
    println!("backup {} ({})", backup.short_id(), rfc3339(backup.time));
    println!("kubespray directory {}", r.dir);
    println!("version {}", r.version());
    if let Some(o) = &r.origin {
        println!("origin {o}");
    }
    println!("inventory {}", r.inventory);
    if let Some(c) = &r.ansible_cfg {
        println!("ansible.cfg from {c}");
    }
    let mut t = output::Table::new(&["MODE", "OWNER", "SIZE", "MTIME", "PATH"]);
    for e in s.manifest.entries.values() {
        let path = match &e.target {
            Some(t) => format!("{} -> {t}", e.path),
            None => e.path.clone(),
        };
        t.row(vec![
            format!("{} {:04o}", e.kind.letter(), e.mode),
            format!(
                "{}:{}",
                e.owner.clone().unwrap_or_else(|| e.uid.to_string()),
                e.group.clone().unwrap_or_else(|| e.gid.to_string())
            ),
            e.size.to_string(),
            rfc3339(e.mtime),
            path,
        ]);
    }
    t.print();
    println!(
        "{} entries, {} files",
        s.manifest.entries.len(),
        s.manifest.files().count()
    );
    Ok(Exit::Success)
}

fn row_json(e: &sprayvault::vault::manifest::Entry) -> serde_json::Value {
    serde_json::json!({
        "path": e.path, "kind": e.kind.word(), "mode": format!("{:04o}", e.mode),
        "uid": e.uid, "gid": e.gid, "owner": e.owner, "group": e.group,
        "size": e.size, "mtime": rfc3339(e.mtime), "target": e.target,
    })
}

fn restore(g: &Global, a: RestoreArgs) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    let trusted = super::trust::authenticate(g, &vault, &[])?;
    let identity = a.identity.load()?;
    let backup = trusted.backup(a.at.as_deref())?;
    super::trust::say_age(g, &backup);
    let s = state(&vault, &backup)?;
    if a.to.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        return Err(UsageError(format!("--to {} is not a directory", a.to.display())).into());
    }
    let mut contents = BTreeMap::new();
    for e in s.manifest.files() {
        let data = vault.decrypt_control(&s, backup.commit, &e.path, &identity)?;
        if data.len() as u64 != e.size {
            anyhow::bail!(
                "{} in backup {}: decrypted {} bytes, the manifest records {}; run `sprayvault verify` and use another backup (--at)",
                e.path, backup.short_id(), data.len(), e.size
            );
        }
        contents.insert(e.path.clone(), data);
    }
    let entries: Vec<_> = s.manifest.entries.values().cloned().collect();
    let accounts = sprayvault::control::local::accounts();
    // SAFETY: geteuid has no preconditions.
    let owners = unsafe { libc::geteuid() } == 0;
    let observed = plan::observe(&a.to, &entries);
    let ids =
        |e: &sprayvault::vault::manifest::Entry| sprayvault::restore::plan::owner_ids(e, &accounts);
    let items = plan::plan(&entries, &observed, &contents, owners, &ids);
    let count = |k: Action| items.iter().filter(|i| i.action == k).count();
    if g.json {
        output::json(&serde_json::json!({"commit": backup.commit.to_string(), "items": items}))?;
    } else {
        println!(
            "control restore into {} from backup {} ({})",
            a.to.display(),
            backup.short_id(),
            rfc3339(backup.time)
        );
        let mut t = output::Table::new(&["ACTION", "KIND", "MODE", "PATH", "NOTE"]);
        for (i, e) in items.iter().zip(&entries) {
            t.row(vec![
                i.action.word().into(),
                i.kind.into(),
                format!("{:04o}", e.mode),
                i.path.clone(),
                i.detail.clone().unwrap_or_default(),
            ]);
        }
        t.print();
    }
    let replace = count(Action::Replace);
    if replace > 0 && !a.force {
        eprintln!(
            "error: control restore refused: {replace} entries in {} differ from the backup and would be replaced; check that it is the directory you mean, then re-run with --force",
            a.to.display()
        );
        return Ok(Exit::Refused);
    }
    if a.dry_run {
        if !g.json {
            println!("dry run: nothing was changed");
        }
        return Ok(Exit::Success);
    }
    std::fs::create_dir_all(&a.to)?;
    let done = plan::apply(&a.to, &entries, &items, &contents, &accounts, owners);
    if !g.json {
        for (p, why) in &done.errors {
            println!("FAILED {p}: {why}");
        }
        println!(
            "restored the control host from {}: {} created, {} replaced, {} updated, {} unchanged, {} errors",
            backup.short_id(),
            done.created,
            done.replaced,
            done.updated,
            count(Action::Leave),
            done.errors.len()
        );
        if !owners {
            println!("note: not running as root, so owners and groups were not applied");
        }
        let r = &s.record;
        match plan::checkout_command(&a.to, r.describe.as_deref(), r.commit.as_deref()) {
            Some(cmd) => {
                println!(
                    "kubespray was at {}; to check out the same version:",
                    r.version()
                );
                println!("  {cmd}");
                if let Some(o) = &r.origin {
                    println!("  (the checkout was a clone of {o})");
                }
                if r.modified == Some(true) {
                    println!(
                        "  then apply its recorded local changes: sprayvault control show {} --patch --identity {} | git -C {} apply",
                        backup.short_id(),
                        a.identity.identity.display(),
                        a.to.display()
                    );
                }
            }
            None => println!(
                "kubespray's version was not recorded: {} was not a git checkout",
                r.dir
            ),
        }
    }
    Ok(if done.errors.is_empty() {
        Exit::Success
    } else {
        Exit::Partial
    })
}

/// The control host's part of `diff`: compares, and decrypts what it needs
/// when an identity is given.
pub fn diff(
    vault: &Vault,
    old: &Backup,
    new: &Backup,
    identity: Option<&Identity>,
) -> anyhow::Result<ControlDiff> {
    let (os, ns) = (vault.control(old.commit)?, vault.control(new.commit)?);
    let empty = Manifest::default();
    let decrypt =
        |s: &Option<ControlState>, b: &Backup| -> anyhow::Result<Option<diff::Contents>> {
            let (Some(id), Some(s)) = (identity, s) else {
                return Ok(identity.map(|_| diff::Contents::new()));
            };
            let mut c = diff::Contents::new();
            for p in diff::wanted(s) {
                c.insert(p.clone(), vault.decrypt_control(s, b.commit, &p, id)?);
            }
            Ok(Some(c))
        };
    let (oc, nc) = (decrypt(&os, old)?, decrypt(&ns, new)?);
    let mut a = Side::of(os.as_ref(), &empty);
    a.contents = oc.as_ref();
    let mut b = Side::of(ns.as_ref(), &empty);
    b.contents = nc.as_ref();
    Ok(diff::diff(&a, &b))
}

fn sign(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "+",
        ChangeKind::Removed => "-",
        ChangeKind::Changed => "~",
    }
}

/// Prints the control host's part of `diff`.
pub fn print_diff(d: &ControlDiff) {
    if d.is_empty() {
        return;
    }
    println!("control host:");
    if let Some((o, n)) = &d.version {
        println!("~ kubespray {o} -> {n}");
    }
    for c in &d.files {
        let what = if c.change == ChangeKind::Changed {
            let mut w = c.meta.clone();
            if c.content_changed {
                w.insert(0, "content changed".into());
            }
            format!("  ({})", w.join(", "))
        } else {
            String::new()
        };
        let kind = match c.new.as_ref().or(c.old.as_ref()).map(|e| e.kind) {
            Some(Kind::Dir) => "/",
            _ => "",
        };
        println!("{} {}{kind}{what}", sign(c.change), c.path);
    }
    for h in d.hosts.iter().flatten() {
        match h.change {
            ChangeKind::Added => println!("  host added: {} ({})", h.host, h.new_groups.join(", ")),
            ChangeKind::Removed => {
                println!(
                    "  host removed: {} (was in {})",
                    h.host,
                    h.old_groups.join(", ")
                )
            }
            ChangeKind::Changed => println!(
                "  host moved: {}: {} -> {}",
                h.host,
                h.old_groups.join(", "),
                h.new_groups.join(", ")
            ),
        }
    }
    for v in d.variables.iter().flatten() {
        let secret = if v.secret {
            " (secret, by fingerprint)"
        } else {
            ""
        };
        match v.change {
            ChangeKind::Added => println!(
                "  variable added: {}: {} = {}{secret}",
                v.file,
                v.name,
                v.new.as_deref().unwrap_or("")
            ),
            ChangeKind::Removed => println!("  variable removed: {}: {}", v.file, v.name),
            ChangeKind::Changed => println!(
                "  variable changed: {}: {}: {} -> {}{secret}",
                v.file,
                v.name,
                v.old.as_deref().unwrap_or(""),
                v.new.as_deref().unwrap_or("")
            ),
        }
    }
    for c in &d.credentials {
        let word = match c.change {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        };
        match (&c.old, &c.new) {
            (None, None) => println!("  credential {word}: {}", c.file),
            (o, n) => println!(
                "  credential {word}: {}: {} -> {}",
                c.file,
                o.as_deref().unwrap_or("none"),
                n.as_deref().unwrap_or("none")
            ),
        }
    }
    for n in &d.notes {
        println!("  note: {n}");
    }
    if d.hosts.is_none() && !d.files.is_empty() {
        eprintln!(
            "note: give --identity to see the control host's hosts and variables that changed"
        );
    }
}
