//! `group_vars/` and `host_vars/` beside the inventory, as Ansible's
//! host_group_vars plugin finds them: `NAME`, `NAME.yml`, `NAME.yaml`,
//! `NAME.json`, or a directory `NAME/` of such files (sorted, recursive).

use super::yaml::load_value;
use super::InventoryError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && (p.extension().is_none()
                    || EXTENSIONS
                        .iter()
                        .any(|x| !x.is_empty() && name.ends_with(x)))
        })
        .collect();
    out.sort();
    out
}

/// The variables for `name` found under `base/{group_vars|host_vars}`.
pub fn load(base: &Path, kind: &str, name: &str) -> Result<Map<String, Value>, InventoryError> {
    let dir = base.join(kind);
    let mut found = Vec::new();
    for ext in EXTENSIONS {
        let p = dir.join(format!("{name}{ext}"));
        if p.is_file() {
            found.push(p);
        }
    }
    let d = dir.join(name);
    if d.is_dir() {
        found.extend(files_in(&d));
    }
    let mut vars = Map::new();
    for f in found {
        let text = std::fs::read_to_string(&f).map_err(|e| InventoryError::Read {
            path: f.clone(),
            why: e.to_string(),
        })?;
        match load_value(&f, &text)? {
            Value::Null => {}
            Value::Object(m) => vars.extend(m),
            _ => {
                return Err(InventoryError::Syntax {
                    file: f,
                    line: 0,
                    why: "a variables file must hold a mapping of names to values".into(),
                });
            }
        }
    }
    Ok(vars)
}
