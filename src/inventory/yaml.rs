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
use super::parse_error::ParseError;
use super::{address, range, InventoryError};
use std::path::Path;

/// Why a file is not a YAML inventory. `structural` when it is YAML with
/// groups but wrong inside; otherwise Ansible would go on to try INI.
pub struct Failure {
    pub structural: bool,
    pub error: InventoryError,
}

/// The failure is boxed, being large (an `InventoryError` and more).
pub fn parse(file: &Path, text: &str, data: &mut Data) -> Result<(), Box<Failure>> {
    let fail = |structural: bool, why: ParseError| {
        Box::new(Failure {
            structural,
            error: InventoryError::Syntax {
                file: file.to_path_buf(),
                line: None,
                why,
            },
        })
    };
    let top = match node::parse(text) {
        Err(e) => return Err(fail(false, ParseError::Yaml(e))),
        Ok(Node::Map(pairs)) if !pairs.is_empty() => pairs,
        Ok(Node::Map(_) | Node::Null) => return Err(fail(false, ParseError::EmptyYaml)),
        Ok(other) => return Err(fail(false, ParseError::NotGroups { kind: other.kind() })),
    };
    if let Some((_, plugin)) = top
        .iter()
        .find(|(k, v)| k.as_str() == Some("plugin") && truthy(v))
    {
        return Err(fail(
            true,
            ParseError::PluginConfig {
                plugin: plugin.to_value().unwrap_or_default(),
            },
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
fn group(name: &Node, def: Node, data: &mut Data, origin: &Origin) -> Result<String, ParseError> {
    let Some(name) = name.as_str() else {
        return Err(ParseError::GroupNameNotText { kind: name.kind() });
    };
    let pairs = match def {
        Node::Null => Vec::new(),
        Node::Map(pairs) => pairs,
        other => {
            return Err(ParseError::GroupNotMapping {
                group: name.to_string(),
                kind: other.kind(),
            })
        }
    };
    data.add_group(name)?;
    for (key, value) in pairs {
        let section = match key.as_str() {
            Some("hosts") => "hosts",
            Some("children") => "children",
            Some("vars") => "vars",
            _ => {
                return Err(ParseError::GroupKey {
                    group: name.to_string(),
                    key: key
                        .to_value()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|_| key.kind().into()),
                })
            }
        };
        let entries = match value {
            Node::Null => continue,
            Node::Map(entries) => entries,
            // `hosts: node1` is `hosts: {node1: null}` in Ansible.
            s @ (Node::Str(_) | Node::Unsafe(_)) if s.as_str().is_some() => vec![(s, Node::Null)],
            Node::Seq(_) if section == "hosts" => {
                return Err(ParseError::HostsList {
                    group: name.to_string(),
                })
            }
            other => {
                return Err(ParseError::SectionNotMapping {
                    section,
                    group: name.to_string(),
                    kind: other.kind(),
                })
            }
        };
        match section {
            "vars" => {
                for (k, v) in entries {
                    let v = v.to_value().map_err(|error| ParseError::GroupVar {
                        group: name.to_string(),
                        error,
                    })?;
                    let k = k.key_text().map_err(ParseError::Key)?;
                    data.set_group_var(name, &k, v, origin)?;
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
) -> Result<(), ParseError> {
    let Some(pattern) = pattern.as_str() else {
        return Err(ParseError::HostNotText {
            key: pattern
                .to_value()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            group: group.to_string(),
            kind: pattern.kind(),
        });
    };
    let vars = match def {
        Node::Map(pairs) => pairs,
        other if !truthy(&other) => Vec::new(),
        other => {
            return Err(ParseError::HostVarsNotMapping {
                host: pattern.to_string(),
                group: group.to_string(),
                kind: other.kind(),
            })
        }
    };
    let mut values = Vec::new();
    for (k, v) in vars {
        let v = v.to_value().map_err(|error| ParseError::HostVar {
            host: pattern.to_string(),
            error,
        })?;
        values.push((k.key_text().map_err(ParseError::Key)?, v));
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
