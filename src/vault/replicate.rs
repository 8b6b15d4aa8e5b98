//! Off-site copies: pushing the vault, every ref it uses, to a git remote
//! and pulling it back, with the system `git` over the system `ssh` (so
//! `~/.ssh/config`, agents and ProxyJump work; libgit2's own SSH transport
//! would ignore them). Host keys are checked strictly.

use super::{Vault, VaultError};
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// The name of the vault's off-site remote in its git configuration.
pub const REMOTE: &str = "offsite";
/// What is replicated: the backup branch and every sprayvault ref.
const REFSPECS: [&str; 2] = [
    "refs/heads/main:refs/heads/main",
    "refs/sprayvault/*:refs/sprayvault/*",
];

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
            source,
        })?;
        cfg.set_str(&format!("remote.{REMOTE}.url"), url)
            .map_err(|source| VaultError::Git {
                dir: self.dir().into(),
                what: "configuring".into(),
                source,
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

/// Fetches the branch and every sprayvault ref from the remote, fast-forward
/// only. Creates the vault directory when it does not exist yet (then `url`
/// is required); a vault made this way can restore but not back up until its
/// keyed-hash key is recovered (see `VaultError::MacKey`).
pub fn pull(
    dir: &Path,
    url: Option<&str>,
    ssh_config: Option<&Path>,
    accept_new_key: bool,
) -> Result<(Vault, String, super::trust::Trusted), ReplicateError> {
    if !dir.exists() {
        let url = url.ok_or_else(|| ReplicateError::NoRemote(dir.into()))?;
        check_url(url)?;
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).initial_head("main").mkdir(true);
        let repo = git2::Repository::init_opts(dir, &opts).map_err(|source| VaultError::Git {
            dir: dir.into(),
            what: "creating the repository".into(),
            source,
        })?;
        repo.config()
            .and_then(|mut c| c.set_str(&format!("remote.{REMOTE}.url"), url))
            .map_err(|source| VaultError::Git {
                dir: dir.into(),
                what: "configuring".into(),
                source,
            })?;
        std::fs::create_dir_all(dir.join("sprayvault")).map_err(|source| VaultError::Io {
            path: dir.join("sprayvault"),
            source,
        })?;
    } else if let Some(u) = url {
        let v = Vault::open(dir)?;
        v.set_remote(u)?;
    }
    let repo = git2::Repository::open_bare(dir).map_err(|e| VaultError::NoVault {
        dir: dir.into(),
        why: e.message().to_string(),
    })?;
    let url = repo
        .config()
        .ok()
        .and_then(|c| c.get_string(&format!("remote.{REMOTE}.url")).ok())
        .ok_or_else(|| ReplicateError::NoRemote(dir.into()))?;
    // The fetch moves the branch: it runs under the vault lock like every
    // other writer, so it never races a backup or a prune.
    let _lock = {
        let v = Vault::open(dir).ok();
        match v {
            Some(v) => Some(v.lock(std::time::Duration::from_secs(60))?),
            None => None,
        }
    };
    let before = replicated_refs(&repo);
    let mut cmd = git(dir, ssh_config);
    cmd.args(["fetch", "--no-write-fetch-head", REMOTE])
        .args(REFSPECS);
    let out = run(cmd, "fetch", &url)?;
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
            match vault.authenticate(&extra, accept_new_key) {
                Ok(t) => Ok((vault, t)),
                Err(e) => Err(ReplicateError::Trust(e)),
            }
        });
    match checked {
        Ok((vault, t)) => Ok((vault, out, t)),
        Err(e) => {
            restore_refs(&repo, &before);
            Err(e)
        }
    }
}
