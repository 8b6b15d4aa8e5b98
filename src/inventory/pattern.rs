//! Ansible host patterns, for `--limit`, evaluated as Ansible's
//! InventoryManager does: terms separated by `,` (or by `:` when the whole
//! is not one host name), each a host name, a group name (all its hosts,
//! through children too), `all` or `*`, or a shell glob (`node*`,
//! `kube_?ode`, `node[12]x`) matching group names and host names. `!term`
//! removes hosts and `&term` keeps only hosts in both; plain terms come
//! first, then `&`, then `!`, whatever the order written.
//!
//! Unlike Ansible, which warns and goes on, a term that matches no group
//! and no host is an error naming it, and so is a pattern that selects no
//! host. Regular expressions (`~re`) and subscripts (`group[0]`) are
//! refused.

use super::{address, Inventory, InventoryError};
use std::collections::BTreeSet;

/// The names of the hosts `pattern` selects (usable or not), sorted.
pub fn select(inv: &Inventory, pattern: &str) -> Result<BTreeSet<String>, InventoryError> {
    let terms = split(pattern);
    let (mut plain, mut and, mut not) = (Vec::new(), Vec::new(), Vec::new());
    for t in &terms {
        match t.chars().next() {
            Some('!') => not.push(t.as_str()),
            Some('&') => and.push(t.as_str()),
            _ => plain.push(t.as_str()),
        }
    }
    if plain.is_empty() {
        plain.push("all");
    }
    let all = all_hosts(inv);
    let mut chosen: BTreeSet<&str> = BTreeSet::new();
    for t in plain.into_iter().chain(and).chain(not) {
        if let Some(name) = all.get(t) {
            chosen.insert(name);
            continue;
        }
        let found = matching(inv, t)?;
        match t.chars().next() {
            Some('!') => chosen.retain(|h| !found.contains(h)),
            Some('&') => chosen.retain(|h| found.contains(h)),
            _ => chosen.extend(found),
        }
    }
    if chosen.is_empty() {
        return Err(InventoryError::NoMatch {
            pattern: pattern.to_string(),
        });
    }
    Ok(chosen.into_iter().map(str::to_string).collect())
}

/// Every host of the inventory, usable or not.
fn all_hosts(inv: &Inventory) -> BTreeSet<&str> {
    inv.hosts
        .keys()
        .chain(inv.unusable.keys())
        .map(String::as_str)
        .collect()
}

/// Ansible's `split_host_pattern`.
fn split(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if address::parse_address(pattern).is_some() {
        vec![pattern.to_string()]
    } else {
        // `a:b:!c`: runs of anything but blanks, `:`, `[` and `]`, or
        // complete `[...]` groups.
        let chars: Vec<char> = pattern.chars().collect();
        let (mut out, mut cur, mut i) = (Vec::new(), String::new(), 0);
        while i < chars.len() {
            let c = chars[i];
            let close = (c == '[')
                .then(|| chars[i..].iter().position(|x| *x == ']'))
                .flatten();
            if let Some(len) = close {
                cur.extend(&chars[i..=i + len]);
                i += len + 1;
                continue;
            }
            if c.is_whitespace() || matches!(c, ':' | '[' | ']') {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
            i += 1;
        }
        out.push(cur);
        out
    };
    parts
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The hosts one term (without its `!`/`&`) stands for.
fn matching<'a>(inv: &'a Inventory, term: &str) -> Result<BTreeSet<&'a str>, InventoryError> {
    let expr = term.trim_start_matches(['!', '&']);
    let refuse = |why: &str| InventoryError::Pattern {
        pattern: term.to_string(),
        why: why.to_string(),
    };
    if expr.starts_with('~') {
        return Err(refuse(
            "regular expressions are not supported; use names, groups or * globs",
        ));
    }
    if has_subscript(expr) {
        return Err(refuse(
            "subscripts like group[0] are not supported; name the hosts",
        ));
    }
    let mut out = BTreeSet::new();
    let mut matched_group = false;
    for (group, members) in &inv.groups {
        if fnmatch(expr, group) {
            matched_group = true;
            out.extend(members.iter().map(String::as_str));
        }
    }
    if !matched_group || expr.contains(['.', '?', '*', '[']) {
        out.extend(all_hosts(inv).into_iter().filter(|h| fnmatch(expr, h)));
    }
    if out.is_empty() && !matched_group {
        return Err(InventoryError::NoMatch {
            pattern: term.to_string(),
        });
    }
    Ok(out)
}

/// Ansible's subscript syntax: `x[3]`, `x[-1]`, `x[1:2]`, `x[1:]`, `x[1-2]`.
fn has_subscript(expr: &str) -> bool {
    let Some(body) = expr.strip_suffix(']') else {
        return false;
    };
    let Some(open) = body.rfind('[') else {
        return false;
    };
    let inner = &body[open + 1..];
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    open > 0
        && (digits(inner.strip_prefix('-').unwrap_or(inner))
            || inner
                .split_once([':', '-'])
                .is_some_and(|(a, b)| digits(a) && (b.is_empty() || digits(b))))
}

enum Tok {
    Star,
    Any,
    Set(bool, Vec<(char, char)>),
    Lit(char),
}

/// Python's `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Any),
            '[' => {
                let mut j = i;
                if p.get(j) == Some(&'!') {
                    j += 1;
                }
                if p.get(j) == Some(&']') {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    toks.push(Tok::Lit('['));
                    continue;
                }
                let mut stuff = &p[i..j];
                i = j + 1;
                let negated = stuff.first() == Some(&'!');
                if negated {
                    stuff = &stuff[1..];
                    if stuff.is_empty() {
                        toks.push(Tok::Any);
                        continue;
                    }
                }
                let mut items = Vec::new();
                let mut k = 0;
                while k < stuff.len() {
                    if k + 2 < stuff.len() && stuff[k + 1] == '-' {
                        items.push((stuff[k], stuff[k + 2]));
                        k += 3;
                    } else {
                        items.push((stuff[k], stuff[k]));
                        k += 1;
                    }
                }
                toks.push(Tok::Set(negated, items));
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    let n: Vec<char> = name.chars().collect();
    fn go(t: &[Tok], n: &[char]) -> bool {
        match t.split_first() {
            None => n.is_empty(),
            Some((Tok::Star, rest)) => (0..=n.len()).any(|k| go(rest, &n[k..])),
            Some((tok, rest)) => {
                let Some((c, tail)) = n.split_first() else {
                    return false;
                };
                let ok = match tok {
                    Tok::Any => true,
                    Tok::Lit(l) => l == c,
                    Tok::Set(neg, items) => items.iter().any(|(a, b)| a <= c && c <= b) != *neg,
                    Tok::Star => unreachable!(),
                };
                ok && go(rest, tail)
            }
        }
    }
    go(&toks, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_like_ansible() {
        assert_eq!(split("a,b , c"), ["a", "b", "c"]);
        assert_eq!(
            split("etcd:!kube_node:&k8s"),
            ["etcd", "!kube_node", "&k8s"]
        );
        assert_eq!(split("node1"), ["node1"]);
        assert_eq!(split("web[1:3]:db"), ["web[1:3]", "db"]);
        assert_eq!(split("node1:22"), ["node1:22"]);
    }

    #[test]
    fn globs_like_fnmatch() {
        assert!(fnmatch("node*", "node1"));
        assert!(fnmatch("*", "all"));
        assert!(fnmatch("kube_?ode", "kube_node"));
        assert!(fnmatch("node[12]", "node2"));
        assert!(!fnmatch("node[!12]", "node2"));
        assert!(fnmatch("node[0-9]x", "node5x"));
        assert!(fnmatch("a[b", "a[b"));
        assert!(!fnmatch("node", "node1"));
        assert!(fnmatch("*.example.com", "a.b.example.com"));
    }

    #[test]
    fn subscripts_are_seen() {
        for s in ["g[0]", "g[-1]", "g[1:2]", "g[1:]", "g[1-2]"] {
            assert!(has_subscript(s), "{s}");
        }
        for s in ["g", "node[a:c]", "[0]", "g[x]"] {
            assert!(!has_subscript(s), "{s}");
        }
    }
}
