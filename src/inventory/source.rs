//! Inventory sources as Ansible takes them. A file is tried with the
//! plugins Ansible would try, in its order: YAML for `.yaml`, `.yml`,
//! `.json` and extensionless files, then INI for any file (so an
//! extensionless file holding INI is INI). A directory is every file in it
//! and in its subdirectories, sorted, skipping what Ansible skips: hidden
//! files, `group_vars`, `host_vars`, `vars_plugins`, and the extensions
//! `.ini .cfg .retry .orig .md .txt .rst .bak .swp .rpm .pyc .pyo ~` (so an
//! `.ini` file is ignored when its directory is the inventory).
//!
//! A file given as the inventory that no plugin can read is an error. In a
//! directory, such files are skipped, as Ansible skips them with a warning
//! (kubespray writes `artifacts/admin.conf` and `credentials/` there), and
//! listed in `Inventory::skipped`. Inventory scripts and plugin
//! configurations are not run.

use super::data::Data;
use super::parse_error::ParseError;
use super::{ini, yaml, InventoryError};
use std::path::Path;

const IGNORED_NAMES: [&str; 3] = ["group_vars", "host_vars", "vars_plugins"];
const IGNORED_ENDINGS: [&str; 13] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini", ".cfg",
    ".retry",
];
const YAML_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

fn read_err(path: &Path, why: String) -> InventoryError {
    InventoryError::Read {
        path: path.to_path_buf(),
        why,
    }
}

/// Adds the inventory at `path` (a file or directory) to `data`. Files of
/// a directory that no plugin can read are skipped, as Ansible skips them
/// (with a warning): each goes into `skipped` as "PATH: why". If no file of
/// a directory can be read, the first one's error is the error.
pub fn read(path: &Path, data: &mut Data, skipped: &mut Vec<String>) -> Result<(), InventoryError> {
    let meta = std::fs::metadata(path).map_err(|e| read_err(path, e.to_string()))?;
    if !meta.is_dir() {
        return read_file(path, data);
    }
    let mut failures = Vec::new();
    let read_any = read_dir(path, data, &mut failures)?;
    if !read_any {
        if let Some(first) = failures.into_iter().next() {
            return Err(first);
        }
        return Ok(());
    }
    skipped.extend(failures.iter().map(|e| e.to_string()));
    Ok(())
}

/// Reads the files of `dir` and below; whether any could be read.
fn read_dir(
    dir: &Path,
    data: &mut Data,
    failures: &mut Vec<InventoryError>,
) -> Result<bool, InventoryError> {
    let mut entries: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    entries.sort();
    let mut read_any = false;
    for name in entries {
        let text = name.to_string_lossy();
        if text.starts_with('.')
            || IGNORED_NAMES.contains(&text.as_ref())
            || IGNORED_ENDINGS.iter().any(|x| text.ends_with(x))
        {
            continue;
        }
        let path = dir.join(&name);
        if path.is_dir() {
            read_any |= read_dir(&path, data, failures)?;
        } else {
            match read_file(&path, data) {
                Ok(()) => read_any = true,
                Err(e) => failures.push(e),
            }
        }
    }
    Ok(read_any)
}

/// Reads one inventory file as Ansible's plugin chain would.
pub fn read_file(path: &Path, data: &mut Data) -> Result<(), InventoryError> {
    let bytes = std::fs::read(path).map_err(|e| read_err(path, e.to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| read_err(path, "it is not UTF-8 text".into()))?;
    read_text(path, &text, data)
}

/// Reads `text` as the inventory file `path` (whose extension counts).
pub fn read_text(path: &Path, text: &str, data: &mut Data) -> Result<(), InventoryError> {
    if text.starts_with("#!") {
        return Err(InventoryError::Syntax {
            file: path.to_path_buf(),
            line: Some(1),
            why: ParseError::Script,
        });
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut yaml_failure = None;
    if ext.is_empty() || YAML_EXTENSIONS.contains(&ext) {
        // A failed plugin leaves nothing behind for the next one.
        let before = data.clone();
        match yaml::parse(path, text, data) {
            Ok(()) => return Ok(()),
            Err(f) => {
                *data = before;
                yaml_failure = Some(f);
            }
        }
    }
    let before = data.clone();
    match ini::parse(path, text, data) {
        Ok(()) => Ok(()),
        Err(ini_error) => {
            *data = before;
            // Report the error of the format the file was meant to be in.
            match yaml_failure {
                Some(f) if f.structural || !ext.is_empty() => Err(f.error),
                _ => Err(ini_error),
            }
        }
    }
}
