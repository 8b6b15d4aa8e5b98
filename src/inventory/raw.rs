//! The inventory as parsed from its sources, before variables are merged:
//! groups with their direct hosts, children and variables.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default, Debug)]
pub struct RawGroup {
    pub hosts: BTreeSet<String>,
    pub children: BTreeSet<String>,
    pub vars: Map<String, Value>,
}

#[derive(Default, Debug)]
pub struct Raw {
    pub groups: BTreeMap<String, RawGroup>,
    /// Variables given with the host in the inventory source (merged over
    /// every place the host appears, later ones winning).
    pub host_vars: BTreeMap<String, Map<String, Value>>,
}

impl Raw {
    pub fn group(&mut self, name: &str) -> &mut RawGroup {
        self.groups.entry(name.to_string()).or_default()
    }

    pub fn add_host(&mut self, group: &str, host: &str, vars: Map<String, Value>) {
        self.group(group).hosts.insert(host.to_string());
        let hv = self.host_vars.entry(host.to_string()).or_default();
        for (k, v) in vars {
            hv.insert(k, v);
        }
    }

    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.group(child);
        self.group(parent).children.insert(child.to_string());
    }
}
