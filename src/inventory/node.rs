//! YAML (and JSON) documents as Ansible's loader gives them: JSON first,
//! then YAML read as PyYAML reads it (YAML 1.1 scalars, see `yaml11.rs`),
//! built from the composed tree (`compose.rs`) as Ansible's constructor
//! builds it: a repeated key keeps its first place and its last value
//! (keys compare as Python compares them, so `1`, `1.0` and `true` are one
//! key), `<<` merge keys are applied (the mapping's own keys over the
//! merged ones, earlier merged mappings over later ones), `!vault` values
//! come out as `{"__ansible_vault": ciphertext}` (as ansible-inventory
//! prints them) and `!unsafe` values as the plain values Ansible uses
//! (ansible-inventory prints `{"__ansible_unsafe": value}`). Tags Ansible
//! has no constructor for are errors, and so are values it cannot print
//! (`!!binary`, `!!set`).
//!
//! Aliases are expanded; a document that expands past a million nodes is
//! refused (an alias bomb would otherwise take all memory). Unlike PyYAML,
//! an anchor name used twice is not an error: an alias takes the later.

use super::compose::{self, Raw};
use super::yaml11::{self, Scalar};
use super::yaml_error::{KeyNotText, Pos, YamlError};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::rc::Rc;

/// More nodes than this, once aliases are expanded, is refused.
const MAX_NODES: usize = 1 << 20;

const CORE: &str = "tag:yaml.org,2002:";

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    /// A date or time, as Python's `isoformat()` writes it.
    Time(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// `!unsafe`: not to be templated; the value itself for sprayvault.
    Unsafe(Box<Node>),
    /// `!vault`: the ciphertext.
    Vault(String),
}

/// Parses one JSON or YAML document (JSON first, as Ansible's loader does)
/// into resolved nodes: merge keys applied, keys unique. Errors name the
/// line and column.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if let Ok(n) = serde_json::from_str::<Node>(text) {
        return Ok(n);
    }
    let Some(doc) = compose::compose(text)? else {
        return Ok(Node::Null);
    };
    let mut budget = MAX_NODES;
    construct(&doc, &mut budget)
}

fn spend(budget: &mut usize) -> Result<(), YamlError> {
    *budget = budget
        .checked_sub(1)
        .ok_or(YamlError::TooManyValues { limit: MAX_NODES })?;
    Ok(())
}

fn scalar(s: Scalar) -> Node {
    match s {
        Scalar::Null => Node::Null,
        Scalar::Bool(b) => Node::Bool(b),
        Scalar::Number(n) => Node::Number(n),
        // .inf and .nan have no JSON form; keep them as YAML writes them.
        Scalar::NonFinite(t) => Node::Str(t.into()),
        Scalar::Str(t) => Node::Str(t),
        Scalar::Time(t) => Node::Time(t),
    }
}

fn unknown_tag(tag: &str, at: Pos) -> YamlError {
    let shown = match tag.strip_prefix(CORE) {
        Some(name) => format!("!!{name}"),
        None => tag.to_string(),
    };
    YamlError::UnknownTag { tag: shown, at }
}

/// Ansible's constructor on one composed node.
fn construct(raw: &Raw, budget: &mut usize) -> Result<Node, YamlError> {
    spend(budget)?;
    let at = raw.at();
    let scalar_error = |error| YamlError::Scalar { error, at };
    let tag = raw.tag();
    let core = tag.and_then(|t| t.strip_prefix(CORE));
    Ok(match raw {
        Raw::Scalar {
            value, implicit, ..
        } => match (tag, core) {
            _ if *implicit => scalar(yaml11::plain(value).map_err(scalar_error)?),
            (None, _) => Node::Str(value.clone()),
            (_, Some(name))
                if !matches!(
                    name,
                    "seq" | "map" | "omap" | "pairs" | "set" | "python/dict"
                ) =>
            {
                scalar(yaml11::construct(name, value).map_err(scalar_error)?)
            }
            (Some("!unsafe"), _) => Node::Unsafe(Box::new(Node::Str(value.clone()))),
            (Some("!vault" | "!vault-encrypted"), _) => Node::Vault(value.clone()),
            (Some(t), Some(_)) => {
                return Err(YamlError::TextTaggedCollection {
                    tag: t.replace(CORE, "!!"),
                    at,
                })
            }
            (Some(t), None) => return Err(unknown_tag(t, at)),
        },
        Raw::Seq { items, .. } => match (tag, core) {
            (None, _) | (_, Some("seq")) => Node::Seq(
                items
                    .iter()
                    .map(|i| construct(i, budget))
                    .collect::<Result<_, _>>()?,
            ),
            (_, Some("omap" | "pairs")) => {
                let mut out = Vec::new();
                for i in items {
                    match i.as_ref() {
                        Raw::Map { pairs, .. } if pairs.len() == 1 => {
                            let (k, v) = &pairs[0];
                            out.push(Node::Seq(vec![
                                construct(k, budget)?,
                                construct(v, budget)?,
                            ]));
                        }
                        _ => return Err(YamlError::PairsItem { at }),
                    }
                }
                Node::Seq(out)
            }
            (Some("!unsafe"), _) => Node::Unsafe(Box::new(Node::Seq(
                items
                    .iter()
                    .map(|i| construct(i, budget))
                    .collect::<Result<_, _>>()?,
            ))),
            (Some(t), _) => return Err(tagged_wrongly(t, "a list", at)),
        },
        Raw::Map { pairs, .. } => match (tag, core) {
            (None, _) | (_, Some("map" | "python/dict")) => mapping(pairs, budget)?,
            (Some("!unsafe"), _) => Node::Unsafe(Box::new(mapping(pairs, budget)?)),
            (_, Some("set")) => return Err(YamlError::Set { at }),
            (Some(t), _) => return Err(tagged_wrongly(t, "a mapping", at)),
        },
    })
}

/// A list or mapping (`kind`) with a tag that is not for it.
fn tagged_wrongly(tag: &str, kind: &'static str, at: Pos) -> YamlError {
    match tag.strip_prefix(CORE) {
        Some(name)
            if !matches!(
                name,
                "seq" | "map" | "omap" | "pairs" | "set" | "python/dict" | "binary"
            ) =>
        {
            YamlError::CollectionTaggedScalar {
                kind,
                name: name.to_string(),
                at,
            }
        }
        Some("binary") => YamlError::CollectionTaggedBinary { at },
        _ if matches!(tag, "!vault" | "!vault-encrypted") => YamlError::CollectionTaggedVault {
            kind,
            tag: tag.to_string(),
            at,
        },
        Some(name) => YamlError::CollectionTaggedOther {
            kind,
            name: name.to_string(),
            at,
        },
        None => unknown_tag(tag, at),
    }
}

/// A `<<` key: plain (or `!`-tagged) `<<`, or tagged `!!merge`.
fn is_merge(k: &Raw) -> bool {
    match k {
        Raw::Scalar {
            value,
            implicit,
            tag,
            ..
        } => (*implicit && value == "<<") || tag.as_deref() == Some("tag:yaml.org,2002:merge"),
        _ => false,
    }
}

type Pairs = Vec<(Rc<Raw>, Rc<Raw>)>;

/// PyYAML's `flatten_mapping`: merged pairs first (later mappings of a
/// merge list before earlier ones, so earlier ones win), then the own.
fn flatten(pairs: &Pairs, budget: &mut usize) -> Result<Pairs, YamlError> {
    let mut merged = Vec::new();
    let mut own = Vec::new();
    for (k, v) in pairs {
        spend(budget)?;
        if !is_merge(k) {
            own.push((k.clone(), v.clone()));
            continue;
        }
        let at = v.at();
        match v.as_ref() {
            Raw::Map { pairs: m, .. } => merged.extend(flatten(m, budget)?),
            Raw::Seq { items, .. } => {
                let mut sub = Vec::new();
                for i in items {
                    match i.as_ref() {
                        Raw::Map { pairs: m, .. } => sub.push(flatten(m, budget)?),
                        _ => return Err(YamlError::MergeItem { at: i.at() }),
                    }
                }
                for s in sub.into_iter().rev() {
                    merged.extend(s);
                }
            }
            _ => return Err(YamlError::MergeValue { at }),
        }
    }
    merged.extend(own);
    Ok(merged)
}

fn mapping(pairs: &Pairs, budget: &mut usize) -> Result<Node, YamlError> {
    let mut out = Vec::new();
    for (k, v) in flatten(pairs, budget)? {
        let key = match k.as_ref() {
            // YAML 1.1's value key `=` is text as a key.
            Raw::Scalar {
                value,
                implicit: true,
                ..
            } if value == "=" => Node::Str(value.clone()),
            Raw::Seq { .. } | Raw::Map { .. } => {
                return Err(YamlError::CollectionKey { at: k.at() })
            }
            _ => construct(&k, budget)?,
        };
        let value = construct(&v, budget)?;
        insert(&mut out, key, value);
    }
    Ok(Node::Map(out))
}

/// Python's dict assignment: an equal key keeps its place and takes the
/// new value.
fn insert(map: &mut Vec<(Node, Node)>, k: Node, v: Node) {
    match map.iter_mut().find(|(old, _)| same_key(old, &k)) {
        Some(slot) => slot.1 = v,
        None => map.push((k, v)),
    }
}

/// Python's `==` on the values keys can have (`1 == 1.0 == True`).
fn same_key(a: &Node, b: &Node) -> bool {
    fn num(n: &Node) -> Option<f64> {
        match n {
            Node::Bool(b) => Some(f64::from(u8::from(*b))),
            Node::Number(x) => x.as_f64(),
            Node::Unsafe(inner) => num(inner),
            _ => None,
        }
    }
    fn plain(n: &Node) -> &Node {
        match n {
            Node::Unsafe(inner) => plain(inner),
            other => other,
        }
    }
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => plain(a) == plain(b),
    }
}

impl Node {
    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::Str(_) => "a string",
            Node::Time(_) => "a date",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
            Node::Unsafe(inner) => inner.kind(),
            Node::Vault(_) => "a vault-encrypted value",
        }
    }

    /// The text of a string (also one marked `!unsafe`).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            Node::Unsafe(inner) => inner.as_str(),
            _ => None,
        }
    }

    /// The node as JSON, as ansible-inventory would print it.
    pub fn to_value(&self) -> Result<Value, KeyNotText> {
        Ok(match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) | Node::Time(s) => Value::String(s.clone()),
            Node::Seq(items) => {
                Value::Array(items.iter().map(Node::to_value).collect::<Result<_, _>>()?)
            }
            Node::Map(pairs) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert(k.key_text()?, v.to_value()?);
                }
                Value::Object(m)
            }
            Node::Unsafe(inner) => inner.to_value()?,
            Node::Vault(text) => {
                let mut m = Map::new();
                m.insert("__ansible_vault".into(), Value::String(text.clone()));
                Value::Object(m)
            }
        })
    }

    /// A mapping key as text, as Python's json.dumps writes scalar keys.
    pub fn key_text(&self) -> Result<String, KeyNotText> {
        match self {
            Node::Str(s) => Ok(s.clone()),
            Node::Number(n) => Ok(n.to_string()),
            Node::Bool(b) => Ok(b.to_string()),
            Node::Null => Ok("null".into()),
            Node::Unsafe(inner) => inner.key_text(),
            other => Err(KeyNotText { kind: other.kind() }),
        }
    }
}

/// For JSON documents (serde_json), which Ansible reads before YAML.
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_i128<E: serde::de::Error>(self, n: i128) -> Result<Node, E> {
        self.visit_f64(n as f64)
    }
    fn visit_u128<E: serde::de::Error>(self, n: u128) -> Result<Node, E> {
        self.visit_f64(n as f64)
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Node, E> {
        // .inf and .nan have no JSON form; keep them as YAML writes them.
        Ok(match Number::from_f64(f) {
            Some(n) => Node::Number(n),
            None if f.is_nan() => Node::Str(".nan".into()),
            None if f > 0.0 => Node::Str(".inf".into()),
            None => Node::Str("-.inf".into()),
        })
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut pairs = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            insert(&mut pairs, k, v);
        }
        // Ansible's JSON decoder turns these objects back into values.
        for (k, v) in &pairs {
            match (k.as_str(), v) {
                (Some("__ansible_vault"), Node::Str(text)) => return Ok(Node::Vault(text.clone())),
                (Some("__ansible_unsafe"), v) => return Ok(Node::Unsafe(Box::new(v.clone()))),
                _ => {}
            }
        }
        Ok(Node::Map(pairs))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(text: &str) -> Value {
        parse(text).unwrap().to_value().unwrap()
    }

    #[test]
    fn ansible_loader_behaviour() {
        assert_eq!(v(""), Value::Null);
        assert_eq!(v("a: 1\na: 2"), json!({"a": 2}));
        assert_eq!(v("x: !unsafe '{{ a }}'"), json!({"x": "{{ a }}"}));
        assert_eq!(
            v("x: !vault |\n  $ANSIBLE_VAULT;1.1\n"),
            json!({"x": {"__ansible_vault": "$ANSIBLE_VAULT;1.1\n"}})
        );
        assert_eq!(
            v("b: &b {p: 1, q: 2}\nc:\n  <<: *b\n  q: 3"),
            json!({"b": {"p": 1, "q": 2}, "c": {"p": 1, "q": 3}})
        );
        assert_eq!(v("1: a\ntrue: b\n~: c"), json!({"1": "b", "null": "c"}));
        assert_eq!(
            v("n: 123456789012345678901234"),
            json!({"n": 123456789012345678901234.0})
        );
        assert!(parse("a: [").is_err());
        assert!(parse("a: 1\n---\nb: 2").is_err());
        assert!(parse("x: !foo bar").is_err());
    }

    #[test]
    fn merges_tags_and_limits_like_ansible() {
        // Each expectation is what Ansible 2.14's loader gave.
        assert_eq!(
            v("a: &a {p: 1, q: 1}\nb: &b {q: 2, r: 2}\nc:\n  <<: [*a, *b]\n  r: 3"),
            json!({"a": {"p": 1, "q": 1}, "b": {"q": 2, "r": 2}, "c": {"p": 1, "q": 1, "r": 3}})
        );
        assert_eq!(v("x: {'<<': {a: 1}}"), json!({"x": {"<<": {"a": 1}}}));
        assert_eq!(v("x: {!!merge k: {a: 1}}"), json!({"x": {"a": 1}}));
        assert_eq!(v("=: 1"), json!({"=": 1}));
        assert!(parse("x: =").is_err());
        assert!(parse("x: <<").is_err());
        assert_eq!(v("x: !!str 0022"), json!({"x": "0022"}));
        assert_eq!(v("x: ! '0022'"), json!({"x": 18}));
        assert_eq!(v("x: !!python/dict {a: 1}"), json!({"x": {"a": 1}}));
        assert_eq!(
            v("x: !!omap [a: 1, b: 2]"),
            json!({"x": [["a", 1], ["b", 2]]})
        );
        assert_eq!(v("x: !unsafe [1, a]"), json!({"x": [1, "a"]}));
        assert_eq!(v("x: !unsafe 22"), json!({"x": "22"}));
        assert_eq!(v("d: 2001-12-14"), json!({"d": "2001-12-14"}));
        assert_eq!(
            v("{\"v\": {\"__ansible_vault\": \"c\"}, \"u\": {\"__ansible_unsafe\": 5}}"),
            json!({"v": {"__ansible_vault": "c"}, "u": 5})
        );
        for bad in [
            "x: !!binary aGVsbG8=",
            "x: !!set {a, b}",
            "x: !!int [1]",
            "x: !vault [1]",
            "x: !!bool y",
            "? [1]\n: x",
            "2001-12-14: x",
        ] {
            assert!(
                parse(bad)
                    .and_then(|n| n.to_value().map_err(YamlError::from))
                    .is_err(),
                "{bad}"
            );
        }
        let e = parse("a:\n  b: !env X").unwrap_err().to_string();
        assert!(e.contains("!env") && e.contains("line 2 column 6"), "{e}");
    }

    #[test]
    fn hostile_documents_are_refused_not_expanded() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        let e = parse(&bomb).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        // saphyr-parser's own bound, or this module's, whichever is lower.
        let e = parse(&format!("x: {deep}")).unwrap_err().to_string();
        assert!(
            e.contains("recursion limit") || e.contains("nests deeper"),
            "{e}"
        );
        let nested = "x:\n".to_string()
            + &(1..300)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect::<String>();
        assert!(parse(&nested).is_err());
        assert!(parse("a: &a [*a]").is_err());
    }

    /// A cheap stand-in for the fuzz target between campaigns: every prefix
    /// of the YAML corpus cases, and each with YAML's indicators put in at
    /// every place, parses or fails without panicking.
    #[test]
    fn mutated_corpus_never_panics() {
        let seeds = [
            include_str!("../../tests/fixtures/inventory/yaml11-merge/hosts.yaml"),
            include_str!("../../tests/fixtures/inventory/yaml11-tags/hosts.yaml"),
            include_str!("../../tests/fixtures/inventory/yaml11-vault-unsafe/hosts.yaml"),
            include_str!("../../tests/fixtures/inventory/yaml11-nulls-keys/hosts.yaml"),
        ];
        let mut runs = 0;
        for seed in seeds {
            let cuts = seed.char_indices().map(|(i, _)| i);
            for i in cuts.step_by(3) {
                let _ = parse(&seed[..i]).and_then(|n| n.to_value().map_err(YamlError::from));
                for c in [
                    "*", "&a ", "<<: ", "!", "? ", "- ", "{", "]", "'", "\t", "\n  ",
                ] {
                    let text = format!("{}{c}{}", &seed[..i], &seed[i..]);
                    let _ = parse(&text).and_then(|n| n.to_value().map_err(YamlError::from));
                    runs += 1;
                }
            }
        }
        assert!(runs > 1000, "{runs}");
    }

    #[test]
    fn order_is_kept() {
        let Node::Map(pairs) = parse("z: 1\na: 2\nz: 3").unwrap() else {
            panic!()
        };
        assert_eq!(
            pairs,
            vec![
                (Node::Str("z".into()), Node::Number(3.into())),
                (Node::Str("a".into()), Node::Number(2.into()))
            ]
        );
    }
}
