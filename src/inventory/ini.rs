//! Ansible's INI inventory format, read as its `ini` plugin reads it:
//! `[group]`, `[group:children]` and `[group:vars]` sections (in any order,
//! a group named before it is defined), host lines split like a shell
//! (`shlex.rs`) with `host:port` and ranges, inline values read as Python
//! literals (`literal.rs`, also for `:vars` lines, whose value is the rest
//! of the line), and whole-line `#`/`;` comments.

use super::data::{Data, Origin};
use super::parse_error::ParseError;
use super::{address, literal, range, shlex, InventoryError};
use std::path::Path;

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Children,
    Vars,
}

/// A group named in `[x:children]` or `[x:vars]` before it was defined.
struct Pending {
    name: String,
    line: usize,
    children: bool,
    parents: Vec<String>,
}

pub fn parse(file: &Path, text: &str, data: &mut Data) -> Result<(), InventoryError> {
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    let mut pending: Vec<Pending> = Vec::new();
    for (i, raw) in splitlines(text).into_iter().enumerate() {
        let at = Origin {
            file: file.to_path_buf(),
            line: Some(i + 1),
        };
        let err = |why: ParseError| InventoryError::Syntax {
            file: file.to_path_buf(),
            line: Some(i + 1),
            why,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((name, kind)) = section(line) {
            state = match kind.unwrap_or("hosts") {
                "hosts" => State::Hosts,
                "children" => State::Children,
                "vars" => State::Vars,
                other => {
                    return Err(err(ParseError::SectionType {
                        group: name.to_string(),
                        kind: other.to_string(),
                    }))
                }
            };
            if !data.has_group(name) {
                if state == State::Vars && !pending.iter().any(|p| p.name == name) {
                    pending.push(Pending {
                        name: name.to_string(),
                        line: i + 1,
                        children: false,
                        parents: Vec::new(),
                    });
                }
                data.add_group(name).map_err(&err)?;
            }
            if state != State::Vars {
                resolve(name, &mut pending, data).map_err(&err)?;
            }
            group = name.to_string();
            continue;
        }
        if line.starts_with('[') && (line.ends_with(']') || !bracketed_host(line)) {
            return Err(err(ParseError::SectionHeader {
                line: line.to_string(),
            }));
        }
        match state {
            State::Hosts => host_line(line, &group, &at, data).map_err(err)?,
            State::Children => {
                let child = child_name(line).ok_or_else(|| {
                    err(ParseError::ChildLine {
                        line: line.to_string(),
                        group: group.clone(),
                    })
                })?;
                if data.has_group(child) {
                    data.add_child(&group, child).map_err(&err)?;
                } else {
                    match pending.iter_mut().find(|p| p.name == child) {
                        Some(p) => p.parents.push(group.clone()),
                        None => pending.push(Pending {
                            name: child.to_string(),
                            line: i + 1,
                            children: true,
                            parents: vec![group.clone()],
                        }),
                    }
                }
            }
            State::Vars => {
                let (k, v) = line.split_once('=').ok_or_else(|| {
                    err(ParseError::VarsLine {
                        line: line.to_string(),
                        group: group.clone(),
                    })
                })?;
                data.set_group_var(&group, k.trim(), literal::value(v.trim()), &at)
                    .map_err(&err)?;
            }
        }
    }
    if let Some(p) = pending.first() {
        let why = if p.children {
            let parent = p.parents.last().map(String::as_str).unwrap_or("?");
            ParseError::UndefinedChild {
                parent: parent.to_string(),
                child: p.name.clone(),
            }
        } else {
            ParseError::UndefinedVarsGroup {
                group: p.name.clone(),
            }
        };
        return Err(InventoryError::Syntax {
            file: file.to_path_buf(),
            line: Some(p.line),
            why,
        });
    }
    Ok(())
}

/// A group defined now: its pending `[x:children]` mentions take effect,
/// a pending `[x:vars]` is satisfied (Ansible's `_add_pending_children`).
fn resolve(name: &str, pending: &mut Vec<Pending>, data: &mut Data) -> Result<(), ParseError> {
    let Some(at) = pending.iter().position(|p| p.name == name) else {
        return Ok(());
    };
    let p = pending.remove(at);
    if p.children {
        for parent in &p.parents {
            data.add_child(parent, name)?;
            if pending.iter().any(|q| q.name == *parent && q.children) {
                resolve(parent, pending, data)?;
            }
        }
    }
    Ok(())
}

/// `[name]` or `[name:kind]`, with an optional `#` comment after it.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let end = rest
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    let (name, mut rest) = rest.split_at(end);
    let mut kind = None;
    if let Some(r) = rest.strip_prefix(':') {
        let k = r
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(r.len());
        if k == 0 {
            return None;
        }
        kind = Some(&r[..k]);
        rest = &r[k..];
    }
    let rest = rest.strip_prefix(']')?.trim_start();
    (rest.is_empty() || rest.starts_with('#')).then_some((name, kind))
}

/// A group name on a `[x:children]` line, with an optional `#` comment.
fn child_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(line.len());
    let rest = line[end..].trim_start();
    (end > 0 && (rest.is_empty() || rest.starts_with('#'))).then_some(&line[..end])
}

/// A host line may start with `[`: `[address]:port` or `[1:3].example`.
fn bracketed_host(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    address::parse_address(first).is_some()
}

/// `pattern[:port] [name=value ...]`: adds the hosts to `group`.
fn host_line(line: &str, group: &str, at: &Origin, data: &mut Data) -> Result<(), ParseError> {
    let first = line.split_whitespace().next().unwrap_or(line);
    let tokens = shlex::split(line).map_err(|e| {
        let host = first.to_string();
        match e {
            shlex::Error::Quote => ParseError::UnclosedQuote { host },
            shlex::Error::Escape => ParseError::TrailingBackslash { host },
        }
    })?;
    let Some(pattern) = tokens.first() else {
        return Ok(());
    };
    let (hostpattern, port) = address::split_port(pattern);
    if pattern.trim().ends_with(':') && port.is_none() {
        return Err(ParseError::EmptyPort {
            pattern: pattern.clone(),
        });
    }
    let hosts = range::expand(&hostpattern)?;
    let mut vars = Vec::new();
    for t in &tokens[1..] {
        let (k, v) = t.split_once('=').ok_or_else(|| ParseError::HostVarLine {
            var: t.clone(),
            pattern: pattern.clone(),
        })?;
        vars.push((k, literal::value(v)));
    }
    if hosts.iter().any(|h| h.trim() == "---") {
        return Err(ParseError::YamlInIni);
    }
    for h in &hosts {
        data.add_host(h, group, port, at);
        for (k, v) in &vars {
            data.set_host_var(h, k, v.clone(), at);
        }
    }
    Ok(())
}

/// Python's `str.splitlines`: every line break Python knows.
fn splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        ) {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
            if c == '\r' && chars.peek().map(|(_, n)| *n) == Some('\n') {
                chars.next();
                start += 1;
            }
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_headers() {
        assert_eq!(section("[kube_node]"), Some(("kube_node", None)));
        assert_eq!(
            section("[k8s_cluster:children]  # note"),
            Some(("k8s_cluster", Some("children")))
        );
        assert_eq!(section("[all:vars]"), Some(("all", Some("vars"))));
        assert_eq!(section("[kube-master]"), Some(("kube-master", None)));
        for bad in ["[kube node]", "[a] ; c", "[a:]", "[]", "[a", "[a:b:c]"] {
            assert_eq!(section(bad), None, "{bad}");
        }
        assert_eq!(child_name("kube_node # c"), Some("kube_node"));
        assert_eq!(child_name("a b"), None);
    }

    #[test]
    fn lines_split_like_python() {
        assert_eq!(splitlines("a\r\nb\rc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\n\nb\n"), ["a", "", "b"]);
    }
}
