//! The vault: a bare git repository whose file contents are age-encrypted
//! (format specification: `vault-layout/README.md`).
//!
//! Invariants kept here: nothing is written through a working tree (there is
//! none); objects are written before the branch moves; the branch moves by
//! compare-and-swap against the commit a run started from; content already in
//! the vault is never re-encrypted.

pub mod config;
pub mod crypto;
pub mod facts_index;
pub mod lock;
pub mod mac;
pub mod manifest;
pub mod message;
pub mod replicate;
pub mod rev;
pub mod tree;

use crate::exit::Exit;
use config::VaultConfig;
use crypto::{CryptoError, Identity, Recipients};
use git2::{Oid, Repository, Signature};
use mac::MacKey;
use manifest::Manifest;
use message::RunRecord;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tree::TreeSpec;

pub const BRANCH: &str = "refs/heads/main";
const CONFIG_FILE: &str = "sprayvault.json";
const MAC_KEY_AGE: &str = "mac-key.age";
const LOCAL_DIR: &str = "sprayvault";

#[derive(Debug, Error)]
pub enum VaultError {
    #[error("no vault at {dir}: {why}; create one with `sprayvault init --vault {dir} --recipient AGE_PUBLIC_KEY`, or check --vault / SPRAYVAULT_VAULT")]
    NoVault { dir: PathBuf, why: String },
    #[error("{dir} already exists and is not empty; choose a new directory for the vault")]
    AlreadyExists { dir: PathBuf },
    #[error("vault {dir} is locked by another sprayvault run{}; wait for it to finish or raise --lock-wait", holder.as_ref().map(|h| format!(" (pid {h})")).unwrap_or_default())]
    Locked {
        dir: PathBuf,
        holder: Option<String>,
    },
    #[error("git error while {what} in {dir}: {source}")]
    Git {
        dir: PathBuf,
        what: String,
        source: git2::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("manifest of node {node} at {rev} is damaged: {source}; run `sprayvault verify` and restore from another backup (--at) or from the off-site copy")]
    Manifest {
        node: String,
        rev: String,
        source: manifest::ManifestError,
    },
    #[error("{0}")]
    Rev(String),
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
    #[error("the vault changed while this run was writing (another writer without the lock?); nothing was lost, run again")]
    Raced,
}

impl VaultError {
    pub fn exit(&self) -> Exit {
        match self {
            VaultError::NoVault { .. } => Exit::NoVault,
            VaultError::Locked { .. } => Exit::Locked,
            VaultError::Crypto(CryptoError::Decrypt { .. }) => Exit::CannotDecrypt,
            _ => Exit::Failure,
        }
    }
}

/// One node's recorded state in a backup.
#[derive(Clone, Debug)]
pub struct NodeState {
    pub manifest: Manifest,
    /// The id of the `nodes/<node>` tree.
    pub tree: Oid,
    /// Encrypted blob of each file entry, keyed by absolute path.
    pub blobs: BTreeMap<String, Oid>,
}

/// A backup commit, read back.
#[derive(Clone, Debug)]
pub struct Backup {
    pub commit: Oid,
    pub time: i64,
    pub record: RunRecord,
    pub config: VaultConfig,
    pub nodes: BTreeMap<String, NodeState>,
    /// The Ansible facts the backup holds, and the blob of each host's.
    pub facts: facts_index::FactsIndex,
    pub fact_blobs: BTreeMap<String, Oid>,
}

impl Backup {
    pub fn short_id(&self) -> String {
        self.commit.to_string()[..10].to_string()
    }

    pub fn node(&self, node: &str) -> Result<&NodeState, VaultError> {
        self.nodes.get(node).ok_or_else(|| VaultError::UnknownNode {
            node: node.to_string(),
            rev: self.short_id(),
            known: if self.nodes.is_empty() {
                "none".into()
            } else {
                self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }
}

/// What goes into a new commit for one node.
pub enum NodeWrite {
    /// Keep the node's subtree from the parent unchanged.
    Carry(Oid),
    /// A freshly read state; `blobs` must cover every file entry.
    New {
        manifest: Manifest,
        blobs: BTreeMap<String, Oid>,
    },
}

/// Makes libgit2 fsync every object, index and ref file it writes, so a
/// crash after the branch moved never leaves it pointing at lost objects.
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
}

impl Vault {
    fn git<T>(&self, what: &str, r: Result<T, git2::Error>) -> Result<T, VaultError> {
        r.map_err(|source| VaultError::Git {
            dir: self.dir.clone(),
            what: what.to_string(),
            source,
        })
    }

    /// Creates a vault: a bare repository, the local keyed-hash key, and an
    /// initial commit holding the configuration and the encrypted key.
    pub fn init(dir: &Path, config: VaultConfig) -> Result<Vault, VaultError> {
        let recipients = Recipients::parse(&config.recipients)?;
        if dir.exists() {
            let mut it = std::fs::read_dir(dir).map_err(|source| VaultError::Io {
                path: dir.to_path_buf(),
                source,
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
            source,
        })?;
        let vault = Vault {
            dir: dir.to_path_buf(),
            repo,
        };
        let local = vault.local_dir();
        std::fs::create_dir_all(&local).map_err(|source| VaultError::Io {
            path: local.clone(),
            source,
        })?;
        let key = MacKey::generate();
        write_private(&vault.mac_key_path(), key.to_text().as_bytes())?;

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
    pub fn repo(&self) -> &Repository {
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
            source,
        })?;
        lock::VaultLock::acquire(&local.join("lock"), wait).map_err(|e| match e {
            lock::LockError::Busy(holder) => VaultError::Locked {
                dir: self.dir.clone(),
                holder,
            },
            lock::LockError::Io(source) => VaultError::Io {
                path: local.join("lock"),
                source,
            },
        })
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

    /// Reads a backup commit: configuration, run record, and every node's manifest.
    pub fn backup(&self, commit: Oid) -> Result<Backup, VaultError> {
        let rev = commit.to_string()[..10].to_string();
        let damaged = |what: String| VaultError::Damaged {
            rev: rev.clone(),
            what,
        };
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let tree = self.git("reading a tree", c.tree())?;
        let cfg_entry = tree
            .get_name(CONFIG_FILE)
            .ok_or_else(|| damaged(format!("no {CONFIG_FILE}")))?;
        let cfg_blob = self.git(
            "reading the configuration",
            self.repo.find_blob(cfg_entry.id()),
        )?;
        let config = VaultConfig::parse(cfg_blob.content())?;
        let record = RunRecord::parse(c.message().unwrap_or(""));
        let mut nodes = BTreeMap::new();
        if let Some(nodes_entry) = tree.get_name("nodes") {
            let nodes_tree = self.git("reading nodes", self.repo.find_tree(nodes_entry.id()))?;
            for n in nodes_tree.iter() {
                let name = n
                    .name()
                    .ok_or_else(|| damaged("a node name is not UTF-8".into()))?
                    .to_string();
                crate::paths::check_node_name(&name).map_err(|e| damaged(e.to_string()))?;
                let node_tree = self.git("reading a node", self.repo.find_tree(n.id()))?;
                let m_entry = node_tree
                    .get_name("manifest")
                    .ok_or_else(|| damaged(format!("node {name} has no manifest")))?;
                let m_blob = self.git("reading a manifest", self.repo.find_blob(m_entry.id()))?;
                let manifest =
                    Manifest::parse(m_blob.content()).map_err(|source| VaultError::Manifest {
                        node: name.clone(),
                        rev: rev.clone(),
                        source,
                    })?;
                let mut blobs = BTreeMap::new();
                if let Some(files) = node_tree.get_name("files") {
                    for (rel, oid) in
                        self.git("reading files", tree::blobs_below(&self.repo, files.id()))?
                    {
                        blobs.insert(format!("/{rel}"), oid);
                    }
                }
                for e in manifest.files() {
                    if !blobs.contains_key(&e.path) {
                        return Err(damaged(format!(
                            "node {name}: file {} has no content blob",
                            e.path
                        )));
                    }
                }
                nodes.insert(
                    name,
                    NodeState {
                        manifest,
                        tree: n.id(),
                        blobs,
                    },
                );
            }
        }
        let mut facts = facts_index::FactsIndex::default();
        let mut fact_blobs = BTreeMap::new();
        if let Some(f) = tree.get_name("facts") {
            let ftree = self.git("reading facts", self.repo.find_tree(f.id()))?;
            let idx = ftree
                .get_name("index")
                .ok_or_else(|| damaged("facts/ has no index".into()))?;
            let blob = self.git("reading the facts index", self.repo.find_blob(idx.id()))?;
            facts = facts_index::FactsIndex::parse(blob.content()).map_err(&damaged)?;
            if let Some(files) = ftree.get_name("files") {
                for (host, oid) in
                    self.git("reading facts", tree::blobs_below(&self.repo, files.id()))?
                {
                    fact_blobs.insert(host, oid);
                }
            }
            if let Some(h) = facts.entries.keys().find(|h| !fact_blobs.contains_key(*h)) {
                return Err(damaged(format!("facts of {h} have no content blob")));
            }
        }
        Ok(Backup {
            commit,
            time: c.time().seconds(),
            record,
            config,
            nodes,
            facts,
            fact_blobs,
        })
    }

    /// The `nodes/<node>` tree id and manifest blob id of every node of a
    /// commit, without reading any manifest: what `log` needs to skip nodes
    /// that did not change.
    pub fn node_trees(&self, commit: Oid) -> Result<BTreeMap<String, (Oid, Oid)>, VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        let tree = self.git("reading a tree", c.tree())?;
        let mut out = BTreeMap::new();
        if let Some(nodes_entry) = tree.get_name("nodes") {
            let nodes_tree = self.git("reading nodes", self.repo.find_tree(nodes_entry.id()))?;
            for n in nodes_tree.iter() {
                let Some(name) = n.name() else { continue };
                let node_tree = self.git("reading a node", self.repo.find_tree(n.id()))?;
                let manifest = node_tree.get_name("manifest").map(|m| m.id());
                if let Some(m) = manifest {
                    out.insert(name.to_string(), (n.id(), m));
                }
            }
        }
        Ok(out)
    }

    /// Parses the manifest blob `oid` (of `node`, for error messages).
    pub fn manifest(&self, oid: Oid, node: &str) -> Result<Manifest, VaultError> {
        let blob = self.git("reading a manifest", self.repo.find_blob(oid))?;
        Manifest::parse(blob.content()).map_err(|source| VaultError::Manifest {
            node: node.to_string(),
            rev: oid.to_string()[..10].to_string(),
            source,
        })
    }

    /// The first-parent history of the branch, newest first.
    pub fn history(&self) -> Result<Vec<Oid>, VaultError> {
        let mut walk = self.git("walking history", self.repo.revwalk())?;
        self.git("walking history", walk.push_ref(BRANCH))?;
        self.git("walking history", walk.simplify_first_parent())?;
        walk.map(|o| self.git("walking history", o)).collect()
    }

    /// The first parent of a commit, if any.
    pub fn parent_of(&self, commit: Oid) -> Result<Option<Oid>, VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        Ok(c.parent_ids().next())
    }

    /// The commit's time and message.
    pub fn commit_info(&self, commit: Oid) -> Result<(i64, RunRecord), VaultError> {
        let c = self.git("reading a commit", self.repo.find_commit(commit))?;
        Ok((
            c.time().seconds(),
            RunRecord::parse(c.message().unwrap_or("")),
        ))
    }

    /// Reads one file's ciphertext from the vault.
    pub fn read_blob(&self, oid: Oid) -> Result<Vec<u8>, VaultError> {
        let b = self.git("reading an object", self.repo.find_blob(oid))?;
        Ok(b.content().to_vec())
    }

    /// Decrypts the file at `path` of `node` in `backup`.
    pub fn decrypt_file(
        &self,
        backup: &Backup,
        node: &str,
        path: &str,
        identity: &Identity,
    ) -> Result<Vec<u8>, VaultError> {
        let state = backup.node(node)?;
        let oid = state.blobs.get(path).ok_or_else(|| VaultError::Damaged {
            rev: backup.short_id(),
            what: format!("node {node}: no content for {path}"),
        })?;
        let cipher = self.read_blob(*oid).map_err(|e| VaultError::Damaged {
            rev: backup.short_id(),
            what: format!(
                "node {node}: the object holding {path} is unreadable ({})",
                match &e {
                    VaultError::Git { source, .. } => source.message().to_string(),
                    other => other.to_string(),
                }
            ),
        })?;
        Ok(identity.decrypt(
            &cipher,
            &format!("{path} of node {node} in backup {}", backup.short_id()),
        )?)
    }

    pub fn write_blob(&self, data: &[u8]) -> Result<Oid, VaultError> {
        self.git("writing an object", self.repo.blob(data))
    }

    /// Writes a backup commit on top of `parent` and moves the branch to it.
    pub fn commit_backup(
        &self,
        parent: Oid,
        config: &VaultConfig,
        nodes: BTreeMap<String, NodeWrite>,
        facts: &BTreeMap<String, (facts_index::FactEntry, Oid)>,
        record: &RunRecord,
    ) -> Result<Oid, VaultError> {
        let parent_commit = self.git("reading the parent", self.repo.find_commit(parent))?;
        let parent_tree = self.git("reading the parent", parent_commit.tree())?;
        let mut spec = TreeSpec::default();
        spec.blob(CONFIG_FILE, self.write_blob(config.to_json().as_bytes())?);
        let key = parent_tree
            .get_name(MAC_KEY_AGE)
            .ok_or_else(|| VaultError::Damaged {
                rev: parent.to_string(),
                what: format!("no {MAC_KEY_AGE}"),
            })?;
        spec.blob(MAC_KEY_AGE, key.id());
        if !facts.is_empty() {
            let index = facts_index::FactsIndex {
                entries: facts
                    .iter()
                    .map(|(h, (e, _))| (h.clone(), e.clone()))
                    .collect(),
            };
            spec.blob("facts/index", self.write_blob(index.to_text().as_bytes())?);
            for (host, (_, oid)) in facts {
                spec.blob(&format!("facts/files/{host}"), *oid);
            }
        }
        for (node, w) in nodes {
            match w {
                NodeWrite::Carry(oid) => spec.tree(&format!("nodes/{node}"), oid),
                NodeWrite::New { manifest, blobs } => {
                    spec.blob(
                        &format!("nodes/{node}/manifest"),
                        self.write_blob(manifest.to_text().as_bytes())?,
                    );
                    for (path, oid) in blobs {
                        spec.blob(&format!("nodes/{node}/files{path}"), oid);
                    }
                }
            }
        }
        self.commit(spec, Some(parent), record)
    }

    fn commit(
        &self,
        spec: TreeSpec,
        parent: Option<Oid>,
        record: &RunRecord,
    ) -> Result<Oid, VaultError> {
        let tree_id = self.git("writing trees", spec.write(&self.repo))?;
        let tree = self.git("writing trees", self.repo.find_tree(tree_id))?;
        let host = hostname();
        let sig = self.git(
            "signing",
            Signature::now("sprayvault", &format!("sprayvault@{host}")),
        )?;
        let parents: Vec<git2::Commit> = match parent {
            Some(p) => vec![self.git("reading the parent", self.repo.find_commit(p))?],
            None => vec![],
        };
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        let oid = self.git(
            "writing the commit",
            self.repo
                .commit(None, &sig, &sig, &record.to_message(), &tree, &refs),
        )?;
        let log = record.summary.clone();
        let moved = match parent {
            Some(p) => self.repo.reference_matching(BRANCH, oid, true, p, &log),
            None => self.repo.reference(BRANCH, oid, false, &log),
        };
        moved.map_err(|e| {
            if e.code() == git2::ErrorCode::Modified || e.code() == git2::ErrorCode::Exists {
                VaultError::Raced
            } else {
                VaultError::Git {
                    dir: self.dir.clone(),
                    what: "moving the branch".into(),
                    source: e,
                }
            }
        })?;
        Ok(oid)
    }
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), VaultError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
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
