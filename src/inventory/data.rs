//! The inventory as the parsers build it, kept the way Ansible's
//! `InventoryData` keeps it: groups with their direct hosts, children,
//! parents, variables and `ansible_group_priority`; hosts with the variables
//! the inventory files give them; and where each variable was set, for
//! error messages. Parsers add to it in file order, so later settings win.

use super::parse_error::ParseError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Where a variable (or host) was given: a file, and the line for INI.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: Option<usize>,
}

/// Variables by name, each with where it was set.
pub type Vars = BTreeMap<String, (Value, Origin)>;

#[derive(Clone, Debug)]
pub struct Group {
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub parents: Vec<String>,
    pub vars: Vars,
    pub priority: i64,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            hosts: Vec::new(),
            children: Vec::new(),
            parents: Vec::new(),
            vars: Vars::new(),
            priority: 1,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct HostData {
    pub vars: Vars,
    /// Where the host was first named.
    pub origin: Origin,
    /// The groups the host is in directly.
    pub groups: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Data {
    pub groups: BTreeMap<String, Group>,
    pub hosts: BTreeMap<String, HostData>,
}

impl Data {
    /// `all` with `ungrouped` as its child, as Ansible starts.
    pub fn new() -> Data {
        let mut d = Data {
            groups: BTreeMap::new(),
            hosts: BTreeMap::new(),
        };
        d.groups.insert("all".into(), Group::default());
        d.groups.insert("ungrouped".into(), Group::default());
        d.link("all", "ungrouped");
        d
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    pub fn add_group(&mut self, name: &str) -> Result<(), ParseError> {
        if name.is_empty() {
            return Err(ParseError::EmptyGroupName);
        }
        if name.chars().any(char::is_control) {
            return Err(ParseError::GroupNameControl {
                name: name.to_string(),
            });
        }
        self.groups.entry(name.to_string()).or_default();
        Ok(())
    }

    /// Adds `host` (to `group`). Like Ansible, a port given with the host
    /// counts only where the host is first named.
    pub fn add_host(&mut self, host: &str, group: &str, port: Option<u64>, origin: &Origin) {
        if !self.hosts.contains_key(host) {
            let mut h = HostData {
                vars: Vars::new(),
                origin: origin.clone(),
                groups: Vec::new(),
            };
            if let Some(p) = port.filter(|p| *p != 0) {
                h.vars
                    .insert("ansible_port".into(), (Value::from(p), origin.clone()));
            }
            self.hosts.insert(host.to_string(), h);
        }
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        // The host's own list of groups is short: check membership there.
        if !h.groups.iter().any(|g| g == group) {
            h.groups.push(group.to_string());
            let g = self.groups.entry(group.to_string()).or_default();
            g.hosts.push(host.to_string());
        }
    }

    pub fn set_host_var(&mut self, host: &str, key: &str, value: Value, origin: &Origin) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.vars.insert(key.to_string(), (value, origin.clone()));
        }
    }

    /// Sets a group variable; `ansible_group_priority` sets the priority
    /// instead, as Ansible does (a whole number, or an error).
    pub fn set_group_var(
        &mut self,
        group: &str,
        key: &str,
        value: Value,
        origin: &Origin,
    ) -> Result<(), ParseError> {
        let g = self.groups.entry(group.to_string()).or_default();
        if key == "ansible_group_priority" {
            g.priority = match py_int(&value) {
                Some(p) => p,
                None => {
                    return Err(ParseError::BadPriority {
                        group: group.to_string(),
                        value,
                    })
                }
            };
        } else {
            g.vars.insert(key.to_string(), (value, origin.clone()));
        }
        Ok(())
    }

    /// Makes `child` a child group of `parent`; both exist. Loops are errors.
    pub fn add_child(&mut self, parent: &str, child: &str) -> Result<(), ParseError> {
        if parent == child {
            return Err(ParseError::OwnChild {
                group: parent.to_string(),
            });
        }
        if self.ancestors_of(parent).contains(child) {
            return Err(ParseError::ChildLoop {
                parent: parent.to_string(),
                child: child.to_string(),
            });
        }
        self.link(parent, child);
        Ok(())
    }

    fn link(&mut self, parent: &str, child: &str) {
        let p = self.groups.entry(parent.to_string()).or_default();
        if !p.children.iter().any(|c| c == child) {
            p.children.push(child.to_string());
        }
        let c = self.groups.entry(child.to_string()).or_default();
        if !c.parents.iter().any(|x| x == parent) {
            c.parents.push(parent.to_string());
        }
    }

    /// Every group above `group` (not itself).
    pub fn ancestors_of(&self, group: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = vec![group];
        while let Some(g) = stack.pop() {
            for p in self
                .groups
                .get(g)
                .map(|g| g.parents.as_slice())
                .unwrap_or_default()
            {
                if seen.insert(p.clone()) {
                    stack.push(p);
                }
            }
        }
        seen
    }

    /// The groups `host` is in directly.
    pub fn direct_groups(&self, host: &str) -> &[String] {
        self.hosts
            .get(host)
            .map(|h| h.groups.as_slice())
            .unwrap_or_default()
    }

    /// The groups `host` is in, directly or through children, `all` included.
    pub fn host_groups(&self, host: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for g in self.direct_groups(host) {
            out.extend(self.ancestors_of(g));
            out.insert(g.clone());
        }
        out
    }

    /// Ansible's `reconcile_inventory`: groups without a parent go under
    /// `all`; hosts in no other group are `ungrouped`, and hosts that are
    /// are taken out of it.
    pub fn reconcile(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .iter()
            .filter(|(n, g)| *n != "all" && g.parents.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for g in orphans {
            self.link("all", &g);
        }
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        // Taken out of `ungrouped` in one pass at the end: one `retain` per
        // host was quadratic (minutes for `n[0:99999]` both before and in
        // a section).
        let mut regrouped: BTreeSet<String> = BTreeSet::new();
        for h in names {
            let groups = self.host_groups(&h);
            let others = groups.iter().any(|g| g != "all" && g != "ungrouped");
            if groups.contains("ungrouped") {
                if others {
                    regrouped.insert(h.clone());
                    if let Some(x) = self.hosts.get_mut(&h) {
                        x.groups.retain(|g| g != "ungrouped");
                    }
                }
            } else if !others {
                let origin = self
                    .hosts
                    .get(&h)
                    .map(|x| x.origin.clone())
                    .unwrap_or_default();
                self.add_host(&h, "ungrouped", None, &origin);
            }
        }
        if let Some(u) = self.groups.get_mut("ungrouped") {
            u.hosts.retain(|x| !regrouped.contains(x));
        }
    }

    /// Each group's depth: the longest path down from `all` (which is 0).
    pub fn depths(&self) -> BTreeMap<String, usize> {
        fn depth(d: &Data, g: &str, memo: &mut BTreeMap<String, usize>) -> usize {
            if let Some(&n) = memo.get(g) {
                return n;
            }
            let parents = d
                .groups
                .get(g)
                .map(|x| x.parents.clone())
                .unwrap_or_default();
            let n = parents
                .iter()
                .map(|p| depth(d, p, memo) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(g.to_string(), n);
            n
        }
        let mut memo = BTreeMap::new();
        for g in self.groups.keys() {
            depth(self, g, &mut memo);
        }
        memo
    }

    /// The hosts of `group` in Ansible's order (`groups['NAME']`): its own
    /// hosts as the inventory names them, then its children's, each once.
    pub fn ordered_hosts(&self, group: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen_groups = BTreeSet::new();
        let mut queue = std::collections::VecDeque::from([group.to_string()]);
        while let Some(g) = queue.pop_front() {
            if !seen_groups.insert(g.clone()) {
                continue;
            }
            if let Some(grp) = self.groups.get(&g) {
                for h in &grp.hosts {
                    if !out.contains(h) {
                        out.push(h.clone());
                    }
                }
                queue.extend(grp.children.iter().cloned());
            }
        }
        out
    }

    /// Every host of each group, through its children too.
    pub fn members(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = self
            .groups
            .keys()
            .map(|g| (g.clone(), BTreeSet::new()))
            .collect();
        for h in self.hosts.keys() {
            for g in self.host_groups(h) {
                out.entry(g).or_default().insert(h.clone());
            }
        }
        // `all` has every host, even one only in a group nobody reaches.
        out.entry("all".into())
            .or_default()
            .extend(self.hosts.keys().cloned());
        out
    }
}

/// Python's `int(value)` for the values a priority can have.
fn py_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_longest_path_and_loops_are_refused() {
        let mut d = Data::new();
        for g in ["a", "b", "c"] {
            d.add_group(g).unwrap();
        }
        d.add_child("a", "b").unwrap();
        d.add_child("b", "c").unwrap();
        d.add_child("a", "c").unwrap();
        assert!(d.add_child("c", "a").is_err());
        assert!(d.add_child("a", "a").is_err());
        d.reconcile();
        let depth = d.depths();
        assert_eq!(
            (
                depth["all"],
                depth["a"],
                depth["b"],
                depth["c"],
                depth["ungrouped"]
            ),
            (0, 1, 2, 3, 1)
        );
    }

    /// Found by the `inventory_ini` fuzz target (a timeout): hosts named
    /// before any section and again in one were taken out of `ungrouped`
    /// one `retain` at a time, quadratic in the hosts: `n[0:99999]` twice
    /// took 42 s to read in a release build.
    #[test]
    fn regression_ungrouped_removal_quadratic() {
        let mut d = Data::new();
        let o = Origin::default();
        d.add_group("g").unwrap();
        let n = 50_000;
        for i in 0..n {
            d.add_host(&format!("n{i}"), "ungrouped", None, &o);
        }
        d.add_host("lonely", "ungrouped", None, &o);
        for i in 0..n {
            d.add_host(&format!("n{i}"), "g", None, &o);
        }
        let start = std::time::Instant::now();
        d.reconcile();
        // Quadratic, this is over a billion string comparisons.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(d.groups["ungrouped"].hosts, ["lonely"]);
        assert_eq!(d.groups["g"].hosts.len(), n);
        assert_eq!(d.hosts["n7"].groups, ["g"]);
    }

    #[test]
    fn ungrouped_and_first_port() {
        let mut d = Data::new();
        let o = Origin::default();
        d.add_group("g").unwrap();
        d.add_host("lonely", "all", None, &o);
        d.add_host("h", "ungrouped", Some(22), &o);
        d.add_host("h", "g", Some(2222), &o);
        d.reconcile();
        assert_eq!(d.groups["ungrouped"].hosts, ["lonely"]);
        assert_eq!(d.hosts["h"].vars["ansible_port"].0, Value::from(22));
    }
}
