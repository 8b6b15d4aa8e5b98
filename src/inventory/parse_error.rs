//! Why an inventory file (INI or YAML) or a `group_vars`/`host_vars` file
//! is refused: what is wrong with its sections, groups, host lines, ranges
//! or variables. An `InventoryError::Syntax` holds one, with the file and
//! line. Each text says what is wrong and what to do; tests, golden files
//! and the Ansible corpus compare the texts, so change one only together
//! with those.

use super::yaml_error::{KeyNotText, YamlError};
use serde_json::Value;

/// What is wrong with an inventory file or a variables file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("this is an inventory script, which sprayvault does not run; save what it gives with `ansible-inventory -i FILE --list --yaml > hosts.yaml` and use that")]
    Script,
    #[error("it is not UTF-8 text")]
    NotUtf8,
    #[error("it is encrypted with ansible-vault, which sprayvault cannot open; keep the connection variables (ansible_host, ansible_user, ...) in an unencrypted file, or encrypt single values with `ansible-vault encrypt_string`")]
    VaultFile,

    // Groups, in either format.
    #[error("a group has an empty name; give it one")]
    EmptyGroupName,
    #[error("group name {name:?} holds control characters; remove them")]
    GroupNameControl { name: String },
    #[error("ansible_group_priority of group '{group}' is {value}, not a whole number; fix it")]
    BadPriority { group: String, value: Value },
    #[error("group '{group}' cannot be a child of itself")]
    OwnChild { group: String },
    #[error("making '{child}' a child of '{parent}' creates a loop ('{child}' is already above '{parent}'); remove one of the two")]
    ChildLoop { parent: String, child: String },

    // Host patterns and ranges (`range.rs`), in either format.
    #[error("unbalanced '[' in host pattern {pattern:?}: close the range with ']'")]
    UnclosedRange { pattern: String },
    /// `range`: what stands between the brackets.
    #[error("bad host range [{range}] in {pattern:?}: {fault}")]
    BadRange {
        range: String,
        pattern: String,
        fault: RangeFault,
    },
    #[error("host pattern {pattern:?} makes more than {limit} hosts")]
    TooManyHosts { pattern: String, limit: usize },

    // The INI format; `line` is the line as written (trimmed).
    #[error("section [{group}:{kind}] has the unknown type '{kind}'; use [{group}], [{group}:children] or [{group}:vars]")]
    SectionType { group: String, kind: String },
    #[error("{line:?} is not a valid section header; write [group], [group:children] or [group:vars] alone on the line, without spaces (a comment after it starts with #)")]
    SectionHeader { line: String },
    #[error("{line:?} in [{group}:children] is not a group name; write one group per line")]
    ChildLine { line: String, group: String },
    #[error(
        "{line:?} in [{group}:vars] is not name=value; write one variable per line as name=value"
    )]
    VarsLine { line: String, group: String },
    #[error("section [{parent}:children] names the group '{child}', which is never defined; add a [{child}] section (it may be empty) or remove the line")]
    UndefinedChild { parent: String, child: String },
    #[error("section [{group}:vars] is for the group '{group}', which is never defined; add a [{group}] section or remove these variables")]
    UndefinedVarsGroup { group: String },
    /// `host`: the first word of the host line.
    #[error("unterminated quote in host variables of '{host}'; close the quote")]
    UnclosedQuote { host: String },
    /// `host`: the first word of the host line.
    #[error("the host line of '{host}' ends with a backslash; remove it")]
    TrailingBackslash { host: String },
    #[error("host pattern '{pattern}' ends with ':'; give the port after it or remove the ':'")]
    EmptyPort { pattern: String },
    /// `var`: the word after the host pattern that has no `=`.
    #[error("host variable {var:?} of '{pattern}' is not name=value; write name=value, quoting values with spaces")]
    HostVarLine { var: String, pattern: String },
    #[error("'---' starts a YAML document: a YAML inventory file must end in .yaml or .yml")]
    YamlInIni,

    // The YAML format and variables files; `kind` is what a value is (a
    // list, a string, ...: `Node::kind`).
    /// The document itself cannot be read.
    #[error("{0}; fix the YAML")]
    Yaml(YamlError),
    #[error(transparent)]
    Key(KeyNotText),
    #[error("the YAML inventory is empty")]
    EmptyYaml,
    #[error("a YAML inventory is a mapping of group names (all:, kube_node:, ...), not {kind}")]
    NotGroups { kind: &'static str },
    /// `plugin`: the value of the file's `plugin:` key.
    #[error("this is the configuration of the inventory plugin {plugin}, which sprayvault cannot run; write its hosts to a file with `ansible-inventory -i FILE --list --yaml > hosts.yaml` and use that")]
    PluginConfig { plugin: Value },
    #[error("a group name is {kind}; group names must be strings")]
    GroupNameNotText { kind: &'static str },
    #[error("group '{group}' is {kind}; a group is a mapping with hosts:, children: and vars: (or empty)")]
    GroupNotMapping { group: String, kind: &'static str },
    /// `key`: the key as JSON, or what it is where it has no JSON form.
    #[error("group '{group}' has the key {key}, but only hosts:, children: and vars: are valid there; check the indentation and spelling")]
    GroupKey { group: String, key: String },
    /// `section`: hosts, children or vars.
    #[error("{section} of group '{group}' must be a mapping, not {kind}")]
    SectionNotMapping {
        section: &'static str,
        group: String,
        kind: &'static str,
    },
    #[error("hosts of group '{group}' must be a mapping, not a list (write each host as a key ending in ':', not as a '- ' list item)")]
    HostsList { group: String },
    #[error("vars of group '{group}': {error}")]
    GroupVar { group: String, error: KeyNotText },
    /// `key`: the key as JSON (empty where it has no JSON form).
    #[error("host {key} in group '{group}' is {kind}; quote host names that look like numbers")]
    HostNotText {
        key: String,
        group: String,
        kind: &'static str,
    },
    #[error("host '{host}' in group '{group}' has {kind} where its variables (a mapping) or nothing belong")]
    HostVarsNotMapping {
        host: String,
        group: String,
        kind: &'static str,
    },
    #[error("host '{host}': {error}")]
    HostVar { host: String, error: KeyNotText },
    #[error("a variables file must be a mapping of variable names to values, not {kind}")]
    VarsFileNotMapping { kind: &'static str },
}

/// Why a host range (`node[01:10]`) is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeFault {
    #[error("write it as [begin:end] or [begin:end:step]")]
    Shape,
    #[error("it has no end value")]
    NoEnd,
    #[error("the step must be a whole number")]
    StepNotWhole,
    #[error("the step must not be 0")]
    ZeroStep,
    #[error("zero-padded begin and end must have the same width")]
    PaddingWidths,
    #[error("it begins after it ends")]
    Backwards,
    #[error("begin and end must both be numbers or both letters")]
    MixedBounds,
    #[error("it makes more than {limit} hosts")]
    TooMany { limit: usize },
    #[error("it makes no host; ranges count up, as in [1:3]")]
    NoHost,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the messages the parsers wrote before they were
    /// typed; tests/inventory.rs and the golden files compare them.
    #[test]
    fn texts_are_the_messages() {
        let cases = [
            (
                ParseError::BadRange {
                    range: "3:1".into(),
                    pattern: "n[3:1]".into(),
                    fault: RangeFault::Backwards,
                },
                "bad host range [3:1] in \"n[3:1]\": it begins after it ends",
            ),
            (
                ParseError::BadRange {
                    range: "0:9999999".into(),
                    pattern: "n[0:9999999]".into(),
                    fault: RangeFault::TooMany { limit: 100_000 },
                },
                "bad host range [0:9999999] in \"n[0:9999999]\": it makes more than 100000 hosts",
            ),
            (
                ParseError::UndefinedChild {
                    parent: "k8s_cluster".into(),
                    child: "kube_node".into(),
                },
                "section [k8s_cluster:children] names the group 'kube_node', which is never defined; add a [kube_node] section (it may be empty) or remove the line",
            ),
            (
                ParseError::BadPriority {
                    group: "g".into(),
                    value: Value::from("high"),
                },
                "ansible_group_priority of group 'g' is \"high\", not a whole number; fix it",
            ),
            (
                ParseError::HostsList { group: "etcd".into() },
                "hosts of group 'etcd' must be a mapping, not a list (write each host as a key ending in ':', not as a '- ' list item)",
            ),
            (
                ParseError::Yaml(YamlError::EndsEarly),
                "the YAML ends early; fix the YAML",
            ),
            (
                ParseError::HostVar {
                    host: "n1".into(),
                    error: KeyNotText { kind: "a list" },
                },
                "host 'n1': a mapping key is a list; keys must be plain names",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
