//! `sprayvault certs`: every certificate on every node, soonest expiry first.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::certs::{classify, embedded, Content};
use sprayvault::history::Contents;
use sprayvault::vault::manifest::Kind;
use sprayvault::vault::{rfc3339, Vault};

#[derive(clap::Args)]
pub struct Args {
    /// Which backup (commit id, latest, latest~N, or a date); default latest.
    at: Option<String>,
    /// Only this node.
    #[arg(long)]
    node: Option<String>,
    /// Exit 8 if any certificate expires within this time: e.g. 30d, 12h, 2w
    /// (a plain number is days).
    #[arg(long, value_name = "DURATION", value_parser = args::days)]
    expiring_within: Option<std::time::Duration>,
    #[command(flatten)]
    identity: args::Identity,
}

#[derive(serde::Serialize)]
struct Row {
    node: String,
    path: String,
    subject: String,
    issuer: String,
    serial: String,
    not_after: String,
    not_after_unix: i64,
    days_left: i64,
    within_window: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    super::trust::note_unpinned(g, &vault);
    let backup = vault.backup(vault.resolve(a.at.as_deref())?)?;
    if let Some(n) = &a.node {
        backup.node(n)?;
    }
    let identity = a.identity.load()?;
    let mut contents = Contents::new(&vault, &identity);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // A window past the end of time holds every certificate.
    let until = a
        .expiring_within
        .map(|w| now.saturating_add(i64::try_from(w.as_secs()).unwrap_or(i64::MAX)));
    let mut rows = Vec::new();
    for (node, state) in backup
        .nodes
        .iter()
        .filter(|(n, _)| a.node.as_ref().is_none_or(|w| w == *n))
    {
        for e in state
            .manifest
            .entries
            .values()
            .filter(|e| e.kind == Kind::File)
        {
            let data = contents.get(&backup, node, &e.path)?;
            let certs = match classify(&data) {
                Content::Certificates(c) => c,
                _ if e.path.ends_with(".conf") => embedded(&data),
                _ => continue,
            };
            for c in certs {
                rows.push(Row {
                    node: node.clone(),
                    path: e.path.clone(),
                    within_window: until.is_some_and(|u| c.not_after <= u),
                    days_left: (c.not_after - now).div_euclid(86400),
                    not_after: rfc3339(c.not_after),
                    not_after_unix: c.not_after,
                    subject: c.subject,
                    issuer: c.issuer,
                    serial: c.serial,
                });
            }
        }
    }
    rows.sort_by(|x, y| {
        (x.not_after_unix, &x.node, &x.path).cmp(&(y.not_after_unix, &y.node, &y.path))
    });
    let expiring = rows.iter().filter(|r| r.within_window).count();
    if g.json {
        output::json(
            &serde_json::json!({"commit": backup.commit.to_string(), "certificates": rows, "expiring": expiring}),
        )?;
    } else {
        let mut t = output::Table::new(&["EXPIRES", "DAYS", "NODE", "PATH", "SUBJECT", "SERIAL"]);
        for r in &rows {
            t.row(vec![
                format!("{}{}", r.not_after, if r.within_window { " !" } else { "" }),
                r.days_left.to_string(),
                r.node.clone(),
                r.path.clone(),
                r.subject.clone(),
                r.serial.clone(),
            ]);
        }
        t.print();
        println!(
            "{} certificates in backup {}{}",
            rows.len(),
            backup.short_id(),
            match a.expiring_within {
                Some(_) => format!(", {expiring} expiring within the window"),
                None => String::new(),
            }
        );
    }
    Ok(if expiring > 0 {
        Exit::Expiring
    } else {
        Exit::Success
    })
}
