//! `sprayvault show`: the files of a node (or all nodes) in one backup.

use super::exit::Exit;
use super::{args, output, Global};
use sprayvault::certs::{classify, Content};
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
    #[command(flatten)]
    identity: args::IdentityOpt,
}

#[derive(serde::Serialize)]
struct Row {
    node: String,
    path: String,
    kind: &'static str,
    #[serde(skip)]
    letter: char,
    mode: String,
    owner: String,
    group: String,
    size: u64,
    mtime: String,
    target: Option<String>,
    subject: Option<String>,
    not_after: Option<String>,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let vault = Vault::open(g.vault_dir()?)?;
    super::trust::note_unpinned(g, &vault);
    let backup = vault.backup(vault.resolve(a.at.as_deref())?)?;
    if let Some(n) = &a.node {
        backup.node(n)?;
    }
    let identity = a.identity.load()?;
    let mut contents = identity.as_ref().map(|i| Contents::new(&vault, i));
    let mut rows = Vec::new();
    for (node, state) in backup
        .nodes
        .iter()
        .filter(|(n, _)| a.node.as_ref().is_none_or(|w| w == *n))
    {
        for e in state.manifest.entries.values() {
            let (mut subject, mut not_after) = (None, None);
            if let (Some(c), Kind::File) = (contents.as_mut(), e.kind) {
                if let Content::Certificates(certs) = classify(&c.get(&backup, node, &e.path)?) {
                    subject = Some(certs[0].subject.clone());
                    not_after = Some(rfc3339(certs[0].not_after));
                }
            }
            rows.push(Row {
                node: node.clone(),
                path: e.path.clone(),
                kind: e.kind.word(),
                letter: e.kind.letter(),
                mode: format!("{:04o}", e.mode),
                owner: e.owner.clone().unwrap_or_else(|| e.uid.to_string()),
                group: e.group.clone().unwrap_or_else(|| e.gid.to_string()),
                size: e.size,
                mtime: rfc3339(e.mtime),
                target: e.target.clone(),
                subject,
                not_after,
            });
        }
    }
    if g.json {
        output::json(
            &serde_json::json!({"commit": backup.commit.to_string(), "time": rfc3339(backup.time), "files": rows}),
        )?;
        return Ok(Exit::Success);
    }
    println!("backup {} ({})", backup.short_id(), rfc3339(backup.time));
    let mut t = output::Table::new(&["NODE", "MODE", "OWNER", "SIZE", "PATH", "CERTIFICATE"]);
    for r in rows {
        let path = match &r.target {
            Some(t) => format!("{} -> {t}", r.path),
            None => r.path.clone(),
        };
        let cert = match (&r.subject, &r.not_after) {
            (Some(s), Some(n)) => format!("{s}, expires {n}"),
            _ => String::new(),
        };
        t.row(vec![
            r.node,
            format!("{} {}", r.letter, r.mode),
            format!("{}:{}", r.owner, r.group),
            r.size.to_string(),
            path,
            cert,
        ]);
    }
    t.print();
    Ok(Exit::Success)
}
