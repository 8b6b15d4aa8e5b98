//! Ansible's INI inventory format: `[group]`, `[group:children]`,
//! `[group:vars]`, host lines with inline variables (shell-style quoting),
//! `host:port`, ranges, and `#`/`;` comments.

use super::raw::Raw;
use super::{range, InventoryError};
use serde_json::Value;
use std::path::Path;

enum Section {
    Hosts(String),
    Children(String),
    Vars(String),
}

/// Splits a line the way Python's `shlex.split(line, comments=True)` does.
fn shlex(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_token = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            '#' if !in_token => break,
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

/// Values of inline host variables are Python literals in Ansible: numbers
/// and True/False become typed values, everything else a string.
fn literal(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    match v {
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        "None" => Value::Null,
        _ => Value::String(v.to_string()),
    }
}

/// Splits `host:port` (the port after the last `]`, so ranges stay intact).
pub(super) fn split_port(token: &str) -> Result<(String, Option<u16>), String> {
    let tail_start = token.rfind(']').map(|i| i + 1).unwrap_or(0);
    match token[tail_start..].rfind(':') {
        Some(i) => {
            let at = tail_start + i;
            let port = &token[at + 1..];
            let port: u16 = port.parse().map_err(|_| {
                format!("port {port:?} of host {token:?} is not a number from 1 to 65535")
            })?;
            Ok((token[..at].to_string(), Some(port)))
        }
        None => Ok((token.to_string(), None)),
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

pub fn parse(path: &Path, text: &str, raw: &mut Raw) -> Result<(), InventoryError> {
    let mut section = Section::Hosts("ungrouped".to_string());
    for (i, line) in text.lines().enumerate() {
        let err = |why: String| InventoryError::Syntax {
            file: path.to_path_buf(),
            line: i + 1,
            why,
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            let Some(inner) = t
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .filter(|(_, rest)| {
                    rest.trim().is_empty()
                        || rest.trim().starts_with('#')
                        || rest.trim().starts_with(';')
                })
                .map(|(inner, _)| inner)
            else {
                return Err(err(format!("section header {t:?} is not of the form [group], [group:children] or [group:vars]")));
            };
            let (name, kind) = inner.split_once(':').unwrap_or((inner, "hosts"));
            super::check_group_name(name).map_err(|why| err(why))?;
            raw.group(name);
            section = match kind {
                "hosts" => Section::Hosts(name.into()),
                "children" => Section::Children(name.into()),
                "vars" => Section::Vars(name.into()),
                k => {
                    return Err(err(format!(
                        "unknown section type {k:?} in [{inner}]: use :children or :vars"
                    )))
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let tokens =
                    shlex(t).map_err(|why| err(format!("{why} in {t:?}; close the quote")))?;
                let Some(first) = tokens.first() else {
                    continue;
                };
                let (pattern, port) = split_port(first).map_err(&err)?;
                let mut vars = serde_json::Map::new();
                if let Some(p) = port {
                    vars.insert("ansible_port".into(), Value::from(p));
                }
                for kv in &tokens[1..] {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| err(format!("host variable {kv:?} is not key=value")))?;
                    if k.is_empty() {
                        return Err(err(format!("host variable {kv:?} has no name")));
                    }
                    vars.insert(k.to_string(), literal(v));
                }
                for host in range::expand(&pattern).map_err(&err)? {
                    super::check_host_name(&host).map_err(|why| err(why))?;
                    raw.add_host(group, &host, vars.clone());
                }
            }
            Section::Children(group) => {
                let tokens = shlex(t).map_err(|why| err(why))?;
                let Some(child) = tokens.first() else {
                    continue;
                };
                super::check_group_name(child).map_err(|why| err(why))?;
                raw.add_child(group, child);
            }
            Section::Vars(group) => {
                let (k, v) = t
                    .split_once('=')
                    .ok_or_else(|| err(format!("{t:?} in [{group}:vars] is not key=value")))?;
                raw.group(group)
                    .vars
                    .insert(k.trim().to_string(), Value::String(unquote(v)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_like_python() {
        assert_eq!(
            shlex("a b='c d' e=\"f\\\"g\" # note").unwrap(),
            vec!["a", "b=c d", "e=f\"g"]
        );
        assert_eq!(shlex("x=a#b").unwrap(), vec!["x=a#b"]);
        assert!(shlex("a b='c").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(split_port("n1:2222").unwrap(), ("n1".into(), Some(2222)));
        assert_eq!(split_port("n[1:3]").unwrap(), ("n[1:3]".into(), None));
        assert_eq!(
            split_port("n[1:3]:22").unwrap(),
            ("n[1:3]".into(), Some(22))
        );
        assert!(split_port("n1:x").is_err());
    }
}
