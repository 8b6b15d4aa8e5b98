//! Refusing host names, users and addresses that could be taken for ssh
//! options or shell syntax, before anything connects anywhere: a value that
//! starts with `-`, holds blanks, control characters or shell
//! metacharacters, or is a Jinja template (which sprayvault does not
//! evaluate, beyond the host's own name: see `template.rs`). Host names also become directory names in the vault.

use super::host_error::{HostError, Rule};
use std::net::Ipv6Addr;

/// An error when `value` is empty, a template, starts with `-`, or holds a
/// character outside `allowed`; `rule` says what is allowed.
fn common(
    what: &'static str,
    value: &str,
    allowed: impl Fn(char) -> bool,
    rule: Rule,
) -> Result<(), HostError> {
    if value.is_empty() {
        return Err(HostError::Empty { what, rule });
    }
    if value.contains("{{") || value.contains("{%") || value.contains("{#") {
        return Err(HostError::Template {
            what,
            value: value.to_string(),
        });
    }
    if value.starts_with('-') {
        return Err(HostError::Dash {
            what,
            value: value.to_string(),
            rule,
        });
    }
    match value.chars().find(|c| !allowed(*c)) {
        None => Ok(()),
        Some(found) => Err(HostError::Holds {
            what,
            value: value.to_string(),
            found,
            rule,
        }),
    }
}

/// Host names: letters and digits of any script (`příbor`, as Ansible
/// takes them), `.`, `_` and `-`, starting with a letter or digit (the
/// vault's rule for node directories), at most 253 bytes.
pub fn host_name(name: &str) -> Result<(), HostError> {
    if name.parse::<Ipv6Addr>().is_ok() {
        return Err(HostError::Ipv6Name {
            name: name.to_string(),
        });
    }
    let ok = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
    common("host name", name, ok, Rule::HostName)?;
    if !name.starts_with(char::is_alphanumeric) {
        return Err(HostError::NameStart {
            name: name.to_string(),
        });
    }
    if name.len() > 253 {
        return Err(HostError::NameTooLong {
            start: name.chars().take(20).collect(),
        });
    }
    Ok(())
}

/// `ansible_user` (named `what`): letters, digits, `.`, `_`, `-`, `@`, `+`.
pub fn user(what: &'static str, u: &str) -> Result<(), HostError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
    common(what, u, ok, Rule::User)
}

/// `ansible_host` (named `what`): a host name or IPv4 address, or an IPv6
/// address (optionally with a `%zone`).
pub fn address(what: &'static str, a: &str) -> Result<(), HostError> {
    let (ip, zone) = a.split_once('%').unwrap_or((a, ""));
    let zone_ok = zone
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ip.contains(':') && ip.parse::<Ipv6Addr>().is_ok() && zone_ok {
        return Ok(());
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    common(what, a, ok, Rule::Address)?;
    if a.starts_with('.') {
        return Err(HostError::AddressDot {
            what,
            value: a.to_string(),
        });
    }
    Ok(())
}

/// `ansible_ssh_private_key_file` (named `what`): any path that is not an
/// option and has no control characters (ssh gets it as one argument).
pub fn key_file(what: &'static str, k: &str) -> Result<(), HostError> {
    common(what, k, |c| !c.is_control(), Rule::KeyFile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in [
            "node1",
            "k8s-master-01",
            "a.b_c",
            "10.0.0.1",
            "gpu-a.example.com",
            "příbor",
            "ä",
            "узел-1",
        ] {
            assert!(host_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            ".hidden",
            "_x",
            "a b",
            "a;b",
            "a/b",
            "a$b",
            "a\u{202e}b",
            "a\u{a0}b",
            "\u{301}a",
            "a\tb",
            "n:22",
            "fe80::1",
            "{{ x }}",
            "a`b`",
            "a(b)",
        ] {
            assert!(host_name(bad).is_err(), "{bad}");
        }
        assert!(host_name("fe80::1")
            .unwrap_err()
            .to_string()
            .contains("IPv6"));
        assert!(host_name("a;b")
            .unwrap_err()
            .to_string()
            .contains("shell metacharacter ';'"));
    }

    #[test]
    fn users_addresses_keys() {
        for ok in [
            "ubuntu",
            "core",
            "first.last",
            "svc-deploy",
            "user@corp.example",
            "1000",
        ] {
            assert!(user("ansible_user", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-l",
            "root;reboot",
            "a b",
            "$(id)",
            "r`id`",
            "x\u{7}",
            "a'b",
            "a\"b",
            "a|b",
            "{{ u }}",
        ] {
            assert!(user("ansible_user", bad).is_err(), "{bad}");
        }
        for ok in [
            "10.0.0.1",
            "node1.example.com",
            "fe80::1",
            "::1",
            "fe80::1%eth0",
            "2001:db8::5",
        ] {
            assert!(address("ansible_host", ok).is_ok(), "{ok}");
        }
        for bad in [
            "-oProxyCommand=x",
            "a b",
            "$(id)",
            ".x",
            "host;id",
            "[::1]",
            "a:b",
            "{{ ip }}",
            "",
        ] {
            assert!(address("ansible_host", bad).is_err(), "{bad}");
        }
        assert!(key_file("k", "~/.ssh/id_ed25519").is_ok());
        assert!(key_file("k", "keys/node 1.pem").is_ok());
        assert!(key_file("k", "-i/x").is_err());
        assert!(key_file("k", "a\nb").is_err());
    }
}
