//! An in-memory node for unit tests: a file system of directories, files
//! and symlinks with modes, owners and times, a hostname, accounts, and a log
//! of the privileged commands run. It follows the rules the SSH remote
//! follows (a parent must exist and be a directory, nothing is followed
//! through a link, `set_meta` refuses links) so that tests of plans and of
//! the executor mean what they would on a machine.

use super::accounts::Accounts;
use super::node::{NewFile, NodeFs};
use super::remote::{chain_of, components, Attrs, Chain, Meta};
use super::SourceError;
use crate::paths::parent;
use crate::vault::manifest::Kind;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeEntry {
    pub meta: Meta,
    pub content: Vec<u8>,
    pub link: Option<String>,
}

pub struct FakeNode {
    pub name: String,
    pub hostname: String,
    pub accounts: Accounts,
    pub fs: Arc<Mutex<BTreeMap<String, FakeEntry>>>,
    /// Privileged command lines run, in order.
    pub commands: Mutex<Vec<String>>,
    /// How privileged commands answer; without it they print nothing.
    answer: Mutex<Option<Answerer>>,
    /// When set, files read back differ from what was written (a failing
    /// disk), for the executor's read-back check.
    pub corrupt_reads: std::sync::atomic::AtomicBool,
}

/// What a privileged command does on the fake, as a test scripts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Succeeds, printing this.
    Out(String),
    /// Fails with this on stderr.
    Fail(String),
    /// Never ends: a frozen node or a connection that went silent.
    Hang,
}

type Answerer = Box<dyn Fn(&str) -> Reply + Send + Sync>;

fn meta(kind: Kind, mode: u32, uid: u32, gid: u32, size: u64, mtime: i64) -> Meta {
    Meta {
        kind: Some(kind),
        mode,
        uid,
        gid,
        size,
        mtime,
    }
}

impl FakeNode {
    /// A node with `/` (root 0755) only, calling itself `hostname`, with
    /// root and kubespray's accounts.
    pub fn new(name: &str, hostname: &str) -> FakeNode {
        let mut fs = BTreeMap::new();
        fs.insert(
            "/".to_string(),
            FakeEntry {
                meta: meta(Kind::Dir, 0o755, 0, 0, 0, 0),
                content: vec![],
                link: None,
            },
        );
        FakeNode {
            name: name.into(),
            hostname: hostname.into(),
            accounts: Accounts::from_files(
                "root:x:0:0::/root:/bin/sh\nkube:x:998:998::/:/sbin/nologin\netcd:x:997:997::/:/sbin/nologin\n",
                "root:x:0:\nkube-cert:x:996:\netcd:x:997:\n",
            ),
            fs: Arc::new(Mutex::new(fs)),
            commands: Mutex::new(vec![]),
            answer: Mutex::new(None),
            corrupt_reads: Default::default(),
        }
    }

    /// Adds a directory and its missing parents (root 0755).
    pub fn dir(&self, path: &str, mode: u32, uid: u32, gid: u32) {
        let p = parent(path);
        if path != "/" && !self.fs.lock().unwrap().contains_key(p) {
            self.dir(p, 0o755, 0, 0);
        }
        self.fs.lock().unwrap().insert(
            path.into(),
            FakeEntry {
                meta: meta(Kind::Dir, mode, uid, gid, 0, 0),
                content: vec![],
                link: None,
            },
        );
    }

    pub fn file(&self, path: &str, content: &[u8], mode: u32, uid: u32, gid: u32, mtime: i64) {
        self.dir_of(path);
        self.fs.lock().unwrap().insert(
            path.into(),
            FakeEntry {
                meta: meta(Kind::File, mode, uid, gid, content.len() as u64, mtime),
                content: content.to_vec(),
                link: None,
            },
        );
    }

    pub fn link(&self, path: &str, target: &str) {
        self.dir_of(path);
        self.fs.lock().unwrap().insert(
            path.into(),
            FakeEntry {
                meta: meta(Kind::Symlink, 0o777, 0, 0, target.len() as u64, 0),
                content: vec![],
                link: Some(target.into()),
            },
        );
    }

    fn dir_of(&self, path: &str) {
        let p = parent(path);
        if !self.fs.lock().unwrap().contains_key(p) {
            self.dir(p, 0o755, 0, 0);
        }
    }

    /// From now on, privileged commands answer as `f` says.
    pub fn answer(&self, f: impl Fn(&str) -> Reply + Send + Sync + 'static) {
        *self.answer.lock().unwrap() = Some(Box::new(f));
    }

    pub fn get(&self, path: &str) -> Option<FakeEntry> {
        self.fs.lock().unwrap().get(path).cloned()
    }

    fn err(&self, path: &str, why: &str) -> SourceError {
        SourceError::Io {
            node: self.name.clone(),
            path: path.into(),
            why: why.into(),
        }
    }

    /// Creates an empty `path` that must not exist yet, in an existing directory.
    fn create(&self, path: &str, meta: Meta) -> Result<(), SourceError> {
        let mut fs = self.fs.lock().unwrap();
        self.check_parent(&fs, path)?;
        if fs.contains_key(path) {
            return Err(self.err(path, "File exists"));
        }
        fs.insert(
            path.into(),
            FakeEntry {
                meta,
                content: vec![],
                link: None,
            },
        );
        Ok(())
    }

    /// How far down `dir` only root can change things, as the SSH remote
    /// decides it.
    fn chain(&self, fs: &BTreeMap<String, FakeEntry>, dir: &str) -> Chain {
        let metas: Vec<Option<Meta>> = components(dir)
            .iter()
            .map(|c| fs.get(c).map(|e| e.meta.clone()))
            .collect();
        chain_of(dir, fs.get("/").map(|e| &e.meta), &metas)
    }

    /// The parent of `path` must exist and be a directory (not a link to one).
    fn check_parent(
        &self,
        fs: &BTreeMap<String, FakeEntry>,
        path: &str,
    ) -> Result<(), SourceError> {
        match fs.get(parent(path)).and_then(|e| e.meta.kind) {
            Some(Kind::Dir) => Ok(()),
            Some(_) => Err(self.err(path, "Not a directory")),
            None => Err(self.err(path, "No such file")),
        }
    }
}

impl NodeFs for FakeNode {
    fn node(&self) -> &str {
        &self.name
    }
    fn display(&self) -> String {
        format!("fake:{}", self.name)
    }
    fn accounts(&self) -> &Accounts {
        &self.accounts
    }
    async fn hostname(&self) -> Result<String, SourceError> {
        Ok(self.hostname.clone())
    }
    async fn lstat(&self, path: &str) -> Result<Option<Meta>, SourceError> {
        Ok(self.fs.lock().unwrap().get(path).map(|e| e.meta.clone()))
    }
    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, SourceError> {
        let fs = self.fs.lock().unwrap();
        if fs.get(path).and_then(|e| e.meta.kind) != Some(Kind::Dir) {
            return Err(self.err(path, "Not a directory"));
        }
        Ok(fs
            .iter()
            .filter(|(p, _)| p.as_str() != path && parent(p) == path)
            .map(|(p, e)| {
                (
                    p[p.rfind('/').map_or(0, |i| i + 1)..].to_string(),
                    e.meta.clone(),
                )
            })
            .collect())
    }
    async fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        match self.get(path) {
            Some(e) if e.meta.kind == Some(Kind::File) && e.content.len() as u64 > limit => {
                Err(self.err(path, "larger than expected"))
            }
            Some(e) if e.meta.kind == Some(Kind::File) => {
                let mut c = e.content;
                if self
                    .corrupt_reads
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    c.push(b'!');
                }
                Ok(c)
            }
            Some(_) => Err(self.err(path, "not a regular file")),
            None => Err(self.err(path, "No such file")),
        }
    }
    async fn read_link(&self, path: &str) -> Result<String, SourceError> {
        self.get(path)
            .and_then(|e| e.link)
            .ok_or_else(|| self.err(path, "not a symbolic link"))
    }
    async fn write_private(
        &self,
        path: &str,
        data: &[u8],
        attrs: Attrs,
    ) -> Result<(), SourceError> {
        let mut fs = self.fs.lock().unwrap();
        self.check_parent(&fs, path)?;
        // As the remote: the file's own directory may be open (the file is
        // staged elsewhere), nothing above it.
        if let Chain::OpenAt { first, .. } = self.chain(&fs, parent(path)) {
            if first != parent(path) {
                return Err(self.err(path, &format!("{first} can be changed by an account other than root, above the file's directory; refusing to write through it")));
            }
        }
        if fs.get(path).and_then(|e| e.meta.kind) == Some(Kind::Dir) {
            return Err(self.err(path, "Is a directory"));
        }
        fs.insert(
            path.into(),
            FakeEntry {
                meta: meta(
                    Kind::File,
                    attrs.mode,
                    attrs.uid,
                    attrs.gid,
                    data.len() as u64,
                    attrs.mtime.unwrap_or(0),
                ),
                content: data.to_vec(),
                link: None,
            },
        );
        Ok(())
    }
    async fn mkdir(&self, path: &str) -> Result<(), SourceError> {
        self.create(path, meta(Kind::Dir, 0o700, 0, 0, 0, 0))
    }
    async fn set_meta(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    ) -> Result<(), SourceError> {
        let mut fs = self.fs.lock().unwrap();
        if let Chain::OpenAt { first, .. } = self.chain(&fs, parent(path)) {
            return Err(self.err(path, &format!("{first} can be changed by an account other than root; refusing to set owner and mode through it")));
        }
        let e = fs
            .get_mut(path)
            .ok_or_else(|| self.err(path, "No such file"))?;
        if e.meta.kind == Some(Kind::Symlink) {
            return Err(self.err(path, "is a symlink; not following it"));
        }
        e.meta.mode = mode;
        e.meta.uid = uid;
        e.meta.gid = gid;
        if let Some(t) = mtime {
            e.meta.mtime = t;
        }
        Ok(())
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), SourceError> {
        let mut fs = self.fs.lock().unwrap();
        self.check_parent(&fs, to)?;
        let e = fs
            .remove(from)
            .ok_or_else(|| self.err(from, "No such file"))?;
        fs.insert(to.into(), e);
        Ok(())
    }
    async fn symlink(&self, target: &str, path: &str) -> Result<(), SourceError> {
        self.create(
            path,
            meta(Kind::Symlink, 0o777, 0, 0, target.len() as u64, 0),
        )?;
        if let Some(e) = self.fs.lock().unwrap().get_mut(path) {
            e.link = Some(target.into());
        }
        Ok(())
    }
    async fn remove_file(&self, path: &str) -> Result<(), SourceError> {
        let mut fs = self.fs.lock().unwrap();
        match fs.get(path).and_then(|e| e.meta.kind) {
            Some(Kind::Dir) => Err(self.err(path, "Is a directory")),
            Some(_) => {
                fs.remove(path);
                Ok(())
            }
            None => Err(self.err(path, "No such file")),
        }
    }
    async fn run_privileged(&self, cmd: &str, what: &str) -> Result<String, SourceError> {
        self.commands.lock().unwrap().push(cmd.to_string());
        let reply = match &*self.answer.lock().unwrap() {
            Some(f) => f(cmd),
            None => Reply::Out(String::new()),
        };
        match reply {
            Reply::Out(out) => Ok(out),
            Reply::Fail(why) => Err(SourceError::Command {
                node: self.name.clone(),
                what: what.into(),
                why,
            }),
            Reply::Hang => std::future::pending().await,
        }
    }
    type Upload = FakeUpload;
    async fn make_private_dir(&self, path: &str) -> Result<(), SourceError> {
        self.mkdir(path).await?;
        let m = self.get(path).map(|e| e.meta);
        match m {
            Some(m) if m.kind == Some(Kind::Dir) && m.uid == 0 && m.mode & 0o077 == 0 => Ok(()),
            _ => Err(self.err(path, "not root's and private after creating it")),
        }
    }
    async fn create_new(&self, path: &str) -> Result<FakeUpload, SourceError> {
        self.create(path, meta(Kind::File, 0o600, 0, 0, 0, 0))?;
        Ok(FakeUpload {
            fs: self.fs.clone(),
            path: path.into(),
        })
    }
}

/// A file on the fake being written in pieces: each piece lands at once.
pub struct FakeUpload {
    fs: Arc<Mutex<BTreeMap<String, FakeEntry>>>,
    path: String,
}

impl NewFile for FakeUpload {
    async fn write(&mut self, data: &[u8]) -> Result<(), SourceError> {
        let mut fs = self.fs.lock().unwrap();
        let e = fs.get_mut(&self.path).ok_or_else(|| SourceError::Io {
            node: String::new(),
            path: self.path.clone(),
            why: "removed while being written".into(),
        })?;
        e.content.extend_from_slice(data);
        e.meta.size = e.content.len() as u64;
        Ok(())
    }
    async fn finish(self) -> Result<(), SourceError> {
        Ok(())
    }
}
