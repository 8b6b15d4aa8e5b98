//! `sprayvault export NODE -o FILE`: a node's recorded files as a tar
//! archive (gzip when FILE ends in `.gz`, `-` for stdout), for restores that
//! cannot go over SSH (a console, a rescue system, a USB stick).

use super::exit::Exit;
use super::{args, Global, UsageError};
use sprayvault::export::{export, ExportError, ExportReport};
use sprayvault::vault::crypto::Identity;
use sprayvault::vault::trust::Authentic;
use sprayvault::vault::{rfc3339, Vault};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The node whose recorded files to export.
    node: String,
    #[command(flatten)]
    identity: args::Identity,
    /// The archive to write (mode 0600; gzip-compressed when it ends in .gz), or - for stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Which backup: a commit id, latest, latest~N, or a date (the last backup at or before it).
    #[arg(long, value_name = "REV|DATE")]
    at: Option<String>,
}

fn gz(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz" || e == "tgz")
}

/// Writes the archive into `w`, gzip-compressed when asked; gives `w` back.
fn archive<W: Write>(
    vault: &Vault,
    backup: &Authentic<sprayvault::vault::Backup>,
    node: &str,
    identity: &Identity,
    w: W,
    compress: bool,
) -> anyhow::Result<(ExportReport, W)> {
    if compress {
        let enc = flate2::write::GzEncoder::new(w, flate2::Compression::new(6));
        let (r, enc) = export(vault, backup, node, identity, enc)?;
        Ok((r, enc.finish()?))
    } else {
        Ok(export(vault, backup, node, identity, w)?)
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(
                c.downcast_ref::<ExportError>(),
                Some(ExportError::Write(io)) if io.kind() == std::io::ErrorKind::BrokenPipe
            )
    })
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    sprayvault::paths::check_node_name(&a.node).map_err(|e| UsageError(e.to_string()))?;
    let vault = Vault::open(g.vault_dir()?)?;
    let trusted = super::trust::authenticate(g, &vault, &[])?;
    let identity = a.identity.load()?;
    let backup = trusted.backup(a.at.as_deref())?;
    super::trust::say_age(g, &backup);
    backup.node(&a.node)?;
    let report = if a.output == Path::new("-") {
        let out = BufWriter::with_capacity(256 << 10, std::io::stdout().lock());
        let result =
            archive(&vault, &backup, &a.node, &identity, out, false).and_then(|(r, mut w)| {
                w.flush()?;
                Ok(r)
            });
        match result {
            Ok(r) => r,
            // The reader went away (`| head`): quietly, but not a success.
            Err(e) if broken_pipe(&e) => return Ok(Exit::Failure),
            Err(e) => return Err(e),
        }
    } else {
        write_file(&vault, &backup, &a.node, &identity, &a.output)?
    };
    if !g.quiet {
        eprintln!(
            "exported {} from backup {} ({}): {} entries, {} files, {} bytes of content to {}",
            report.node,
            backup.short_id(),
            rfc3339(backup.time),
            report.entries,
            report.files,
            report.bytes,
            a.output.display()
        );
    }
    Ok(Exit::Success)
}

/// Writes the archive under a temporary name beside `path` (mode 0600 from
/// creation: it holds the node's secrets in plaintext), then renames it, so
/// that a failed export leaves nothing half-written.
fn write_file(
    vault: &Vault,
    backup: &Authentic<sprayvault::vault::Backup>,
    node: &str,
    identity: &Identity,
    path: &Path,
) -> anyhow::Result<ExportReport> {
    if path.symlink_metadata().is_ok() {
        return Err(UsageError(format!(
            "{} already exists; remove it or choose another -o",
            path.display()
        ))
        .into());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| UsageError(format!("-o {} names no file", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{:016x}.part",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    let result = (|| {
        let w = BufWriter::with_capacity(256 << 10, file);
        let (r, w) = archive(vault, backup, node, identity, w, gz(path))?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        anyhow::Ok(r)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
