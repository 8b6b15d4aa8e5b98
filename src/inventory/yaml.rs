//! Ansible's YAML (and JSON) inventory format, read as its `yaml` plugin
//! reads it: top-level keys are groups, each a mapping of `hosts`,
//! `children` and `vars` (or null), nested to any depth; a group named in
//! several places is one group; a host is a key with a mapping of variables,
//! null or `{}`; `host:port` keys and ranges work as in INI; a string where
//! a mapping is expected names one entry (`hosts: node1`).
//!
//! Where Ansible only warns and skips (an unknown key in a group, a group
//! that is a list), this is an error, so that no host goes missing quietly.

use super::data::{Data, Origin};
use super::node::{self, Node};
use super::{address, range, InventoryError};
use std::path::Path;

/// Why a file is not a YAML inventory. `structural` when it is YAML with
/// groups but wrong inside; otherwise Ansible would go on to try INI.
pub struct Failure {
    pub structural: bool,
    pub error: InventoryError,
}

pub fn parse(file: &Path, text: &str, data: &mut Data) -> Result<(), Failure> {
    let fail = |structural: bool, why: String| Failure {
        structural,
        error: InventoryError::Syntax {
            file: file.to_path_buf(),
            line: None,
            why,
        },
    };
    let top = match node::parse(text) {
        Err(e) => return Err(fail(false, format!("{e}; fix the YAML"))),
        Ok(Node::Map(pairs)) if !pairs.is_empty() => pairs,
        Ok(Node::Map(_) | Node::Null) => {
            return Err(fail(false, "the YAML inventory is empty".into()))
        }
        Ok(other) => {
            return Err(fail(
                false,
                format!(
                    "a YAML inventory is a mapping of group names (all:, kube_node:, ...), not {}",
                    other.kind()
                ),
            ))
        }
    };
    if let Some((_, plugin)) = top
        .iter()
        .find(|(k, v)| k.as_str() == Some("plugin") && truthy(v))
    {
        return Err(fail(
            true,
            format!(
                "this is the configuration of the inventory plugin {}, which sprayvault cannot run; write its hosts to a file with `ansible-inventory -i FILE --list --yaml > hosts.yaml` and use that",
                plugin.to_value().unwrap_or_default()
            ),
        ));
    }
    let origin = Origin {
        file: file.to_path_buf(),
        line: None,
    };
    for (name, def) in top {
        group(&name, def, data, &origin).map_err(|why| fail(true, why))?;
    }
    Ok(())
}

/// Python's truth of a value (`x or {}`).
fn truthy(n: &Node) -> bool {
    match n {
        Node::Null => false,
        Node::Bool(b) => *b,
        Node::Number(x) => x.as_f64() != Some(0.0),
        Node::Str(s) | Node::Time(s) => !s.is_empty(),
        Node::Seq(v) => !v.is_empty(),
        Node::Map(m) => !m.is_empty(),
        Node::Unsafe(inner) => truthy(inner),
        Node::Vault(_) => true,
    }
}

/// Reads one group definition; returns the group's name.
fn group(name: &Node, def: Node, data: &mut Data, origin: &Origin) -> Result<String, String> {
    let Some(name) = name.as_str() else {
        return Err(format!(
            "a group name is {}; group names must be strings",
            name.kind()
        ));
    };
    let pairs = match def {
        Node::Null => Vec::new(),
        Node::Map(pairs) => pairs,
        other => {
            return Err(format!(
                "group '{name}' is {}; a group is a mapping with hosts:, children: and vars: (or empty)",
                other.kind()
            ))
        }
    };
    data.add_group(name)?;
    for (key, value) in pairs {
        let section = match key.as_str() {
            Some(k) if matches!(k, "hosts" | "children" | "vars") => k.to_string(),
            _ => {
                return Err(format!(
                    "group '{name}' has the key {}, but only hosts:, children: and vars: are valid there; check the indentation and spelling",
                    key.to_value().map(|v| v.to_string()).unwrap_or_else(|_| key.kind().into())
                ))
            }
        };
        let entries = match value {
            Node::Null => continue,
            Node::Map(entries) => entries,
            // `hosts: node1` is `hosts: {node1: null}` in Ansible.
            s @ (Node::Str(_) | Node::Unsafe(_)) if s.as_str().is_some() => vec![(s, Node::Null)],
            other => {
                let hint = if section == "hosts" && matches!(other, Node::Seq(_)) {
                    " (write each host as a key ending in ':', not as a '- ' list item)"
                } else {
                    ""
                };
                return Err(format!(
                    "{section} of group '{name}' must be a mapping, not {}{hint}",
                    other.kind()
                ));
            }
        };
        match section.as_str() {
            "vars" => {
                for (k, v) in entries {
                    let v = v
                        .to_value()
                        .map_err(|e| format!("vars of group '{name}': {e}"))?;
                    data.set_group_var(name, &k.key_text()?, v, origin)?;
                }
            }
            "children" => {
                for (child, cdef) in entries {
                    let child = group(&child, cdef, data, origin)?;
                    data.add_child(name, &child)?;
                }
            }
            _ => {
                for (pattern, hdef) in entries {
                    hosts(name, &pattern, hdef, data, origin)?;
                }
            }
        }
    }
    Ok(name.to_string())
}

/// One key under `hosts:`: a host pattern and its variables.
fn hosts(
    group: &str,
    pattern: &Node,
    def: Node,
    data: &mut Data,
    origin: &Origin,
) -> Result<(), String> {
    let Some(pattern) = pattern.as_str() else {
        return Err(format!(
            "host {} in group '{group}' is {}; quote host names that look like numbers",
            pattern
                .to_value()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            pattern.kind()
        ));
    };
    let vars = match def {
        Node::Map(pairs) => pairs,
        other if !truthy(&other) => Vec::new(),
        other => {
            return Err(format!(
                "host '{pattern}' in group '{group}' has {} where its variables (a mapping) or nothing belong",
                other.kind()
            ))
        }
    };
    let mut values = Vec::new();
    for (k, v) in vars {
        let v = v.to_value().map_err(|e| format!("host '{pattern}': {e}"))?;
        values.push((k.key_text()?, v));
    }
    let (hostpattern, port) = address::split_port(pattern);
    let names = range::expand(&hostpattern)?;
    for h in &names {
        data.add_host(h, group, port, origin);
        for (k, v) in &values {
            data.set_host_var(h, k, v.clone(), origin);
        }
    }
    Ok(())
}
