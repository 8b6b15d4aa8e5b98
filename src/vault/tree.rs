//! Building and reading the nested git trees of a backup commit.

use git2::{FileMode, ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use std::collections::BTreeMap;

/// A tree to write: relative paths (`a/b/c`) to blob or tree ids.
#[derive(Default)]
pub struct TreeSpec {
    pub entries: BTreeMap<String, (Oid, FileMode)>,
}

impl TreeSpec {
    pub fn blob(&mut self, path: &str, oid: Oid) {
        self.entries.insert(path.to_string(), (oid, FileMode::Blob));
    }
    pub fn tree(&mut self, path: &str, oid: Oid) {
        self.entries.insert(path.to_string(), (oid, FileMode::Tree));
    }

    /// Writes every needed tree object and returns the root tree id.
    pub fn write(&self, repo: &Repository) -> Result<Oid, git2::Error> {
        let items: Vec<(&str, Oid, FileMode)> = self
            .entries
            .iter()
            .map(|(p, (o, m))| (p.as_str(), *o, *m))
            .collect();
        write_level(repo, &items)
    }
}

fn write_level(repo: &Repository, items: &[(&str, Oid, FileMode)]) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(None)?;
    let mut children: BTreeMap<&str, Vec<(&str, Oid, FileMode)>> = BTreeMap::new();
    for (path, oid, mode) in items {
        match path.split_once('/') {
            None => {
                builder.insert(path, *oid, i32::from(*mode))?;
            }
            Some((head, rest)) => children.entry(head).or_default().push((rest, *oid, *mode)),
        }
    }
    for (name, sub) in children {
        let oid = write_level(repo, &sub)?;
        builder.insert(name, oid, i32::from(FileMode::Tree))?;
    }
    builder.write()
}

/// Every blob below `tree`, keyed by its path relative to `tree`.
pub fn blobs_below(repo: &Repository, tree: Oid) -> Result<BTreeMap<String, Oid>, git2::Error> {
    let tree = repo.find_tree(tree)?;
    let mut out = BTreeMap::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(ObjectType::Blob) {
            if let Some(name) = entry.name() {
                out.insert(format!("{dir}{name}"), entry.id());
            }
        }
        TreeWalkResult::Ok
    })?;
    Ok(out)
}
