//! Host patterns with an optional port, as Ansible's `parse_address` splits
//! them: `node1:2222`, `node[01:10]:22`, `[host]:22`. The port is split off
//! only when what remains is a valid host name (DNS-like labels of word
//! characters, `-` and ranges), IPv4 or IPv6 address; otherwise Ansible keeps
//! the whole text as the host name, and so does this.

/// `(host pattern, port)` as Ansible's `_expand_hostpattern` gives them.
pub fn split_port(pattern: &str) -> (String, Option<u64>) {
    parse_address(pattern).unwrap_or_else(|| (pattern.to_string(), None))
}

/// `None` where Ansible's `parse_address(.., allow_ranges=True)` raises.
/// Also used by `--limit` parsing to tell `a:b` lists from single names.
pub fn parse_address(text: &str) -> Option<(String, Option<u64>)> {
    let mut address = text;
    let mut port = None;
    // `[anything]:port`, then `host:port`: each applies to what is left.
    if let Some((inner, p)) = bracketed_hostport(address) {
        address = inner;
        port = Some(p);
    }
    if let Some((head, p)) = hostport(address) {
        address = head;
        port = Some(p);
    }
    if is_hostname(address) || is_ipv6(address) {
        Some((address.to_string(), port))
    } else {
        None
    }
}

/// The digits at the end of `s` after a `:`, as (text before the `:`, port).
fn trailing_port(s: &str) -> Option<(&str, u64)> {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    // All digits (a host named `10`): no room for a `:` before them.
    let colon = s.len().checked_sub(digits + 1)?;
    if s.as_bytes().get(colon) != Some(&b':') {
        return None;
    }
    Some((&s[..colon], s[colon + 1..].parse().ok()?))
}

fn bracketed_hostport(s: &str) -> Option<(&str, u64)> {
    let (head, port) = trailing_port(s)?;
    let inner = head.strip_prefix('[')?.strip_suffix(']')?;
    (!inner.is_empty()).then_some((inner, port))
}

fn hostport(s: &str) -> Option<(&str, u64)> {
    let (head, port) = trailing_port(s)?;
    // Outside complete `[...]` groups the head has no `:`, `[` or `]`.
    let mut rest = head;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            rest = &rest[rest.find(']')? + 1..];
        } else if c == ':' || c == ']' {
            return None;
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    Some((head, port))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Length of a host range (`[1:3]`, `[a:c]`, `[01:10:2]`) at the start of `s`.
fn range_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('[')?;
    let end = body.find(']')?;
    let parts: Vec<&str> = body[..end].split(':').collect();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let letter = |p: &str| p.len() == 1 && p.chars().all(|c| c.is_ascii_alphabetic());
    let ok = (2..=3).contains(&parts.len())
        && ((digits(parts[0]) && digits(parts[1])) || (letter(parts[0]) && letter(parts[1])))
        && parts.get(2).is_none_or(|p| digits(p));
    ok.then_some(end + 2)
}

/// Ansible's `hostname` pattern: dot-separated labels, each starting with a
/// word character or range, then word characters, `-` or ranges, and not
/// ending with `-` or `_`.
pub fn is_hostname(s: &str) -> bool {
    s.split('.').all(|label| {
        let mut rest = label;
        let mut first = true;
        let mut last = None;
        while let Some(c) = rest.chars().next() {
            if c == '[' {
                let Some(n) = range_len(rest) else {
                    return false;
                };
                rest = &rest[n..];
                last = Some(']');
            } else if is_word(c) || (c == '-' && !first) {
                rest = &rest[c.len_utf8()..];
                last = Some(c);
            } else {
                return false;
            }
            first = false;
        }
        last.is_some_and(|c| c != '-' && c != '_')
    })
}

fn is_ipv6(s: &str) -> bool {
    s.contains(':') && s.parse::<std::net::Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_split_like_ansible() {
        assert_eq!(split_port("n1:2222"), ("n1".into(), Some(2222)));
        assert_eq!(split_port("n1"), ("n1".into(), None));
        assert_eq!(split_port("n[1:3]"), ("n[1:3]".into(), None));
        assert_eq!(split_port("n[01:03]:22"), ("n[01:03]".into(), Some(22)));
        assert_eq!(split_port("10.0.0.1:22"), ("10.0.0.1".into(), Some(22)));
        assert_eq!(split_port("[fe80::1]:22"), ("fe80::1".into(), Some(22)));
        assert_eq!(split_port("[node1]:22"), ("node1".into(), Some(22)));
        // Not a valid host name once the port is off: all of it is the name.
        assert_eq!(split_port("node_:22"), ("node_:22".into(), None));
        assert_eq!(split_port("n1:http"), ("n1:http".into(), None));
        assert_eq!(split_port("n1:"), ("n1:".into(), None));
    }

    /// Found by the `inventory_ini` fuzz target: a name made only of
    /// digits (`10`) put the `:` before the port at index -1, and debug
    /// builds panicked with "attempt to subtract with overflow".
    #[test]
    fn regression_all_digit_name_underflows() {
        for name in ["1", "10", "8080"] {
            assert_eq!(split_port(name), (name.to_string(), None));
            assert_eq!(parse_address(name), Some((name.to_string(), None)));
        }
        assert_eq!(split_port(":22"), (":22".into(), None));
    }

    #[test]
    fn host_names() {
        for ok in [
            "node1",
            "a.b-c.d",
            "_x",
            "node[01:10]",
            "gpu-[a:c].x",
            "w[1:9:4]",
            "10.0.0.1",
        ] {
            assert!(is_hostname(ok), "{ok}");
        }
        for bad in [
            "-x", "x-", "x_", "a..b", "", "a b", "n[1:", "x:1", "n[ab:c]",
        ] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }
}
