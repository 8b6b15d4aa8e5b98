//! The README and the manual (`docs/`) hold together: every relative link
//! points at a file that exists, every `#anchor` at a heading of its page,
//! and every chapter is in the book's table of contents.

mod common;

use common::root;
use std::path::{Path, PathBuf};

/// The id mdBook (and GitHub) give a heading: lower case, letters, digits,
/// `_` and `-` kept, spaces become `-`, the rest dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// `(target, line)` of every `](target)` link outside code blocks.
fn links(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((after[..end].to_string(), i + 1));
            rest = &after[end..];
        }
    }
    out
}

/// Every broken relative link of `file`, as `file:line: target (why)`.
fn broken(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap();
    let mut out = Vec::new();
    for (target, line) in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, frag) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (target.as_str(), None),
        };
        let resolved: PathBuf = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        let why = if !resolved.exists() {
            Some("no such file".to_string())
        } else if let Some(f) = frag {
            let page = std::fs::read_to_string(&resolved).unwrap_or_default();
            (!anchors(&page).iter().any(|a| a == f)).then(|| format!("no heading #{f}"))
        } else {
            None
        };
        if let Some(why) = why {
            out.push(format!("{}:{line}: {target} ({why})", file.display()));
        }
    }
    out
}

fn pages() -> Vec<PathBuf> {
    let mut pages = vec![
        root().join("README.md"),
        root().join("vault-layout/README.md"),
    ];
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    pages.extend(chapters);
    pages
}

#[test]
fn every_internal_link_of_the_readme_and_the_manual_resolves() {
    let bad: Vec<String> = pages().iter().flat_map(|p| broken(p)).collect();
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn every_chapter_is_in_the_table_of_contents() {
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
    for page in pages().iter().skip(2) {
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        if name == "SUMMARY.md" {
            continue;
        }
        assert!(
            summary.contains(&format!("]({name})")),
            "{name} is not in docs/src/SUMMARY.md"
        );
    }
}

#[test]
fn the_readme_stays_short() {
    let size = std::fs::metadata(root().join("README.md")).unwrap().len();
    assert!(
        size < 10 * 1024,
        "README.md is {size} bytes; the manual is the place for more"
    );
}

#[test]
fn the_checker_sees_a_broken_link_and_a_missing_anchor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.md"), "# A\n\n## Two words\n").unwrap();
    let b = dir.path().join("b.md");
    std::fs::write(
        &b,
        "[ok](a.md#two-words) [gone](c.md) [bad](a.md#three)\n```\n[code](x.md)\n```\n",
    )
    .unwrap();
    let found = broken(&b);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("c.md (no such file)") && found[1].contains("no heading #three"));
}

#[test]
fn the_format_specification_lists_its_sections_in_order() {
    let spec = std::fs::read_to_string(root().join("vault-layout/README.md")).unwrap();
    let mut fenced = false;
    let mut sections = Vec::new();
    for line in spec.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            if let Some(h) = line.strip_prefix("## ") {
                sections.push(h.to_string());
            }
        }
    }
    // In order: 10 < 10a < 10b < 11, 12 < 12a < 12b < 13.
    let key = |h: &str| {
        let n = h.split('.').next().unwrap_or("");
        let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
        (
            digits.parse::<u32>().unwrap_or(u32::MAX),
            n[digits.len()..].to_string(),
        )
    };
    let mut sorted = sections.clone();
    sorted.sort_by_key(|h| key(h));
    assert_eq!(sections, sorted, "sections out of order");
    let toc = &spec[spec.find("Contents:").unwrap()..spec.find("\n## ").unwrap()];
    for h in &sections {
        assert!(
            toc.contains(&format!("#{})", anchor(h))),
            "the table of contents lacks {h:?}"
        );
    }
}
