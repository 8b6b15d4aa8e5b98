//! The vault: a bare git repository whose file contents are age-encrypted
//! (format specification: `vault-layout/README.md`).
//!
//! Invariants kept here: nothing is written through a working tree (there is
//! none); objects are written before the branch moves; the branch moves by
//! compare-and-swap against the commit a run started from; content already in
//! the vault is never re-encrypted. A backup writes through one
//! [`session::Session`] (every content blob, its commit, the snapshot's
//! commit and ref); `init`, `prune` and `pull` through the vault's own
//! methods; nothing outside this module reaches the repository itself.

pub(crate) mod bindings;
pub(crate) mod blobs;
pub mod config;
pub mod control;
pub mod crypto;
pub mod facts_index;
pub(crate) mod format;
pub(crate) mod lock;
pub(crate) mod loose;
pub(crate) mod mac;
pub mod manifest;
pub(crate) mod mark;
pub mod message;
pub(crate) mod packs;
pub mod pins;
mod read;
pub mod replicate;
pub mod rev;
pub(crate) mod session;
pub mod signing;
pub(crate) mod snapshots;
pub(crate) mod tree;
pub mod trust;
mod write;

pub use read::{check_content, Backup, NodeState};
pub use write::NodeWrite;

use crate::error::{Classify, ErrorClass};
use config::VaultConfig;
use crypto::{CryptoError, Recipients};
use git2::{Oid, Repository};
use mac::MacKey;
use message::RunRecord;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tree::TreeSpec;

pub const BRANCH: &str = "refs/heads/main";
const CONFIG_FILE: &str = "sprayvault.json";
const MAC_KEY_AGE: &str = "mac-key.age";
/// The encrypted detailed failure texts of a backup commit (Section 11).
pub const DETAILS_AGE: &str = "details.age";
const LOCAL_DIR: &str = "sprayvault";

#[derive(Debug, Error)]
pub enum VaultError {
    #[error("no vault at {dir}: {why}; create one with `sprayvault init --vault {dir} --recipient AGE_PUBLIC_KEY`, or check --vault / SPRAYVAULT_VAULT")]
    NoVault { dir: PathBuf, why: String },
    #[error("vault {dir}: the disk is full; {what}: free space on the vault's file system (df {dir}), then run it again")]
    DiskFull { dir: PathBuf, what: String },
    #[error("{dir} already exists and is not empty; choose a new directory for the vault")]
    AlreadyExists { dir: PathBuf },
    #[error("vault {dir} is locked by another sprayvault run{}; wait for it to finish or raise --lock-wait", holder.as_ref().map(|h| format!(" (pid {h})")).unwrap_or_default())]
    Locked {
        dir: PathBuf,
        holder: Option<String>,
    },
    // Causes shown in a message are not also chained (`error`, not
    // `source`): every error is printed once, with no de-duplication.
    #[error("git error while {what} in {dir}: {error}")]
    Git {
        dir: PathBuf,
        what: String,
        error: git2::Error,
    },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("manifest of node {node} at {rev} is damaged: {error}; run `sprayvault verify` and restore from another backup (--at) or from the off-site copy")]
    Manifest {
        node: String,
        rev: String,
        error: manifest::ManifestError,
    },
    #[error(transparent)]
    Rev(#[from] rev::RevError),
    #[error("node {node} is not in backup {rev}; nodes there: {known}")]
    UnknownNode {
        node: String,
        rev: String,
        known: String,
    },
    #[error("backup {rev} is damaged: {what}; run `sprayvault verify` and use another backup (--at) or the off-site copy")]
    Damaged { rev: String, what: String },
    #[error("the keyed-hash key {path} is missing or invalid; recover it on a machine holding an identity with `git --git-dir VAULT cat-file blob main:mac-key.age | age -d -i IDENTITY > {path}` and chmod 600 it")]
    MacKey { path: PathBuf },
    #[error("backup {rev}, node {node}, {path}: {why}; the vault was damaged or tampered with, and nothing was written; run `sprayvault verify --full`, and use another backup (--at) or the off-site copy")]
    Tampered {
        rev: String,
        node: String,
        path: String,
        why: String,
    },
    #[error("signing key: {0}; the backup host's key is VAULT/sprayvault/signing-key (OpenSSH format, mode 0600)")]
    Signing(String),
    #[error("vault {dir}: the newest commit {commit} was not written by this backup host ({why}); a backup never builds on history it did not sign: compare with another copy of the vault and move refs/heads/main back to the newest commit this host signed (`sprayvault trust --allowed-signers` and `git verify-commit`), or, if this host was rebuilt from the off-site copy and its old signing key is lost, back up once with --adopt-history")]
    NotOurs {
        dir: PathBuf,
        commit: String,
        why: String,
    },
    #[error("the vault changed while this run was writing (another writer without the lock?); nothing was lost, run again")]
    Raced,
}

/// What a run that found the disk full says it left.
pub fn removed_what(wrote: u64) -> String {
    format!("this run had written {wrote} bytes of new objects when it filled up and removed them again (main and every ref are as they were), so it needs at least that much more")
}

impl VaultError {
    /// Whether the error is the vault's file system running out of space.
    pub fn is_disk_full(&self) -> bool {
        match self {
            VaultError::DiskFull { .. } => true,
            VaultError::Io { error, .. } => error.raw_os_error() == Some(libc::ENOSPC),
            VaultError::Git { error, .. } => error.message().contains("No space left on device"),
            _ => false,
        }
    }
}

impl Classify for VaultError {
    fn class(&self) -> ErrorClass {
        match self {
            VaultError::NoVault { .. } => ErrorClass::NoVault,
            VaultError::Locked { .. } => ErrorClass::Locked,
            VaultError::Crypto(c) => c.class(),
            VaultError::Config(c) => c.class(),
            VaultError::Tampered { .. } => ErrorClass::Damaged,
            VaultError::NotOurs { .. } => ErrorClass::Untrusted,
            _ => ErrorClass::Failed,
        }
    }
}

/// Makes libgit2 fsync every object, index and ref file it writes (its
/// trees, commits and small blobs), so a crash after the branch moved never
/// leaves it pointing at lost objects. The large objects sprayvault writes
/// itself (`loose`) are synced together instead, before a ref moves
/// (`Vault::make_durable`).
fn enable_fsync() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Initializes libgit2 before the raw call below.
        git2::opts::strict_hash_verification(true);
        // SAFETY: a documented global libgit2 option taking one int, set once
        // before any repository is opened by this process.
        unsafe {
            libgit2_sys::git_libgit2_opts(
                libgit2_sys::GIT_OPT_ENABLE_FSYNC_GITDIR as libc::c_int,
                1 as libc::c_int,
            );
        }
    });
}

pub struct Vault {
    dir: PathBuf,
    repo: Repository,
    /// Keyed-hash keys decrypted from `mac-key.age` blobs, by blob id: what
    /// readers check content against.
    content_keys: std::sync::Mutex<std::collections::HashMap<Oid, MacKey>>,
    /// Loose objects written without a sync of their own, made durable
    /// together before the next ref moves.
    unsynced: std::sync::Mutex<Vec<Oid>>,
}

impl Vault {
    fn git<T>(&self, what: &str, r: Result<T, git2::Error>) -> Result<T, VaultError> {
        r.map_err(|source| VaultError::Git {
            dir: self.dir.clone(),
            what: what.to_string(),
            error: source,
        })
    }

    /// Creates a vault: a bare repository, the local keyed-hash key, and an
    /// initial commit holding the configuration and the encrypted key.
    pub fn init(dir: &Path, config: VaultConfig) -> Result<Vault, VaultError> {
        let recipients = Recipients::parse(&config.recipients)?;
        if dir.exists() {
            let mut it = std::fs::read_dir(dir).map_err(|source| VaultError::Io {
                path: dir.to_path_buf(),
                error: source,
            })?;
            if it.next().is_some() {
                return Err(VaultError::AlreadyExists {
                    dir: dir.to_path_buf(),
                });
            }
        }
        enable_fsync();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).initial_head("main").mkdir(true);
        let repo = Repository::init_opts(dir, &opts).map_err(|source| VaultError::Git {
            dir: dir.into(),
            what: "creating the repository".into(),
            error: source,
        })?;
        let vault = Vault {
            dir: dir.to_path_buf(),
            repo,
            content_keys: Default::default(),
            unsynced: Default::default(),
        };
        let local = vault.local_dir();
        std::fs::create_dir_all(&local).map_err(|source| VaultError::Io {
            path: local.clone(),
            error: source,
        })?;
        let key = MacKey::generate();
        write::write_private(&vault.mac_key_path(), key.to_text().as_bytes())?;

        let mut spec = TreeSpec::default();
        spec.blob(
            CONFIG_FILE,
            vault.git("writing", vault.repo.blob(config.to_json().as_bytes()))?,
        );
        let enc = recipients.encrypt(key.to_text().as_bytes())?;
        spec.blob(MAC_KEY_AGE, vault.git("writing", vault.repo.blob(&enc))?);
        let mut record = RunRecord::new(
            "init",
            format!("init: vault for {} recipient(s)", config.recipients.len()),
        );
        record.finished = Some(now_rfc3339());
        vault.commit(spec, None, &record)?;
        Ok(vault)
    }

    /// Opens an existing vault.
    pub fn open(dir: &Path) -> Result<Vault, VaultError> {
        let no = |why: String| VaultError::NoVault {
            dir: dir.to_path_buf(),
            why,
        };
        if !dir.exists() {
            return Err(no("the directory does not exist".into()));
        }
        enable_fsync();
        let repo = Repository::open_bare(dir)
            .map_err(|e| no(format!("not a bare git repository ({})", e.message())))?;
        let vault = Vault {
            dir: dir.to_path_buf(),
            repo,
            content_keys: Default::default(),
            unsynced: Default::default(),
        };
        let head = vault
            .repo
            .refname_to_id(BRANCH)
            .map_err(|_| no(format!("it has no {BRANCH} branch")))?;
        let has_config = {
            let commit = vault.git("reading the newest commit", vault.repo.find_commit(head))?;
            let tree = vault.git("reading the newest commit", commit.tree())?;
            let found = tree.get_name(CONFIG_FILE).is_some();
            found
        };
        if !has_config {
            return Err(no(format!("the newest commit has no {CONFIG_FILE}")));
        }
        Ok(vault)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The raw repository, for the vault's own modules only: everything
    /// else reads and writes through `Vault` and `session::Session`.
    fn repo(&self) -> &Repository {
        &self.repo
    }
    pub fn local_dir(&self) -> PathBuf {
        self.dir.join(LOCAL_DIR)
    }
    fn mac_key_path(&self) -> PathBuf {
        self.local_dir().join("mac-key")
    }

    /// Takes the vault's run lock, waiting up to `wait`.
    pub fn lock(&self, wait: Duration) -> Result<lock::VaultLock, VaultError> {
        let local = self.local_dir();
        std::fs::create_dir_all(&local).map_err(|source| VaultError::Io {
            path: local.clone(),
            error: source,
        })?;
        let held = lock::VaultLock::acquire(&local.join("lock"), wait).map_err(|e| match e {
            lock::LockError::Busy(holder) => VaultError::Locked {
                dir: self.dir.clone(),
                holder,
            },
            lock::LockError::Io(source) => VaultError::Io {
                path: local.join("lock"),
                error: source,
            },
        })?;
        // Every writer of the branch (backup, facts, etcd, prune, pull) holds
        // the vault lock, so a `main.lock` found now was left by a killed
        // run (vault-layout Section 12): remove it, or every run would fail.
        let stale = self.repo.path().join(format!("{BRANCH}.lock"));
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(VaultError::Io {
                    path: stale,
                    error: e,
                })
            }
            _ => {}
        }
        Ok(held)
    }

    pub fn mac_key(&self) -> Result<MacKey, VaultError> {
        let path = self.mac_key_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|_| VaultError::MacKey { path: path.clone() })?;
        MacKey::from_text(&text).ok_or(VaultError::MacKey { path })
    }

    pub fn head(&self) -> Result<Oid, VaultError> {
        self.git("reading the branch", self.repo.refname_to_id(BRANCH))
    }

    /// Resolves `--at` (None = latest).
    pub fn resolve(&self, at: Option<&str>) -> Result<Oid, VaultError> {
        rev::resolve(&self.repo, BRANCH, at.unwrap_or("latest")).map_err(VaultError::Rev)
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())
}

pub fn rfc3339(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The UTC time `secs` as `YYYYMMDDTHHMMSSZ`, as names of snapshot refs
/// carry it (vault-layout Section 10b).
pub fn stamp(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
