//! A host's variables, merged in Ansible's order, lowest first:
//!
//! 1. `all`'s variables from the inventory files,
//! 2. the host's other groups' variables from the inventory files,
//! 3. `group_vars/all`,
//! 4. `group_vars/` of the host's other groups,
//! 5. the host's own variables from the inventory files (inline),
//! 6. `host_vars/` of the host.
//!
//! Groups are taken by depth below `all` (parents before children), then by
//! `ansible_group_priority`, then by name, so a child group wins over its
//! parent, and of two groups at the same depth the later name wins. Note
//! that step 3 comes after step 2: `group_vars/all.yml` overrides an
//! inventory file's `[kube_node:vars]`.
//!
//! `group_vars/` and `host_vars/` are read as Ansible's host_group_vars
//! plugin reads them, beside the inventory file (or in the inventory
//! directory): the first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`
//! that exists, and if that is a directory, every file in it and below
//! (sorted, without hidden files, backups `~`, or other extensions).

use super::data::{Data, Origin, Vars};
use super::node::{self, Node};
use super::parse_error::ParseError;
use super::InventoryError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// `group_vars/` and `host_vars/` under `base`, read once per name.
pub struct VarFiles {
    base: Option<PathBuf>,
    cache: BTreeMap<(&'static str, String), Vars>,
}

impl VarFiles {
    /// `base` is the inventory's directory, or `None` for no var files.
    pub fn new(base: Option<PathBuf>) -> VarFiles {
        VarFiles {
            base,
            cache: BTreeMap::new(),
        }
    }

    fn get(&mut self, kind: &'static str, name: &str) -> Result<&Vars, InventoryError> {
        let key = (kind, name.to_string());
        if !self.cache.contains_key(&key) {
            let mut vars = Vars::new();
            // Ansible skips names that look like absolute paths.
            if let Some(base) = self.base.as_ref().filter(|_| !name.starts_with('/')) {
                let dir = base.join(kind);
                if dir.is_dir() {
                    for f in find(&dir, name)? {
                        vars.extend(load_file(&f)?);
                    }
                }
            }
            self.cache.insert(key.clone(), vars);
        }
        Ok(&self.cache[&key])
    }
}

/// All of `host`'s variables, merged in Ansible's order (see above).
pub fn merged(
    data: &Data,
    host: &str,
    depth: &BTreeMap<String, usize>,
    files: &mut VarFiles,
) -> Result<Vars, InventoryError> {
    let mut groups: Vec<(usize, i64, String)> = data
        .host_groups(host)
        .into_iter()
        .filter(|g| g != "all")
        .map(|g| {
            (
                depth.get(&g).copied().unwrap_or(0),
                data.groups.get(&g).map_or(1, |x| x.priority),
                g,
            )
        })
        .collect();
    groups.sort();
    let mut vars = Vars::new();
    let group_vars = |g: &str| {
        data.groups
            .get(g)
            .map(|x| x.vars.clone())
            .unwrap_or_default()
    };
    vars.extend(group_vars("all"));
    for (_, _, g) in &groups {
        vars.extend(group_vars(g));
    }
    vars.extend(files.get("group_vars", "all")?.clone());
    for (_, _, g) in &groups {
        vars.extend(files.get("group_vars", g)?.clone());
    }
    if let Some(h) = data.hosts.get(host) {
        vars.extend(h.vars.clone());
    }
    vars.extend(files.get("host_vars", host)?.clone());
    Ok(vars)
}

fn read_err(path: &Path, e: std::io::Error) -> InventoryError {
    InventoryError::Read {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

/// Ansible's `find_vars_files`: the first of NAME, NAME.yml, NAME.yaml,
/// NAME.json that exists; a directory stands for the files in it.
fn find(dir: &Path, name: &str) -> Result<Vec<PathBuf>, InventoryError> {
    for ext in [""].into_iter().chain(EXTENSIONS) {
        let p = dir.join(format!("{name}{ext}"));
        if p.is_dir() {
            let mut out = Vec::new();
            dir_files(&p, &mut out)?;
            return Ok(out);
        }
        if p.exists() {
            return Ok(vec![p]);
        }
    }
    Ok(Vec::new())
}

/// Ansible's `_get_dir_vars_files`: sorted, recursive into directories
/// without an extension, skipping hidden files and `~` backups.
fn dir_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InventoryError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names {
        if n.starts_with('.') || n.ends_with('~') {
            continue;
        }
        let ext = extension(&n);
        let p = dir.join(&n);
        if p.is_dir() && ext.is_empty() {
            dir_files(&p, out)?;
        } else if p.is_file() && (ext.is_empty() || EXTENSIONS.contains(&ext)) {
            out.push(p);
        }
    }
    Ok(())
}

/// Python's `os.path.splitext(name)[1]`: from the last dot, unless all
/// before it are dots.
fn extension(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if !name[..i].chars().all(|c| c == '.') => &name[i..],
        _ => "",
    }
}

/// The variables of one file; an empty file has none.
fn load_file(path: &Path) -> Result<Vars, InventoryError> {
    let bad = |why: ParseError| InventoryError::Syntax {
        file: path.to_path_buf(),
        line: None,
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| read_err(path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| bad(ParseError::NotUtf8))?;
    if text.trim_start().starts_with("$ANSIBLE_VAULT") {
        return Err(bad(ParseError::VaultFile));
    }
    let origin = Origin {
        file: path.to_path_buf(),
        line: None,
    };
    let mut vars = Vars::new();
    match node::parse(&text).map_err(|e| bad(ParseError::Yaml(e)))? {
        Node::Map(pairs) => {
            for (k, v) in pairs {
                let k = k.key_text().map_err(|e| bad(ParseError::Key(e)))?;
                let v = v.to_value().map_err(|e| bad(ParseError::Key(e)))?;
                vars.insert(k, (v, origin.clone()));
            }
        }
        // Ansible ignores files whose content is empty or false.
        Node::Null | Node::Bool(false) => {}
        Node::Str(s) if s.is_empty() => {}
        Node::Seq(s) if s.is_empty() => {}
        other => return Err(bad(ParseError::VarsFileNotMapping { kind: other.kind() })),
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_like_python() {
        assert_eq!(extension("all.yml"), ".yml");
        assert_eq!(extension("a.b.json"), ".json");
        assert_eq!(extension("main"), "");
        assert_eq!(extension(".hidden"), "");
        assert_eq!(extension("x."), ".");
    }

    #[test]
    fn files_are_found_in_ansible_order() {
        let dir = std::env::temp_dir().join(format!("sprayvault-vars-test-{}", std::process::id()));
        let gv = dir.join("group_vars");
        std::fs::create_dir_all(gv.join("all/sub")).unwrap();
        for (f, text) in [
            ("all.yml", "a: file\n"),
            ("all/b.yml", "a: b\n"),
            ("all/a", "a: a\n"),
            ("all/sub/z.json", "{\"a\": \"sub\"}"),
            ("all/c.txt", "a: txt\n"),
            ("all/.hidden.yml", "a: hidden\n"),
            ("k8s.yaml", "x: 1\n"),
        ] {
            std::fs::write(gv.join(f), text).unwrap();
        }
        let mut files = VarFiles::new(Some(dir.clone()));
        // The directory all/ wins over all.yml; in it a, b.yml, sub/z.json.
        assert_eq!(files.get("group_vars", "all").unwrap()["a"].0, "sub");
        assert_eq!(files.get("group_vars", "k8s").unwrap()["x"].0, 1);
        assert!(files.get("host_vars", "none").unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
