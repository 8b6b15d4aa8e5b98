//! Why a YAML (or JSON) document is refused, as Ansible's loader would
//! refuse it, and where in the document: the errors of `compose.rs`,
//! `node.rs` and `yaml11.rs`. Their texts are what users see (inside an
//! `InventoryError`, or from `yaml_to_json`), so tests and golden files
//! compare them; change a text only together with those.

use saphyr_parser::ScanError;

/// Where a node starts, 1-based, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "line {} column {}", self.line, self.col)
    }
}

/// A document that Ansible's loader cannot read, or whose values
/// ansible-inventory cannot print.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum YamlError {
    /// saphyr-parser's own error, which names the line and column.
    #[error("{0}")]
    Scan(ScanError),
    #[error("the YAML ends early")]
    EndsEarly,
    #[error("the YAML nests deeper than {limit} levels at {at}")]
    TooDeep { limit: usize, at: Pos },
    #[error("an alias at {at} refers to a node that contains it")]
    AliasInside { at: Pos },
    /// `event`: saphyr-parser's event, as its `Debug` shows it.
    #[error("unexpected YAML event {event} at {at}")]
    UnexpectedEvent { event: String, at: Pos },
    #[error("expected a single document in the stream, but found another document at {at}")]
    SecondDocument { at: Pos },
    #[error("the YAML expands (through its aliases) to more than {limit} values")]
    TooManyValues { limit: usize },
    #[error("{error} (at {at})")]
    Scalar { error: ScalarError, at: Pos },
    /// `tag` as written with `!!` for YAML's own tags.
    #[error("a text is tagged {tag}, which takes a list or mapping (at {at})")]
    TextTaggedCollection { tag: String, at: Pos },
    /// `tag` as written with `!!` for YAML's own tags.
    #[error("the YAML tag {tag} is not one Ansible knows (only !unsafe, !vault and YAML's own !! tags) (at {at})")]
    UnknownTag { tag: String, at: Pos },
    #[error("each item of an !!omap or !!pairs list must be a mapping of one key (at {at})")]
    PairsItem { at: Pos },
    /// A list or mapping (`kind`) tagged `!!NAME` of a scalar type.
    #[error("{kind} is tagged !!{name}, which takes a single value (at {at})")]
    CollectionTaggedScalar {
        kind: &'static str,
        name: String,
        at: Pos,
    },
    #[error(
        "!!binary values cannot be shown by Ansible (ansible-inventory fails on them) (at {at})"
    )]
    CollectionTaggedBinary { at: Pos },
    /// A list or mapping (`kind`) tagged `!vault`.
    #[error("{kind} is tagged {tag}, which takes the encrypted text (at {at})")]
    CollectionTaggedVault {
        kind: &'static str,
        tag: String,
        at: Pos,
    },
    /// A list tagged as a mapping or the other way round.
    #[error("{kind} is tagged !!{name} (at {at})")]
    CollectionTaggedOther {
        kind: &'static str,
        name: String,
        at: Pos,
    },
    #[error("an !!set cannot be shown by Ansible (ansible-inventory fails on it); write a list (at {at})")]
    Set { at: Pos },
    /// `at`: the item of the merge list that is not a mapping.
    #[error("a YAML merge key (<<) takes mappings, and an item of its list at {at} is not one")]
    MergeItem { at: Pos },
    #[error("a YAML merge key (<<) takes a mapping or a list of mappings (at {at})")]
    MergeValue { at: Pos },
    #[error("a mapping key at {at} is a list or mapping; keys must be plain names")]
    CollectionKey { at: Pos },
    #[error(transparent)]
    KeyNotText(#[from] KeyNotText),
}

/// A mapping key with no text form (`kind`: a list, a date, ...), which
/// JSON, and so ansible-inventory, cannot have: the one way a read value
/// fails to become JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a mapping key is {kind}; keys must be plain names")]
pub struct KeyNotText {
    pub kind: &'static str,
}

/// A scalar that PyYAML's resolver or SafeConstructor refuses; `value` is
/// the scalar's text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScalarError {
    #[error("'<<' (a merge key) stands where a value belongs")]
    MergeKey,
    #[error("'=' (YAML 1.1's value key) stands where a value belongs")]
    ValueKey,
    #[error("{value:?} is not a boolean (tagged !!bool)")]
    NotBool { value: String },
    #[error("{value:?} is not an integer (tagged !!int)")]
    NotInt { value: String },
    #[error("{value:?} is not a number (tagged !!float)")]
    NotFloat { value: String },
    #[error("{value:?} is not a valid date or time (tagged !!timestamp)")]
    NotTime { value: String },
    #[error("a !!binary value cannot be shown by Ansible (ansible-inventory fails on it); write it as text")]
    Binary,
    /// `name`: the tag without `tag:yaml.org,2002:`.
    #[error("the YAML tag !!{name} is not one Ansible can use here")]
    UnusableTag { name: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the messages the YAML reader wrote before they were
    /// typed.
    #[test]
    fn texts_are_the_messages() {
        let at = Pos { line: 2, col: 6 };
        let cases = [
            (
                YamlError::Scalar {
                    error: ScalarError::NotInt { value: "1e3".into() },
                    at,
                },
                "\"1e3\" is not an integer (tagged !!int) (at line 2 column 6)",
            ),
            (
                YamlError::UnknownTag {
                    tag: "!env".into(),
                    at,
                },
                "the YAML tag !env is not one Ansible knows (only !unsafe, !vault and YAML's own !! tags) (at line 2 column 6)",
            ),
            (
                YamlError::CollectionTaggedScalar {
                    kind: "a list",
                    name: "int".into(),
                    at,
                },
                "a list is tagged !!int, which takes a single value (at line 2 column 6)",
            ),
            (
                YamlError::TooDeep { limit: 256, at },
                "the YAML nests deeper than 256 levels at line 2 column 6",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
