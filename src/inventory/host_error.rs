//! Why sprayvault cannot use a host: its name, or a connection variable
//! that could be taken for an ssh option or shell syntax, is a template it
//! does not evaluate, or has the wrong type (`check.rs`, `host.rs`). An
//! `InventoryError::Host` holds one, with the host and where the value was
//! set. `what` names the variable (`ansible_host`, ...) or `host name`.
//! Tests and the Ansible corpus compare the texts; change one only together
//! with those.

use serde_json::Value;

/// What is wrong with a host's name or a connection variable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HostError {
    #[error("{what} is empty; {rule}")]
    Empty { what: &'static str, rule: Rule },
    #[error("{what} {value:?} is a Jinja template, which sprayvault does not evaluate (beyond {{{{ inventory_hostname }}}} and {{{{ inventory_hostname_short }}}}); write the value itself")]
    Template { what: &'static str, value: String },
    #[error("{what} {value:?} starts with '-', which ssh would take for an option; {rule}")]
    Dash {
        what: &'static str,
        value: String,
        rule: Rule,
    },
    /// `found`: the first character that `rule` does not allow.
    #[error("{what} {value:?} holds {}; {rule}", shown(.found))]
    Holds {
        what: &'static str,
        value: String,
        found: char,
        rule: Rule,
    },
    #[error("host name {name:?} is an IPv6 address; name the host and set ansible_host={name}")]
    Ipv6Name { name: String },
    #[error(
        "host name {name:?} does not start with a letter or digit; {}",
        Rule::HostName
    )]
    NameStart { name: String },
    /// `start`: the name's first 20 characters.
    #[error("host name {start:?}... is longer than 253 bytes; shorten it")]
    NameTooLong { start: String },
    #[error("{what} {value:?} starts with '.'; {}", Rule::Address)]
    AddressDot { what: &'static str, value: String },
    #[error("{what} is {value}, where text belongs")]
    NotText { what: &'static str, value: Value },
    #[error("{what} {value:?} is a Jinja template, which sprayvault does not evaluate; write the port number")]
    PortTemplate { what: &'static str, value: String },
    #[error("{what} {value} is not a port number (1 to 65535)")]
    BadPort { what: &'static str, value: Value },
    #[error("{what} {value} is not a boolean; it is a Jinja template, which sprayvault does not evaluate; write true or false")]
    BooleanTemplate { what: &'static str, value: Value },
    #[error("{what} {value} is not a boolean; write true or false (or yes/no, on/off, 1/0)")]
    NotBoolean { what: &'static str, value: Value },
}

/// What a host name, user, address or key file may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    #[error("host names may hold only letters, digits, '.', '_' and '-', and start with a letter or digit")]
    HostName,
    #[error("users may hold only ASCII letters, digits, '.', '_', '-', '@' and '+'")]
    User,
    #[error("give a host name, an IPv4 address or an IPv6 address")]
    Address,
    #[error("give the path of the private key")]
    KeyFile,
}

/// A character that is not allowed, as messages name it.
fn shown(c: &char) -> String {
    let c = *c;
    if c.is_whitespace() {
        "whitespace".to_string()
    } else if c.is_control() {
        "a control character".to_string()
    } else if ";|&$`'\"<>(){}*?!\\#~%=,[]^".contains(c) {
        format!("the shell metacharacter '{c}'")
    } else {
        format!("the character '{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the messages `check.rs` and `host.rs` wrote before
    /// they were typed; the corpus and lab tests compare them.
    #[test]
    fn texts_are_the_messages() {
        let cases = [
            (
                HostError::Template {
                    what: "ansible_user",
                    value: "{{ u }}".into(),
                },
                "ansible_user \"{{ u }}\" is a Jinja template, which sprayvault does not evaluate (beyond {{ inventory_hostname }} and {{ inventory_hostname_short }}); write the value itself",
            ),
            (
                HostError::Holds {
                    what: "host name",
                    value: "a;b".into(),
                    found: ';',
                    rule: Rule::HostName,
                },
                "host name \"a;b\" holds the shell metacharacter ';'; host names may hold only letters, digits, '.', '_' and '-', and start with a letter or digit",
            ),
            (
                HostError::Holds {
                    what: "ansible_user",
                    value: "a b".into(),
                    found: ' ',
                    rule: Rule::User,
                },
                "ansible_user \"a b\" holds whitespace; users may hold only ASCII letters, digits, '.', '_', '-', '@' and '+'",
            ),
            (
                HostError::NameStart { name: "_x".into() },
                "host name \"_x\" does not start with a letter or digit; host names may hold only letters, digits, '.', '_' and '-', and start with a letter or digit",
            ),
            (
                HostError::AddressDot {
                    what: "ansible_host",
                    value: ".x".into(),
                },
                "ansible_host \".x\" starts with '.'; give a host name, an IPv4 address or an IPv6 address",
            ),
            (
                HostError::BadPort {
                    what: "ansible_port",
                    value: Value::from("http"),
                },
                "ansible_port \"http\" is not a port number (1 to 65535)",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
