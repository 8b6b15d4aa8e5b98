//! Ansible's YAML inventory format: groups with `hosts`, `children` and
//! `vars`, nested to any depth; `null` or `{}` host entries.

use super::raw::Raw;
use super::{ini::split_port, range, InventoryError};
use serde_json::{Map, Value};
use std::path::Path;

fn to_map(v: &Value, what: &str) -> Result<Map<String, Value>, String> {
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        other => Err(format!("{what} must be a mapping, not {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses YAML (or JSON) text into a JSON value, for inventories and var files.
pub fn load_value(path: &Path, text: &str) -> Result<Value, InventoryError> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| InventoryError::Syntax {
        file: path.to_path_buf(),
        line: e.location().map(|l| l.line()).unwrap_or(0),
        why: format!("{e}; fix the YAML"),
    })?;
    serde_json::to_value(v).map_err(|e| InventoryError::Syntax {
        file: path.to_path_buf(),
        line: 0,
        why: format!("{e} (only string keys are supported)"),
    })
}

pub fn parse(path: &Path, text: &str, raw: &mut Raw) -> Result<(), InventoryError> {
    let err = |why: String| InventoryError::Syntax {
        file: path.to_path_buf(),
        line: 0,
        why,
    };
    let top = to_map(
        &load_value(path, text)?,
        "the top level of a YAML inventory",
    )
    .map_err(err)?;
    for (name, def) in &top {
        group(name, def, raw).map_err(err)?;
    }
    Ok(())
}

fn group(name: &str, def: &Value, raw: &mut Raw) -> Result<(), String> {
    super::check_group_name(name)?;
    raw.group(name);
    let def = to_map(def, &format!("group {name}"))?;
    for (key, value) in &def {
        match key.as_str() {
            "hosts" => {
                for (pattern, vars) in to_map(value, &format!("hosts of group {name}"))? {
                    let mut vars = to_map(&vars, &format!("host {pattern} in group {name}"))?;
                    let (pattern, port) = split_port(&pattern)?;
                    if let Some(p) = port {
                        vars.insert("ansible_port".into(), Value::from(p));
                    }
                    for host in range::expand(&pattern)? {
                        super::check_host_name(&host)?;
                        raw.add_host(name, &host, vars.clone());
                    }
                }
            }
            "children" => {
                for (child, cdef) in to_map(value, &format!("children of group {name}"))? {
                    raw.add_child(name, &child);
                    group(&child, &cdef, raw)?;
                }
            }
            "vars" => {
                for (k, v) in to_map(value, &format!("vars of group {name}"))? {
                    raw.group(name).vars.insert(k, v);
                }
            }
            // Ansible skips unexpected keys with a warning.
            _ => {}
        }
    }
    Ok(())
}
