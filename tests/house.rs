//! The house rules the code keeps, checked on its source: no import cycle
//! between files. A file may use its ancestors' items (a module and its
//! parent work together); any other use is an edge of the file graph, and
//! the graph must have no cycle, so each file can be read knowing only what
//! it imports.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of every `.rs` file under `dir` (`crate` = `root`).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            let mut next = prefix.to_vec();
            next.push(name);
            modules(&p, &next, out);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let mut m = prefix.to_vec();
            if stem != "mod" {
                m.push(stem.to_string());
            }
            out.insert(m, p.display().to_string());
        }
    }
}

/// Every `crate::a::b` or `super::a` path a file names, braces expanded one
/// level (`crate::a::{b, c::d}`), relative to the file's module.
fn paths(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            // The module the path starts from.
            let mut base: Vec<String> = if start == "crate::" {
                vec![]
            } else {
                // The module of `a/b.rs` is [a, b] and of `a/mod.rs` [a];
                // `super` is the module minus its last name.
                let mut b = me.to_vec();
                b.pop();
                b
            };
            let mut rest = &code[from..];
            // Further `super::` steps.
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            let end = rest
                .find(|c: char| {
                    !(c.is_ascii_alphanumeric()
                        || c == '_'
                        || c == ':'
                        || c == '{'
                        || c == '}'
                        || c == ','
                        || c == ' '
                        || c == '\n')
                })
                .unwrap_or(rest.len());
            let seg = &rest[..end];
            let (head, braces) = match (seg.find('{'), seg.find('}')) {
                (Some(o), Some(c)) if o < c => (&seg[..o], Some(&seg[o + 1..c])),
                _ => (seg.split([' ', ',', '\n', '}']).next().unwrap_or(""), None),
            };
            let head: Vec<String> = head
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let mut full = base.clone();
            full.extend(head.clone());
            match braces {
                Some(items) => {
                    for item in items.split(',') {
                        let mut p = full.clone();
                        p.extend(
                            item.trim()
                                .split("::")
                                .filter(|s| !s.is_empty() && *s != "self")
                                .map(str::to_string),
                        );
                        out.push(p);
                    }
                }
                None => out.push(full),
            }
        }
    }
    out
}

/// The longest prefix of `path` that is a module file.
fn resolve(path: &[String], files: &BTreeMap<Vec<String>, String>) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

/// The cycles (strongly connected components of more than one file).
/// `bin`: the binary's files (`main.rs` and `cli/`), else the library's.
fn cycles(root: &Path, bin: bool) -> Vec<Vec<String>> {
    let mut files = BTreeMap::new();
    modules(root, &[], &mut files);
    files.retain(|m, _| matches!(m.first().map(String::as_str), Some("main") | Some("cli")) == bin);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, f) in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Test modules use what they test.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for p in paths(text, m) {
            if let Some(to) = resolve(&p, &files) {
                // A file may use its ancestors (and itself).
                if m.starts_with(&to) {
                    continue;
                }
                edges.entry(m.clone()).or_default().insert(to);
            }
        }
    }
    // Tarjan's strongly connected components.
    struct T<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on: BTreeSet<Vec<String>>,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &Vec<String>) {
        let n = t.index.len();
        t.index.insert(v.clone(), n);
        t.low.insert(v.clone(), n);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        let next: Vec<Vec<String>> = t
            .edges
            .get(v)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for w in &next {
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v.clone(), l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.index[w]);
                t.low.insert(v.clone(), l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                comp.push(w.join("::"));
                if &w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in files.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_import_cycle_between_files_of_the_library_or_the_binary() {
    let src = common::root().join("src");
    let mut found = cycles(&src, false);
    found.extend(cycles(&src, true));
    assert!(
        found.is_empty(),
        "import cycles (each line one cycle's files):\n{}",
        found
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_checker_finds_a_cycle_it_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod x;\nuse super::b::B;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use super::Thing;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::{x::X, Y};\n").unwrap();
    let found = cycles(src, false);
    assert_eq!(found, vec![vec!["a".to_string(), "b".to_string()]]);
}
