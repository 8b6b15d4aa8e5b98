//! Ansible host patterns, for `--limit`: names, groups, `all`/`*`, globs,
//! unions (`a:b`, `a,b`), intersections (`&g`) and exclusions (`!g`).

use super::{Host, Inventory, InventoryError};
use crate::paths::glob_match;
use std::collections::BTreeSet;

fn matching(inv: &Inventory, term: &str) -> Result<BTreeSet<String>, InventoryError> {
    if term.starts_with('~') {
        return Err(InventoryError::Pattern {
            pattern: term.into(),
            why: "regular expressions are not supported; use names, groups or * globs".into(),
        });
    }
    if term == "all" || term == "*" {
        return Ok(inv.hosts.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    if let Some(g) = inv.groups.get(term) {
        out.extend(g.iter().cloned());
    }
    if inv.hosts.contains_key(term) {
        out.insert(term.to_string());
    }
    if out.is_empty() && (term.contains('*') || term.contains('?')) {
        for (name, hosts) in &inv.groups {
            if glob_match(term, name) {
                out.extend(hosts.iter().cloned());
            }
        }
        for name in inv.hosts.keys() {
            if glob_match(term, name) {
                out.insert(name.clone());
            }
        }
    }
    Ok(out)
}

pub fn select<'a>(inv: &'a Inventory, pattern: &str) -> Result<Vec<&'a Host>, InventoryError> {
    let terms: Vec<&str> = if pattern.contains(',') {
        pattern.split(',')
    } else {
        pattern.split(':')
    }
    .map(str::trim)
    .filter(|t| !t.is_empty())
    .collect();
    let (mut plus, mut and, mut not) = (Vec::new(), Vec::new(), Vec::new());
    for t in terms {
        if let Some(x) = t.strip_prefix('!') {
            not.push(x);
        } else if let Some(x) = t.strip_prefix('&') {
            and.push(x);
        } else {
            plus.push(t);
        }
    }
    if plus.is_empty() {
        plus.push("all");
    }
    let mut set = BTreeSet::new();
    for t in plus {
        let m = matching(inv, t)?;
        if m.is_empty() {
            return Err(InventoryError::NoMatch {
                pattern: t.to_string(),
            });
        }
        set.extend(m);
    }
    for t in and {
        let m = matching(inv, t)?;
        set.retain(|h| m.contains(h));
    }
    for t in not {
        let m = matching(inv, t)?;
        set.retain(|h| !m.contains(h));
    }
    if set.is_empty() {
        return Err(InventoryError::NoMatch {
            pattern: pattern.to_string(),
        });
    }
    Ok(set.iter().filter_map(|h| inv.hosts.get(h)).collect())
}
