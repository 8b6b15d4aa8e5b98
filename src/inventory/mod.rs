//! Reading a kubespray inventory the way Ansible does (INI or YAML, a file
//! or a directory, with `group_vars/` and `host_vars/` beside it), down to
//! what sprayvault needs of each host: where to connect, as whom, with
//! become or not, and its groups.
//!
//! The ground truth is `ansible-inventory -i PATH --list`; tests/inventory.rs
//! checks this module against it on the corpus in tests/fixtures/inventory.
//! Host names, users and addresses that could be taken for ssh options or
//! shell syntax are refused here, before anything connects anywhere.
//!
//! The parts: `source` (files and directories), `ini` and `yaml` (the two
//! formats, with `shlex`, `literal`, `address`, `range` and `node` beneath
//! them; `node` builds values from `compose`'s tree of saphyr-parser events
//! with `yaml11`'s PyYAML scalar rules), `data` (groups and hosts as parsed), `vars` (group_vars/host_vars
//! and the order variables merge in), `host` and `check` (connection
//! settings and what is refused), `boolean`, and `pattern` (`--limit`).
//! Why a file or host is refused is typed: `parse_error` (a file's
//! groups, lines and ranges), `yaml_error` (a YAML document) and
//! `host_error` (a host's name or connection variable).

mod address;
mod boolean;
mod check;
mod compose;
mod data;
mod host;
mod host_error;
mod ini;
mod literal;
mod node;
mod parse_error;
mod pattern;
mod pytoken;
mod range;
mod shlex;
mod source;
mod template;
mod vars;
mod yaml;
mod yaml11;
mod yaml_error;

pub use boolean::ansible_bool;
pub use host_error::{HostError, Rule};
pub use parse_error::{ParseError, RangeFault};
pub use yaml_error::{KeyNotText, Pos, ScalarError, YamlError};

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use thiserror::Error;

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!(" line {l}")).unwrap_or_default()
}

#[derive(Clone, Debug, Error)]
pub enum InventoryError {
    #[error("cannot read inventory {}: {why}; give the kubespray inventory file or directory with -i", path.display())]
    Read { path: PathBuf, why: String },
    #[error("inventory {}{}: {why}", file.display(), at_line(line))]
    Syntax {
        file: PathBuf,
        line: Option<usize>,
        why: ParseError,
    },
    /// A host's connection setting is unusable or unsafe; `file` and `line`
    /// are where that setting was given.
    #[error("inventory {}{}: host '{host}': {why}", file.display(), at_line(line))]
    Host {
        file: PathBuf,
        line: Option<usize>,
        host: String,
        why: HostError,
    },
    #[error("host pattern {pattern:?} matches no host of the inventory; check --limit against `sprayvault inventory -i ...`")]
    NoMatch { pattern: String },
    #[error("host pattern {pattern:?} is not supported: {why}")]
    Pattern { pattern: String, why: String },
}

/// Always a plain failure: what went wrong is in the message.
impl crate::error::Classify for InventoryError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Failed
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: String,
    /// `ansible_ssh_host`, else `ansible_host`, else the name.
    pub address: String,
    /// `ansible_ssh_port`, else `ansible_port` (also from `host:port`).
    pub port: Option<u16>,
    /// `ansible_ssh_user`, else `ansible_user`.
    pub user: Option<String>,
    /// `ansible_become`, as Ansible reads booleans.
    pub become_: bool,
    /// `ansible_ssh_private_key_file`, else `ansible_private_key_file`, as
    /// given (ssh expands `~` itself; a relative path is relative to the
    /// directory sprayvault runs in, as for Ansible).
    pub key_file: Option<PathBuf>,
    /// Every group the host is in, directly or through children, without
    /// `all` and `ungrouped`, sorted.
    pub groups: Vec<String>,
    /// The host's merged variables, as `ansible-inventory --list` shows them
    /// (`!unsafe` values as the values themselves).
    pub vars: BTreeMap<String, Value>,
}

impl Host {
    fn in_any(&self, names: &[&str]) -> bool {
        self.groups.iter().any(|g| names.contains(&g.as_str()))
    }
    pub fn is_etcd(&self) -> bool {
        self.in_any(&["etcd"])
    }
    /// In `kube_control_plane` (or the legacy `kube-master`/`kube_master`).
    pub fn is_control_plane(&self) -> bool {
        self.in_any(&["kube_control_plane", "kube-master", "kube_master"])
    }
    /// In `kube_node` (or the legacy `kube-node`).
    pub fn is_worker(&self) -> bool {
        self.in_any(&["kube_node", "kube-node"])
    }
    /// In `k8s_cluster` (or the legacy `k8s-cluster`), or a control-plane
    /// node or worker.
    pub fn in_cluster(&self) -> bool {
        self.in_any(&["k8s_cluster", "k8s-cluster"]) || self.is_control_plane() || self.is_worker()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// The hosts sprayvault can use.
    pub hosts: BTreeMap<String, Host>,
    /// Hosts it cannot use (a hostile name, an unusable connection
    /// variable), with why. As in Ansible, they are errors only where they
    /// are used: `select` fails when it would select one, `load` when there
    /// is one at all.
    pub unusable: BTreeMap<String, InventoryError>,
    /// Every group with all its hosts (through children too), `all` and
    /// `ungrouped` included.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Files of a directory inventory that no plugin could read, each as
    /// "PATH: why", skipped as Ansible skips them (it warns about each).
    pub skipped: Vec<String>,
    /// The hosts of the `etcd` group in Ansible's order, which gives
    /// kubespray's default member names (`etcd1`, `etcd2`, ...).
    pub etcd_order: Vec<String>,
    /// The hosts of `kube_control_plane` in Ansible's order: kubespray's
    /// first one initialises the control plane.
    pub control_plane_order: Vec<String>,
}

/// Loads an inventory file (YAML by its extension, else INI, as Ansible
/// tries them) or a directory of them, with the `group_vars/` and
/// `host_vars/` beside the file or in the directory. Every host must be
/// usable; see `read` for an inventory of which only some hosts are used.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    every_host_usable(read(path)?)
}

fn every_host_usable(mut inv: Inventory) -> Result<Inventory, InventoryError> {
    match std::mem::take(&mut inv.unusable).into_values().next() {
        Some(e) => Err(e),
        None => Ok(inv),
    }
}

/// Like `load`, but hosts that sprayvault cannot use are kept aside in
/// `unusable` instead of failing the whole inventory, for commands that
/// `select` the hosts they work on (`--limit`), as Ansible fails only on
/// the hosts it uses.
pub fn read(path: &Path) -> Result<Inventory, InventoryError> {
    let mut data = data::Data::new();
    let mut skipped = Vec::new();
    source::read(path, &mut data, &mut skipped)?;
    let base = if path.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let mut inv = build(data, Some(base))?;
    inv.skipped = skipped;
    Ok(inv)
}

/// Reads inventory text as if it were the file `name` (its extension picks
/// YAML or INI), without group_vars/host_vars; every host must be usable.
/// For tools and fuzzing.
pub fn from_text(name: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let mut data = data::Data::new();
    source::read_text(name, text, &mut data)?;
    every_host_usable(build(data, None)?)
}

/// A YAML (or JSON) document as JSON, read as Ansible's loader reads it
/// (YAML 1.1 scalars, merge keys, `!vault`, `!unsafe`; see `node.rs`). Also
/// what Ansible's YAML fact cache files are read with.
pub fn yaml_to_json(text: &str) -> Result<Value, YamlError> {
    Ok(node::parse(text)?.to_value()?)
}

/// Groups, depths and merged variables, into hosts.
fn build(mut data: data::Data, base: Option<PathBuf>) -> Result<Inventory, InventoryError> {
    data.reconcile();
    let depth = data.depths();
    let mut files = vars::VarFiles::new(base);
    let mut hosts = BTreeMap::new();
    let mut unusable = BTreeMap::new();
    for (name, h) in &data.hosts {
        // Before anything else, host_vars/NAME included.
        if let Err(why) = check::host_name(name) {
            let e = InventoryError::Host {
                file: h.origin.file.clone(),
                line: h.origin.line,
                host: name.clone(),
                why,
            };
            unusable.insert(name.clone(), e);
            continue;
        }
        let merged = vars::merged(&data, name, &depth, &mut files)?;
        let groups = data
            .host_groups(name)
            .into_iter()
            .filter(|g| g != "all" && g != "ungrouped")
            .collect();
        match host::build(name, merged, groups) {
            Ok(host) => {
                hosts.insert(name.clone(), host);
            }
            Err(e) => {
                unusable.insert(name.clone(), e);
            }
        }
    }
    Ok(Inventory {
        hosts,
        unusable,
        groups: data.members(),
        skipped: Vec::new(),
        etcd_order: data.ordered_hosts("etcd"),
        control_plane_order: data.ordered_hosts("kube_control_plane"),
    })
}

impl Inventory {
    /// kubespray's `etcd_member_name` of `host`: its variable, else `etcdN`
    /// by its position in the etcd group. `None` for hosts outside it.
    pub fn etcd_member_name(&self, host: &str) -> Option<(String, bool)> {
        let pos = self.etcd_order.iter().position(|h| h == host)?;
        match self
            .hosts
            .get(host)
            .and_then(|h| h.vars.get("etcd_member_name"))
        {
            Some(Value::String(s)) if !s.is_empty() => Some((s.clone(), true)),
            _ => Some((format!("etcd{}", pos + 1), false)),
        }
    }

    /// The hosts matching an Ansible host pattern (`None`: all), sorted by
    /// name. See `pattern.rs` for what patterns can be.
    /// A selected host that sprayvault cannot use is an error (the first
    /// such, by name).
    pub fn select(&self, pattern: Option<&str>) -> Result<Vec<&Host>, InventoryError> {
        let names = match pattern {
            None => self.groups.get("all").cloned().unwrap_or_default(),
            Some(p) => pattern::select(self, p)?,
        };
        let mut out = Vec::new();
        for name in &names {
            if let Some(e) = self.unusable.get(name) {
                return Err(e.clone());
            }
            out.extend(self.hosts.get(name));
        }
        Ok(out)
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
