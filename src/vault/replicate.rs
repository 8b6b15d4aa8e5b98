//! Off-site copies: pushing the vault, every ref it uses, to a git remote
//! and pulling it back, with the system `git` over the system `ssh` (so
//! `~/.ssh/config`, agents and ProxyJump work; libgit2's own SSH transport
//! would ignore them). Host keys are checked strictly.
//!
//! Replication shares retention's lock and its record of pruned refs
//! (`pruned`): `pull` runs under the vault lock and never fetches a snapshot
//! this vault pruned; `push --prune` deletes on the remote exactly the refs
//! that `prune` removed here. What to fetch or delete is decided by the pure
//! functions of `plan` over listings of both sides.

pub mod plan;
pub(crate) mod pruned;

use super::lock::VaultLock;
use super::{Vault, VaultError};
use plan::{MainAction, Refs};
use pruned::PrunedRecord;
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// The name of the vault's off-site remote in its git configuration.
pub const REMOTE: &str = "offsite";
/// What is replicated: the backup branch and every sprayvault ref.
const REFSPECS: [&str; 2] = [MAIN_REFSPEC, SPRAYVAULT_REFSPEC];
const MAIN_REFSPEC: &str = "refs/heads/main:refs/heads/main";
const SPRAYVAULT_REFSPEC: &str = "refs/sprayvault/*:refs/sprayvault/*";
/// Where snapshot (and any later sprayvault) refs live.
pub const SPRAYVAULT_REFS: &str = "refs/sprayvault/";

#[derive(Debug, Error)]
pub enum ReplicateError {
    #[error("the vault {0} has no off-site remote; set one with `sprayvault remote URL` (for example git@git.example:ops/vault.git)")]
    NoRemote(PathBuf),
    #[error(
        "remote URL {0:?} is not allowed: it must not start with '-' or contain control characters"
    )]
    BadUrl(String),
    #[error("cannot run git: {0}; install git")]
    Spawn(std::io::Error),
    #[error("git {what} to {url} failed: {stderr}; check the remote URL, ssh access and known_hosts, and that the remote's history was not rewritten")]
    Git {
        what: &'static str,
        url: String,
        stderr: String,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("{0}; the pulled refs were put back as they were")]
    Trust(super::trust::TrustError),
}

impl crate::error::Classify for ReplicateError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            ReplicateError::Trust(t) => t.class(),
            ReplicateError::Vault(v) => v.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}

/// `refs/heads/main` and every ref under `refs/sprayvault/`, with their targets.
fn replicated_refs(repo: &git2::Repository) -> Vec<(String, git2::Oid)> {
    let mut out = vec![];
    if let Ok(o) = repo.refname_to_id(super::BRANCH) {
        out.push((super::BRANCH.to_string(), o));
    }
    if let Ok(refs) = repo.references_glob("refs/sprayvault/*") {
        for r in refs.flatten() {
            if let (Some(n), Some(o)) = (r.name(), r.target()) {
                out.push((n.to_string(), o));
            }
        }
    }
    out
}

fn as_refs(list: Vec<(String, git2::Oid)>) -> Refs {
    list.into_iter().collect()
}

/// Puts the replicated refs back to `old`: a pull whose history does not
/// authenticate leaves the vault as it was.
fn restore_refs(repo: &git2::Repository, old: &[(String, git2::Oid)]) {
    for (name, _) in replicated_refs(repo) {
        if !old.iter().any(|(n, _)| *n == name) {
            if let Ok(mut r) = repo.find_reference(&name) {
                let _ = r.delete();
            }
        }
    }
    for (name, oid) in old {
        let _ = repo.reference(name, *oid, true, "sprayvault pull: refused, put back");
    }
}

fn git(dir: &Path, ssh_config: Option<&Path>) -> Command {
    let mut ssh = String::from("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes");
    if let Some(f) = ssh_config {
        ssh.push_str(&format!(
            " -F '{}'",
            f.display().to_string().replace('\'', "'\\''")
        ));
    }
    let mut c = Command::new("git");
    c.arg("--git-dir")
        .arg(dir)
        .env("GIT_SSH_COMMAND", ssh)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR");
    c
}

fn check_url(url: &str) -> Result<(), ReplicateError> {
    if url.is_empty() || url.starts_with('-') || url.chars().any(|c| c.is_control()) {
        return Err(ReplicateError::BadUrl(url.to_string()));
    }
    Ok(())
}

fn run(mut cmd: Command, what: &'static str, url: &str) -> Result<String, ReplicateError> {
    let out = cmd.output().map_err(ReplicateError::Spawn)?;
    let stderr = String::from_utf8_lossy(&out.stderr)
        .trim()
        .replace('\n', " / ");
    if !out.status.success() {
        return Err(ReplicateError::Git {
            what,
            url: url.to_string(),
            stderr,
        });
    }
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr
    ))
}

impl Vault {
    pub fn set_remote(&self, url: &str) -> Result<(), ReplicateError> {
        check_url(url)?;
        let mut cfg = self.repo().config().map_err(|source| VaultError::Git {
            dir: self.dir().into(),
            what: "configuring".into(),
            error: source,
        })?;
        cfg.set_str(&format!("remote.{REMOTE}.url"), url)
            .map_err(|source| VaultError::Git {
                dir: self.dir().into(),
                what: "configuring".into(),
                error: source,
            })?;
        Ok(())
    }

    pub fn remote_url(&self) -> Option<String> {
        self.repo()
            .config()
            .ok()?
            .get_string(&format!("remote.{REMOTE}.url"))
            .ok()
    }
}

/// Pushes the branch and every sprayvault ref; never forces, so a remote
/// whose history was rewritten is reported, not overwritten.
pub fn push(vault: &Vault, ssh_config: Option<&Path>) -> Result<String, ReplicateError> {
    let url = vault
        .remote_url()
        .ok_or_else(|| ReplicateError::NoRemote(vault.dir().into()))?;
    check_url(&url)?;
    let mut cmd = git(vault.dir(), ssh_config);
    cmd.args(["push", "--porcelain", REMOTE]).args(REFSPECS);
    run(cmd, "push", &url)
}

/// The remote's refs (`git ls-remote`): the branch and the sprayvault refs.
fn ls_remote(dir: &Path, ssh_config: Option<&Path>, url: &str) -> Result<Refs, ReplicateError> {
    let mut cmd = git(dir, ssh_config);
    cmd.args(["ls-remote", "--refs", REMOTE]);
    let out = cmd.output().map_err(ReplicateError::Spawn)?;
    if !out.status.success() {
        return Err(ReplicateError::Git {
            what: "ls-remote",
            url: url.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " / "),
        });
    }
    let mut refs = Refs::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((oid, name)) = line.split_once('\t') else {
            continue;
        };
        if name != super::BRANCH && !name.starts_with(SPRAYVAULT_REFS) {
            continue;
        }
        let oid = git2::Oid::from_str(oid).map_err(|_| ReplicateError::Git {
            what: "ls-remote",
            url: url.to_string(),
            stderr: format!("the remote listed {name} at {oid:?}, not a commit id"),
        })?;
        refs.insert(name.to_string(), oid);
    }
    Ok(refs)
}

/// `push --prune`: deletes on the remote exactly the snapshot refs this
/// vault pruned (`pruned::PrunedRecord`, name and commit both matching) and
/// returns their names. Each deletion carries a lease on the recorded
/// commit, so a ref changed on the remote since the listing is not deleted
/// (the push then fails and says so). The record is kept: it is what makes
/// later pulls refuse those snapshots. Runs under the vault lock, which the
/// caller proves by passing it.
pub fn prune_remote(
    vault: &Vault,
    _held: &VaultLock,
    ssh_config: Option<&Path>,
) -> Result<Vec<String>, ReplicateError> {
    let url = vault
        .remote_url()
        .ok_or_else(|| ReplicateError::NoRemote(vault.dir().into()))?;
    check_url(&url)?;
    let record = PrunedRecord::load(vault.dir())?;
    if record.is_empty() {
        return Ok(vec![]);
    }
    let remote = ls_remote(vault.dir(), ssh_config, &url)?;
    let local = as_refs(replicated_refs(vault.repo()));
    let delete = plan::remote_deletions(&record, &local, &remote);
    if delete.is_empty() {
        return Ok(vec![]);
    }
    let mut cmd = git(vault.dir(), ssh_config);
    cmd.args(["push", "--porcelain"]);
    for (name, oid) in &delete {
        cmd.arg(format!("--force-with-lease={name}:{oid}"));
    }
    cmd.arg(REMOTE);
    for (name, _) in &delete {
        cmd.arg(format!(":{name}"));
    }
    run(cmd, "push --prune", &url)?;
    Ok(delete.into_iter().map(|(n, _)| n).collect())
}

/// What a pull did.
#[derive(Debug)]
pub struct PullReport {
    /// What git printed.
    pub output: String,
    pub main: MainAction,
    /// Remote refs not pulled because this vault pruned their snapshot.
    pub skipped_pruned: Vec<String>,
}

/// The vault lock of `dir`; a directory that is not a vault yet (a first
/// pull) is locked through its lock file all the same.
fn lock_dir(dir: &Path, wait: std::time::Duration) -> Result<VaultLock, ReplicateError> {
    if let Ok(v) = Vault::open(dir) {
        return Ok(v.lock(wait)?);
    }
    let local = dir.join("sprayvault");
    std::fs::create_dir_all(&local).map_err(|source| VaultError::Io {
        path: local.clone(),
        error: source,
    })?;
    VaultLock::acquire(&local.join("lock"), wait).map_err(|e| {
        ReplicateError::Vault(match e {
            super::lock::LockError::Busy(holder) => VaultError::Locked {
                dir: dir.into(),
                holder,
            },
            super::lock::LockError::Io(source) => VaultError::Io {
                path: local.join("lock"),
                error: source,
            },
        })
    })
}

/// Fetches the branch and every sprayvault ref from the remote, fast-forward
/// only, under the vault lock (waiting up to `lock_wait`). Never fetches a
/// snapshot this vault pruned, under whatever name the remote has it, and
/// leaves a branch that is ahead of the remote's (a backup not pushed yet)
/// where it is. Creates the vault directory when it does not exist yet
/// (then `url` is required); a vault made this way can restore but not back
/// up until its keyed-hash key is recovered (see `VaultError::MacKey`).
/// A pull into a directory that did not exist leaves nothing behind when it
/// fails (an untrusted or rolled-back copy is not kept).
pub fn pull(
    dir: &Path,
    url: Option<&str>,
    ssh_config: Option<&Path>,
    naming: &super::trust::Naming,
    lock_wait: std::time::Duration,
) -> Result<(Vault, PullReport, super::trust::Trusted), ReplicateError> {
    let created = dir.symlink_metadata().is_err();
    let pulled = pull_into(dir, url, ssh_config, naming, lock_wait);
    if pulled.is_err() && created {
        let _ = std::fs::remove_dir_all(dir);
    }
    pulled
}

fn pull_into(
    dir: &Path,
    url: Option<&str>,
    ssh_config: Option<&Path>,
    naming: &super::trust::Naming,
    lock_wait: std::time::Duration,
) -> Result<(Vault, PullReport, super::trust::Trusted), ReplicateError> {
    if !dir.exists() {
        let url = url.ok_or_else(|| ReplicateError::NoRemote(dir.into()))?;
        check_url(url)?;
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).initial_head("main").mkdir(true);
        git2::Repository::init_opts(dir, &opts).map_err(|source| VaultError::Git {
            dir: dir.into(),
            what: "creating the repository".into(),
            error: source,
        })?;
        std::fs::create_dir_all(dir.join("sprayvault")).map_err(|source| VaultError::Io {
            path: dir.join("sprayvault"),
            error: source,
        })?;
    }
    // The fetch moves the branch and adds snapshot refs: it runs under the
    // vault lock like every other writer, so it never races a backup or a
    // prune (whose record it reads).
    let _lock = lock_dir(dir, lock_wait)?;
    let repo = git2::Repository::open_bare(dir).map_err(|e| VaultError::NoVault {
        dir: dir.into(),
        why: e.message().to_string(),
    })?;
    // A pull that fails leaves no object it fetched behind.
    let objects = dir.join("objects");
    let before = super::mark::object_files(&objects).ok();
    let pulled = fetch_locked(dir, &repo, url, ssh_config, naming);
    if let (Err(e), Some(before)) = (&pulled, &before) {
        let wrote = super::mark::remove_new(&objects, before);
        if let ReplicateError::Vault(v) = e {
            if v.is_disk_full() {
                return Err(VaultError::DiskFull {
                    dir: dir.to_path_buf(),
                    what: super::removed_what(wrote),
                }
                .into());
            }
        }
        if e.to_string().contains("No space left on device") {
            return Err(VaultError::DiskFull {
                dir: dir.to_path_buf(),
                what: super::removed_what(wrote),
            }
            .into());
        }
    }
    pulled
}

/// The fetch and its checks, under the vault lock.
fn fetch_locked(
    dir: &Path,
    repo: &git2::Repository,
    url: Option<&str>,
    ssh_config: Option<&Path>,
    naming: &super::trust::Naming,
) -> Result<(Vault, PullReport, super::trust::Trusted), ReplicateError> {
    if let Some(u) = url {
        check_url(u)?;
        repo.config()
            .and_then(|mut c| c.set_str(&format!("remote.{REMOTE}.url"), u))
            .map_err(|source| VaultError::Git {
                dir: dir.into(),
                what: "configuring".into(),
                error: source,
            })?;
    }
    let url = repo
        .config()
        .ok()
        .and_then(|c| c.get_string(&format!("remote.{REMOTE}.url")).ok())
        .ok_or_else(|| ReplicateError::NoRemote(dir.into()))?;
    let record = PrunedRecord::load(dir)?;
    let before = replicated_refs(repo);
    let local = as_refs(before.clone());
    let remote = ls_remote(dir, ssh_config, &url)?;
    let in_history = |commit: git2::Oid, tip: git2::Oid| {
        repo.find_commit(commit).is_ok() && repo.graph_descendant_of(tip, commit).unwrap_or(false)
    };
    let decided = plan::pull_plan(&record, &local, &remote, &in_history);
    let mut refspecs: Vec<String> = vec![];
    if decided.main == MainAction::Fetch {
        refspecs.push(MAIN_REFSPEC.into());
    }
    if decided.fetch_refs {
        refspecs.push(SPRAYVAULT_REFSPEC.into());
        // Negative refspecs (git 2.29): the pruned snapshots are not even
        // transferred.
        refspecs.extend(decided.skip.iter().map(|n| format!("^{n}")));
    }
    let mut out = String::new();
    if !refspecs.is_empty() {
        let mut cmd = git(dir, ssh_config);
        cmd.args(["fetch", "--no-tags", "--no-write-fetch-head", REMOTE])
            .args(&refspecs);
        out = run(cmd, "fetch", &url)?;
    }
    // The remote may have changed since it was listed: a pruned snapshot
    // that came in anyway is deleted again before anything else looks at it.
    let mut skipped = decided.skip;
    for name in plan::resurrected(&record, &local, &as_refs(replicated_refs(repo))) {
        if let Ok(mut r) = repo.find_reference(&name) {
            r.delete().map_err(|source| VaultError::Git {
                dir: dir.into(),
                what: format!("deleting the pruned snapshot ref {name} the fetch brought back"),
                error: source,
            })?;
        }
        skipped.push(name);
    }
    skipped.sort();
    skipped.dedup();
    // Everything fetched must be signed by the pinned signer: the branch's
    // history and every snapshot ref.
    let checked = Vault::open(dir)
        .map_err(ReplicateError::from)
        .and_then(|vault| {
            let extra: Vec<git2::Oid> = replicated_refs(vault.repo())
                .into_iter()
                .filter(|(n, _)| n != super::BRANCH)
                .map(|(_, o)| o)
                .collect();
            match vault.authenticate(&extra, naming).map(|t| t.trusted) {
                Ok(t) => Ok((vault, t)),
                Err(e) => Err(ReplicateError::Trust(e)),
            }
        });
    match checked {
        Ok((vault, t)) => Ok((
            vault,
            PullReport {
                output: out,
                main: decided.main,
                skipped_pruned: skipped,
            },
            t,
        )),
        Err(e) => {
            restore_refs(repo, &before);
            Err(e)
        }
    }
}
