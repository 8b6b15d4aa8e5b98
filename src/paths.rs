//! Validation of the names and paths that cross trust boundaries: node names
//! from the inventory, and file paths reported by nodes or read from a vault.
//!
//! Invariant: a path accepted here is absolute, normalized (no `.`/`..`
//! components, no `//`, no trailing `/`) and free of control characters, so it
//! can be used as a tree path in the vault and as a restore target without
//! escaping the recorded location.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PathError {
    #[error("node name {0:?} is not allowed: use letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadNodeName(String),
    #[error("path {0:?} is not allowed: {1}")]
    BadPath(String, &'static str),
}

/// Always a plain failure: what went wrong is in the message.
impl crate::error::Classify for PathError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Failed
    }
}

/// Accepts node names that are safe as a directory name and as an ssh
/// destination: letters and digits of any script (`příbor`), `.`, `_` and
/// `-`, starting with a letter or digit, at most 253 bytes.
pub fn check_node_name(name: &str) -> Result<(), PathError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.starts_with(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PathError::BadNodeName(name.to_string()))
    }
}

/// Accepts an absolute, normalized path without control characters.
pub fn check_path(path: &str) -> Result<(), PathError> {
    let bad = |why| Err(PathError::BadPath(path.to_string(), why));
    if !path.starts_with('/') {
        return bad("it must be absolute");
    }
    if path.len() > 4096 {
        return bad("it is longer than 4096 bytes");
    }
    if path.chars().any(|c| c.is_control()) {
        return bad("it contains a control character");
    }
    if path == "/" {
        return bad("the root directory cannot be recorded");
    }
    if path.ends_with('/') {
        return bad("it ends with '/'");
    }
    for comp in path[1..].split('/') {
        match comp {
            "" => return bad("it contains '//'"),
            "." | ".." => return bad("it contains a '.' or '..' component"),
            c if c.eq_ignore_ascii_case(".git") || c.eq_ignore_ascii_case("git~1") => {
                return bad("a '.git' component cannot be stored in a git repository")
            }
            _ => {}
        }
    }
    Ok(())
}

/// Accepts a symlink target: any non-empty text without control characters.
/// Targets are recorded verbatim and never followed by a restore.
pub fn check_link_target(target: &str) -> Result<(), PathError> {
    if target.is_empty() || target == "-" || target.chars().any(|c| c.is_control()) {
        return Err(PathError::BadPath(
            target.to_string(),
            "a symlink target must be non-empty, not '-', and free of control characters",
        ));
    }
    Ok(())
}

/// Matches `text` against a glob where `*` matches any run of characters
/// other than `/` and `?` one such character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn rec(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != b'/')
                .any(|i| rec(&p[1..], &t[i..])),
            Some(b'?') => !t.is_empty() && t[0] != b'/' && rec(&p[1..], &t[1..]),
            Some(&c) => !t.is_empty() && t[0] == c && rec(&p[1..], &t[1..]),
        }
    }
    rec(pattern.as_bytes(), text.as_bytes())
}

/// True when `path` is excluded by `pattern`: it matches, or lies below a
/// directory that matches.
pub fn excluded_by(pattern: &str, path: &str) -> bool {
    if glob_match(pattern, path) {
        return true;
    }
    let mut prefix = path;
    while let Some(i) = prefix.rfind('/') {
        prefix = &prefix[..i];
        if !prefix.is_empty() && glob_match(pattern, prefix) {
            return true;
        }
    }
    false
}

/// Splits `/a/b/c` into its parent `/a/b` (or `/` for a top-level entry).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for ok in [
            "node1",
            "k8s-master-01",
            "a.b_c",
            "10.0.0.1",
            "příbor",
            "ä",
            "узел1",
        ] {
            assert!(check_node_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            ".hidden",
            "a b",
            "a;b",
            "a/b",
            "a$b",
            "a\u{202e}b",
            "a\u{200b}b",
            "\u{301}a",
        ] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        for ok in ["/etc/etcd.env", "/etc/kubernetes/ssl/ca.crt", "/a b/c"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "etc/x",
            "/",
            "/etc/",
            "/etc//x",
            "/etc/../x",
            "/etc/./x",
            "/a\tb",
            "/a\nb",
            "/x/.git/y",
            "/x/.GIT",
            "/x/Git~1/y",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "/etc/kubernetes/*.conf",
            "/etc/kubernetes/admin.conf"
        ));
        assert!(!glob_match(
            "/etc/kubernetes/*.conf",
            "/etc/kubernetes/ssl/x.conf"
        ));
        assert!(glob_match(
            "/etc/ssl/etcd/ssl/*-key.pem",
            "/etc/ssl/etcd/ssl/ca-key.pem"
        ));
        assert!(glob_match("/a/?", "/a/b"));
        assert!(!glob_match("/a/?", "/a/bc"));
        assert!(excluded_by(
            "/etc/kubernetes/ssl",
            "/etc/kubernetes/ssl/ca.key"
        ));
        assert!(!excluded_by("/etc/kubernetes/ssl", "/etc/kubernetes/ssl2"));
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/etc/etcd.env"), "/etc");
        assert_eq!(parent("/etc"), "/");
    }
}
