//! Reading a kubespray inventory the way Ansible does (INI or YAML, files or
//! directories, with `group_vars/` and `host_vars/` beside it), down to what
//! sprayvault needs of each host: where to connect, as whom, and its groups.
//!
//! The ground truth is `ansible-inventory --list`; tests/inventory.rs checks
//! this module against it on a corpus of inventories. Host names, users and
//! addresses that could be mistaken for ssh options or shell syntax are
//! rejected here, before anything connects anywhere.

mod boolean;
mod ini;
mod pattern;
mod range;
mod raw;
mod vars;
mod yaml;

pub use boolean::ansible_bool;

use raw::Raw;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {why}; give the kubespray inventory file or directory with -i")]
    Read { path: PathBuf, why: String },
    #[error("inventory {}{}: {why}", file.display(), if *line > 0 { format!(" line {line}") } else { String::new() })]
    Syntax {
        file: PathBuf,
        line: usize,
        why: String,
    },
    #[error("inventory host {host}: {why}")]
    Host { host: String, why: String },
    #[error("host pattern {pattern:?} matches no host of the inventory; check --limit against `sprayvault inventory -i ...`")]
    NoMatch { pattern: String },
    #[error("host pattern {pattern:?} is not supported: {why}")]
    Pattern { pattern: String, why: String },
}

#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub become_: bool,
    pub key_file: Option<PathBuf>,
    /// Every group the host is in, directly or through children, without
    /// `all` and `ungrouped`, sorted.
    pub groups: Vec<String>,
    /// The host's merged variables.
    pub vars: BTreeMap<String, Value>,
}

impl Host {
    fn in_any(&self, names: &[&str]) -> bool {
        self.groups.iter().any(|g| names.contains(&g.as_str()))
    }
    pub fn is_etcd(&self) -> bool {
        self.in_any(&["etcd"])
    }
    pub fn is_control_plane(&self) -> bool {
        self.in_any(&["kube_control_plane", "kube-master"])
    }
    pub fn is_worker(&self) -> bool {
        self.in_any(&["kube_node", "kube-node"])
    }
    pub fn in_cluster(&self) -> bool {
        self.in_any(&["k8s_cluster", "k8s-cluster"]) || self.is_control_plane() || self.is_worker()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub hosts: BTreeMap<String, Host>,
    /// Every group with all its hosts (through children too), `all` included.
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

const UNSAFE: &[char] = &[
    ';', '|', '&', '$', '`', '\'', '"', '<', '>', '(', ')', '{', '}', '*', '?', '!', '\\', '#',
    '~', '%', '=', ',', ' ', '\t', '/', '@',
];

/// Host names become ssh destinations and vault directory names.
pub(crate) fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('-')
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c.is_control() || UNSAFE.contains(&c) || c == '[' || c == ']' || c == ':')
    {
        return Err(format!("host name {name:?} is not allowed: use letters, digits, '.', '_' and '-', not starting with '-' or '.'"));
    }
    Ok(())
}

pub(crate) fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('-')
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '[' || c == ']' || c == ':')
    {
        return Err(format!("group name {name:?} is not allowed"));
    }
    Ok(())
}

fn check_word(
    host: &str,
    what: &str,
    value: &str,
    allow_colon: bool,
) -> Result<(), InventoryError> {
    let bad = value.is_empty()
        || value.starts_with('-')
        || value.chars().any(|c| {
            c.is_control()
                || UNSAFE.contains(&c)
                || c == '['
                || c == ']'
                || (c == ':' && !allow_colon)
        });
    if bad {
        return Err(InventoryError::Host {
            host: host.to_string(),
            why: format!("{what} {value:?} is not allowed (it starts with '-' or holds spaces or shell metacharacters); fix the inventory"),
        });
    }
    Ok(())
}

fn string_var(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Loads an inventory file (INI, or YAML/JSON by extension) or a directory of them.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let read_err = |why: String| InventoryError::Read {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
    let mut raw = Raw::default();
    let base = if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| read_err(e.to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                // Ansible's inventory_ignore_extensions, and hidden files.
                !n.starts_with('.')
                    && ![
                        ".orig", ".ini", ".cfg", ".retry", ".pyc", ".pyo", "~", ".bak", ".md",
                        ".txt",
                    ]
                    .iter()
                    .any(|x| n.ends_with(x))
            })
            .collect();
        entries.sort();
        for f in entries {
            parse_file(&f, &mut raw)?;
        }
        path.to_path_buf()
    } else {
        parse_file(path, &mut raw)?;
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    build(raw, &base)
}

/// Reads inventory text as if it were the file `name` (its extension picks
/// YAML or INI), without group_vars/host_vars. For tools and fuzzing.
pub fn from_text(name: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let mut raw = Raw::default();
    parse_text(name, text, &mut raw)?;
    build(raw, Path::new("/nonexistent-sprayvault-vars"))
}

fn parse_text(path: &Path, text: &str, raw: &mut Raw) -> Result<(), InventoryError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "yml" | "yaml" | "json") {
        yaml::parse(path, text, raw)
    } else {
        ini::parse(path, text, raw)
    }
}

fn parse_file(path: &Path, raw: &mut Raw) -> Result<(), InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| InventoryError::Read {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "yml" | "yaml" | "json") {
        yaml::parse(path, &text, raw)
    } else {
        ini::parse(path, &text, raw)
    }
}

/// Computes group membership, depths and merged variables.
fn build(mut raw: Raw, base: &Path) -> Result<Inventory, InventoryError> {
    raw.group("all");
    raw.group("ungrouped");
    // Every group without a parent is a child of `all`.
    let has_parent: BTreeSet<String> = raw
        .groups
        .values()
        .flat_map(|g| g.children.iter().cloned())
        .collect();
    let tops: Vec<String> = raw
        .groups
        .keys()
        .filter(|g| *g != "all" && !has_parent.contains(*g))
        .cloned()
        .collect();
    for t in tops {
        raw.add_child("all", &t);
    }
    // Hosts in no group but `all` are `ungrouped`.
    let grouped: BTreeSet<String> = raw
        .groups
        .iter()
        .filter(|(n, _)| *n != "all" && *n != "ungrouped")
        .flat_map(|(_, g)| g.hosts.iter().cloned())
        .collect();
    let all_hosts: BTreeSet<String> = raw.host_vars.keys().cloned().collect();
    for h in &all_hosts {
        if !grouped.contains(h) {
            raw.group("ungrouped").hosts.insert(h.clone());
        }
    }
    raw.group("all").hosts.clear();

    let depth = depths(&raw);
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, g) in &raw.groups {
        for c in &g.children {
            parents.entry(c.as_str()).or_default().push(name.as_str());
        }
    }
    let mut inv = Inventory::default();
    let mut file_vars: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for name in raw.groups.keys() {
        file_vars.insert(name.clone(), vars::load(base, "group_vars", name)?);
    }
    for host in &all_hosts {
        // Groups of the host: direct ones and all their ancestors.
        let mut member: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = raw
            .groups
            .iter()
            .filter(|(_, g)| g.hosts.contains(host))
            .map(|(n, _)| n.as_str())
            .collect();
        stack.push("all");
        while let Some(g) = stack.pop() {
            if member.insert(g) {
                stack.extend(parents.get(g).into_iter().flatten().copied());
            }
        }
        let mut ordered: Vec<&str> = member.iter().copied().collect();
        ordered.sort_by_key(|g| (depth.get(*g).copied().unwrap_or(0), g.to_string()));
        let mut merged = Map::new();
        for g in &ordered {
            merged.extend(raw.groups[*g].vars.clone());
        }
        for g in &ordered {
            merged.extend(file_vars[*g].clone());
        }
        merged.extend(raw.host_vars.get(host).cloned().unwrap_or_default());
        merged.extend(vars::load(base, "host_vars", host)?);
        for g in &ordered {
            inv.groups
                .entry(g.to_string())
                .or_default()
                .insert(host.clone());
        }
        inv.hosts.insert(
            host.clone(),
            make_host(
                host,
                merged,
                ordered
                    .iter()
                    .filter(|g| **g != "all" && **g != "ungrouped")
                    .map(|g| g.to_string())
                    .collect(),
            )?,
        );
    }
    for name in raw.groups.keys() {
        inv.groups.entry(name.clone()).or_default();
    }
    Ok(inv)
}

/// Depth of every group below `all` (the longest path from it).
fn depths(raw: &Raw) -> BTreeMap<String, usize> {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let mut frontier = vec![("all".to_string(), 0usize)];
    let mut steps = 0;
    while let Some((g, d)) = frontier.pop() {
        steps += 1;
        if steps > 100_000 {
            break; // a cycle in children; Ansible rejects those too
        }
        if depth.get(&g).is_some_and(|&old| old >= d) {
            continue;
        }
        depth.insert(g.clone(), d);
        if let Some(gr) = raw.groups.get(&g) {
            for c in &gr.children {
                frontier.push((c.clone(), d + 1));
            }
        }
    }
    depth
}

fn make_host(
    name: &str,
    vars: Map<String, Value>,
    mut groups: Vec<String>,
) -> Result<Host, InventoryError> {
    let herr = |why: String| InventoryError::Host {
        host: name.to_string(),
        why,
    };
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| vars.get(*k))
            .filter(|v| !v.is_null())
    };
    let address = match get(&["ansible_host", "ansible_ssh_host"]) {
        Some(v) => string_var(v).ok_or_else(|| herr("ansible_host must be a string".into()))?,
        None => name.to_string(),
    };
    check_word(name, "ansible_host", &address, true)?;
    let port = match get(&["ansible_port", "ansible_ssh_port"]) {
        Some(v) => Some(
            string_var(v)
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| herr(format!("ansible_port {v} is not a port number")))?,
        ),
        None => None,
    };
    let user = match get(&["ansible_user", "ansible_ssh_user"]) {
        Some(v) => {
            let u = string_var(v).ok_or_else(|| herr("ansible_user must be a string".into()))?;
            check_word(name, "ansible_user", &u, false)?;
            Some(u)
        }
        None => None,
    };
    let become_ = match get(&["ansible_become"]) {
        Some(v) => ansible_bool(v).ok_or_else(|| {
            herr(format!(
                "ansible_become {v} is not a boolean (yes/no/true/false)"
            ))
        })?,
        None => false,
    };
    let key_file = match get(&["ansible_ssh_private_key_file", "ansible_private_key_file"]) {
        Some(v) => {
            let k = string_var(v)
                .ok_or_else(|| herr("ansible_ssh_private_key_file must be a string".into()))?;
            if k.is_empty() || k.starts_with('-') || k.chars().any(|c| c.is_control()) {
                return Err(herr(format!(
                    "ansible_ssh_private_key_file {k:?} is not allowed"
                )));
            }
            Some(PathBuf::from(shellexpand_home(&k)))
        }
        None => None,
    };
    groups.sort();
    Ok(Host {
        name: name.to_string(),
        address,
        port,
        user,
        become_,
        key_file,
        groups,
        vars: vars.into_iter().collect(),
    })
}

fn shellexpand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

impl Inventory {
    /// The hosts matching an Ansible host pattern (`None` = all), sorted by name.
    pub fn select(&self, pattern: Option<&str>) -> Result<Vec<&Host>, InventoryError> {
        match pattern {
            None => Ok(self.hosts.values().collect()),
            Some(p) => pattern::select(self, p),
        }
    }

    /// `{"hosts": {"NAME": {"address", "port", "user", "become", "groups"}}}`.
    pub fn to_json(&self) -> Value {
        let mut hosts = Map::new();
        for (name, h) in &self.hosts {
            hosts.insert(
                name.clone(),
                json!({"address": h.address, "port": h.port, "user": h.user, "become": h.become_, "groups": h.groups}),
            );
        }
        json!({ "hosts": hosts })
    }
}
