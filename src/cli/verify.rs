//! `sprayvault verify`: are all backups intact? With `--trial`, does an etcd
//! snapshot really restore to what its backup recorded?

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::etcd::trial::{self, TrialReport};
use sprayvault::etcd::{select, store};
use sprayvault::vault::{rfc3339, Vault};

#[derive(clap::Args)]
pub struct Args {
    /// Also decrypt every file and check it against its manifest's keyed hash (needs --identity).
    #[arg(long)]
    full: bool,
    /// Restore an etcd snapshot on this machine into a private temporary
    /// directory, serve it with a throwaway local etcd on loopback, and
    /// compare revision, key count and a sample of keys with what the backup
    /// recorded (needs --identity and a local etcd 3.4 or 3.5).
    #[arg(long)]
    trial: bool,
    /// With --trial: which snapshot (latest, a name, an etcd revision, a
    /// backup, or a date: the last taken at or before it).
    #[arg(long, value_name = "REV|DATE", requires = "trial")]
    at: Option<String>,
    #[command(flatten)]
    identity: args::IdentityOpt,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    if (a.full || a.trial) && a.identity.identity.is_none() {
        return Err(super::UsageError(format!(
            "verify {} decrypts: give --identity FILE",
            if a.trial { "--trial" } else { "--full" }
        ))
        .into());
    }
    let vault = Vault::open(g.vault_dir()?)?;
    super::trust::note_unpinned(g, &vault);
    let identity = a.identity.load()?;
    let report = sprayvault::verify::verify(&vault, if a.full { identity.as_ref() } else { None })?;
    let trial = match (&identity, a.trial) {
        (Some(id), true) => Some(run_trial(g, &vault, id, a.at.as_deref())?),
        _ => None,
    };
    if g.json {
        #[derive(serde::Serialize)]
        struct Both<'a> {
            #[serde(flatten)]
            verify: &'a sprayvault::verify::VerifyReport,
            trial: &'a Option<TrialReport>,
        }
        output::json(&Both {
            verify: &report,
            trial: &trial,
        })?;
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
        if let Some(t) = &trial {
            print_trial(t);
        }
        println!(
            "verified {} backups, {} objects{}{}: {} problems",
            report.backups,
            report.objects,
            if a.full {
                format!(", {} decrypted and checked", report.decrypted)
            } else {
                String::new()
            },
            match &trial {
                Some(t) => format!(", trial restore of etcd snapshot {}", t.snapshot),
                None => String::new(),
            },
            report.problems.len() + trial.as_ref().map_or(0, |t| t.mismatches.len())
        );
    }
    let trial_ok = trial.as_ref().is_none_or(|t| t.mismatches.is_empty());
    Ok(if report.problems.is_empty() && trial_ok {
        Exit::Success
    } else {
        Exit::Damaged
    })
}

fn run_trial(
    g: &Global,
    vault: &Vault,
    identity: &sprayvault::vault::crypto::Identity,
    at: Option<&str>,
) -> anyhow::Result<TrialReport> {
    let snaps = store::list(vault)?;
    let snap = select::pick(vault, &snaps, at)?;
    let local = trial::find_local(std::env::var_os("PATH"))?;
    let progress = g.progress();
    // A vault error inside keeps its own class (wrong identity: exit 6).
    Ok(trial::trial(vault, snap, identity, &local, &progress)?)
}

fn print_trial(t: &TrialReport) {
    let (r, o) = (&t.recorded, &t.observed);
    let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    println!(
        "trial restore of etcd snapshot {} (taken {} from {} on {}) with local etcd {} ({}), in {} (0700, removed)",
        t.snapshot,
        rfc3339(r.taken),
        r.member,
        r.node,
        t.etcd_version,
        t.tool,
        t.workdir
    );
    let mut tb = output::Table::new(&["CHECK", "RECORDED", "RESTORED"]);
    let ok = if o.trailer_ok { "ok" } else { "BAD" };
    tb.row(vec![
        "file size".into(),
        r.size.to_string(),
        o.size.to_string(),
    ]);
    tb.row(vec!["sha256 trailer".into(), "-".into(), ok.into()]);
    tb.row(vec![
        "snapshot status: revision".into(),
        r.revision.to_string(),
        num(o.status_revision),
    ]);
    tb.row(vec![
        "snapshot status: keys".into(),
        r.keys.to_string(),
        num(o.status_keys),
    ]);
    tb.row(vec![
        "served revision".into(),
        r.revision.to_string(),
        num(o.served_revision),
    ]);
    tb.row(vec![
        "served live keys".into(),
        format!("<= {}", r.keys),
        num(o.served_keys),
    ]);
    tb.row(vec![
        "hashkv at the revision".into(),
        if r.hashkv.is_some() {
            "recorded"
        } else {
            "not recorded"
        }
        .into(),
        match (&r.hashkv, &o.served_hashkv) {
            (None, _) => "-".into(),
            (Some(a), Some(b)) if a == b => "same".into(),
            (Some(_), Some(_)) => "differs".into(),
            (Some(_), None) => "nothing".into(),
        },
    ]);
    tb.row(vec![
        "sample keys read back".into(),
        "-".into(),
        format!(
            "{}/{}",
            o.sample.len(),
            o.sample.len() + o.sample_missing.len()
        ),
    ]);
    tb.print();
    if !o.sample.is_empty() {
        println!("sample: {}", o.sample.join(" "));
    }
    println!("compared: {}", trial::content_check(r));
    for m in &t.mismatches {
        println!("MISMATCH etcd snapshot {}: {m}", t.snapshot);
    }
    println!(
        "trial restore of etcd snapshot {}: {} in {:.1} s",
        t.snapshot,
        if t.mismatches.is_empty() {
            format!(
                "restores to what its backup recorded (revision {}, {} keys)",
                r.revision, r.keys
            )
        } else {
            format!(
                "does NOT restore to what its backup recorded ({} mismatches)",
                t.mismatches.len()
            )
        },
        t.seconds
    );
}
