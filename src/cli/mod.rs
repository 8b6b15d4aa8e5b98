//! The command line: the only place that knows clap, prints, or checks for a
//! terminal. Each subcommand lives in its own file and returns an [`Exit`].

pub mod args;
mod backup;
mod certs;
mod completions;
mod control;
mod diff;
mod etcd;
pub mod exit;
mod export;
mod facts;
mod init;
mod inventory;
mod log;
mod output;
mod preflight;
mod progress;
mod replace;
mod replicate;
mod restore;
mod run;
mod show;
mod trust;
mod verify;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use exit::Exit;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "sprayvault",
    version,
    about = "Back up kubespray nodes into an age-encrypted git vault, and restore them onto fresh machines"
)]
pub struct Cli {
    /// The vault: a bare git repository created by `sprayvault init`.
    #[arg(long, global = true, env = "SPRAYVAULT_VAULT", value_name = "DIR")]
    vault: Option<PathBuf>,
    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Print only errors on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Also show each node as it starts and keep every progress line.
    #[arg(long, short, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Accept a vault whose signer or mac-key differs from the pinned one, and pin the new one.
    #[arg(long, global = true)]
    accept_new_key: bool,
    /// Trust the vault signed by this key (SHA256:..., as `sprayvault init`
    /// printed it) and pin it: how a machine that has never read the vault
    /// names the one it trusts.
    #[arg(
        long,
        global = true,
        env = "SPRAYVAULT_EXPECT_SIGNER",
        value_name = "SIGNER"
    )]
    expect_signer: Option<String>,
    /// Warn when the vault's newest backup is older than this (48h; 30m, 12h, 3d).
    #[arg(long, global = true, env = "SPRAYVAULT_MAX_AGE", value_name = "DURATION", default_value = "48h", value_parser = args::seconds)]
    max_age: std::time::Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a vault encrypted to the given public recipients.
    Init(init::Args),
    /// Read a kubespray inventory the way Ansible does and show its hosts.
    Inventory(inventory::Args),
    /// Pull every node's state into the vault as one new commit.
    Backup(backup::Args),
    /// Put a node's state, as of a backup, back onto a machine.
    Restore(restore::Args),
    /// Replace a dead or reinstalled node: its files, its etcd member, the fact cache.
    Replace(replace::Args),
    /// Check, read-only, what `cluster.yml --limit NODE...` needs: facts, the nodes, certificates, etcd.
    Preflight(preflight::Args),
    /// One line per backup: time, nodes, changes, failures.
    Log(log::Args),
    /// The files of a node (or all nodes) in one backup.
    Show(show::Args),
    /// What changed between two backups, certificates in meaning.
    Diff(diff::Args),
    /// Every certificate on every node, soonest expiry first.
    Certs(certs::Args),
    /// Show or set the vault's off-site git remote.
    Remote(replicate::RemoteArgs),
    /// Push the vault (every ref it uses) to its off-site remote.
    Push(replicate::PushArgs),
    /// Fetch the vault from its off-site remote (creating it if needed).
    Pull(replicate::PullArgs),
    /// Check that every object of every backup is present and intact.
    Verify(verify::Args),
    /// etcd snapshots: list them, export one, restore every member from one.
    #[command(subcommand)]
    Etcd(etcd::Command),
    /// Remove old etcd snapshots by a retention policy, and free their space.
    Prune(etcd::PruneArgs),
    /// Ansible's fact cache: restore it, or see what changed.
    #[command(subcommand)]
    Facts(facts::Command),
    /// The control host's kubespray directory: show it, or restore it into a directory.
    #[command(subcommand)]
    Control(control::Command),
    /// Write a node's recorded files as a tar archive (for stock tar to restore).
    Export(export::Args),
    /// Print a shell completion script (bash, zsh, fish) on stdout.
    Completions(completions::Args),
    /// Write the man pages (sprayvault.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    ManPages(completions::ManArgs),
    /// The vault's fingerprint (signer, mac-key): check and pin it, or print git's allowed-signers line.
    Trust(trust::Args),
}

/// What every subcommand gets besides its own arguments.
pub struct Global {
    pub vault: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub naming: sprayvault::vault::trust::Naming,
    pub max_age: std::time::Duration,
}

impl Global {
    /// Progress on stderr as `--quiet` and `--verbose` ask.
    pub fn progress(&self) -> progress::Stderr {
        progress::Stderr::with(self.quiet, self.verbose)
    }

    pub fn vault_dir(&self) -> anyhow::Result<&PathBuf> {
        self.vault.as_ref().ok_or_else(|| {
            anyhow::Error::new(UsageError(
                "no vault given: pass --vault DIR or set SPRAYVAULT_VAULT".into(),
            ))
        })
    }
}

/// A mistake on the command line found after parsing (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The whole command line as clap sees it, exit code table included (the
/// man pages and completions are generated from it).
pub fn command() -> clap::Command {
    Cli::command().after_help(exit::table())
}

pub fn main() -> Exit {
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            };
        }
    };
    let global = Global {
        vault: cli.vault,
        json: cli.json,
        quiet: cli.quiet,
        verbose: cli.verbose,
        naming: sprayvault::vault::trust::Naming {
            expect_signer: cli.expect_signer.filter(|s| !s.is_empty()),
            accept_new_key: cli.accept_new_key,
        },
        max_age: cli.max_age,
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&global, a),
        Command::Inventory(a) => inventory::run(&global, a),
        Command::Backup(a) => backup::run(&global, a),
        Command::Restore(a) => restore::run(&global, a),
        Command::Replace(a) => replace::run(&global, a),
        Command::Preflight(a) => preflight::run(&global, a),
        Command::Log(a) => log::run(&global, a),
        Command::Show(a) => show::run(&global, a),
        Command::Diff(a) => diff::run(&global, a),
        Command::Certs(a) => certs::run(&global, a),
        Command::Remote(a) => replicate::remote(&global, a),
        Command::Push(a) => replicate::push(&global, a),
        Command::Pull(a) => replicate::pull(&global, a),
        Command::Verify(a) => verify::run(&global, a),
        Command::Facts(c) => facts::run(&global, c),
        Command::Etcd(c) => etcd::run(&global, c),
        Command::Prune(a) => etcd::prune_cmd(&global, a),
        Command::Control(c) => control::run(&global, c),
        Command::Export(a) => export::run(&global, a),
        Command::Completions(a) => completions::run(a),
        Command::ManPages(a) => completions::man_pages(a),
        Command::Trust(a) => trust::run(&global, a),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            let exit = exit_for(&e);
            eprintln!("error: {}", output::error_chain(&e));
            exit
        }
    }
}

/// The exit status of an error: the first error in its chain whose class
/// (every public error type of the library has one, see
/// `sprayvault::error::Classify`; wrappers pass their inner error's class
/// through) means more than a plain failure.
pub fn exit_for(e: &anyhow::Error) -> Exit {
    e.chain()
        .filter_map(status)
        .find(|x| *x != Exit::Failure)
        .unwrap_or(Exit::Failure)
}

/// The status one error of a chain means, if it is one the CLI knows.
fn status(cause: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    use sprayvault::error::Classify;
    macro_rules! first_of {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = cause.downcast_ref::<$t>() {
                return Some(e.class().into());
            })*
        };
    }
    if cause.downcast_ref::<UsageError>().is_some() {
        return Some(Exit::Usage);
    }
    first_of!(
        sprayvault::vault::VaultError,
        sprayvault::vault::crypto::CryptoError,
        sprayvault::vault::trust::TrustError,
        sprayvault::vault::replicate::ReplicateError,
        sprayvault::backup::BackupError,
        sprayvault::restore::RestoreError,
        sprayvault::facts::FactsError,
        sprayvault::export::ExportError,
        sprayvault::etcd::restore::EtcdRestoreError,
        sprayvault::replace::ReplaceError,
        sprayvault::source::SourceError,
        sprayvault::inventory::InventoryError,
        sprayvault::etcd::trial::TrialError,
        sprayvault::vault::config::ConfigError,
        sprayvault::facts::config::FactsConfigError,
        sprayvault::paths::PathError,
        sprayvault::vault::manifest::ManifestError,
        sprayvault::etcd::select::PickError,
    );
    None
}
