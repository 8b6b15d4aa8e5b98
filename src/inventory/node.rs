//! YAML (and JSON) documents as Ansible's loader gives them: mappings keep
//! their order, a repeated key keeps its first place and its last value,
//! `<<` merge keys are applied, `!vault` values come out as
//! `{"__ansible_vault": ciphertext}` (as ansible-inventory prints them) and
//! `!unsafe` values as the plain values Ansible uses (ansible-inventory
//! prints `{"__ansible_unsafe": value}`). Other tags are errors.
//!
//! Scalars follow serde_yaml (YAML 1.2): unlike Ansible's PyYAML (YAML 1.1),
//! unquoted `yes`/`no`/`on`/`off` stay text, `0755` is not octal and `1e3`
//! is a number. Where sprayvault reads such values (`ansible_become`) both
//! mean the same.

use serde::de::{
    Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_json::{Map, Number, Value};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Tagged(String, Box<Node>),
}

/// Parses one JSON or YAML document (JSON first, as Ansible's loader does)
/// into resolved nodes: merge keys applied, keys unique. The error is
/// serde_yaml's, which names line and column.
pub fn parse(text: &str) -> Result<Node, String> {
    let raw: Node = match serde_json::from_str(text) {
        Ok(n) => n,
        Err(_) => serde_yaml::from_str(text).map_err(|e| e.to_string())?,
    };
    resolve(raw)
}

fn resolve(node: Node) -> Result<Node, String> {
    Ok(match node {
        Node::Seq(items) => Node::Seq(items.into_iter().map(resolve).collect::<Result<_, _>>()?),
        Node::Tagged(tag, inner) => Node::Tagged(tag, Box::new(resolve(*inner)?)),
        Node::Map(pairs) => {
            let mut out: Vec<(Node, Node)> = Vec::new();
            let mut explicit = Vec::new();
            for (k, v) in pairs {
                if k == Node::Str("<<".into()) {
                    // Earlier merged mappings win over later ones, and the
                    // mapping's own keys over all of them.
                    let merged = match resolve(v)? {
                        Node::Map(m) => vec![m],
                        Node::Seq(items) => items
                            .into_iter()
                            .map(|i| match i {
                                Node::Map(m) => Ok(m),
                                _ => Err("a YAML merge key (<<) takes mappings".to_string()),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(
                                "a YAML merge key (<<) takes a mapping or a list of mappings"
                                    .into(),
                            )
                        }
                    };
                    for m in merged.into_iter().rev() {
                        for (mk, mv) in m {
                            insert(&mut out, mk, mv);
                        }
                    }
                } else {
                    explicit.push((resolve(k)?, resolve(v)?));
                }
            }
            for (k, v) in explicit {
                insert(&mut out, k, v);
            }
            Node::Map(out)
        }
        other => other,
    })
}

fn insert(map: &mut Vec<(Node, Node)>, k: Node, v: Node) {
    match map.iter_mut().find(|(old, _)| *old == k) {
        Some(slot) => slot.1 = v,
        None => map.push((k, v)),
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
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
            Node::Tagged(..) => "a tagged value",
        }
    }

    /// The node as JSON, as ansible-inventory would print it.
    pub fn to_value(&self) -> Result<Value, String> {
        Ok(match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.clone()),
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
            Node::Tagged(tag, inner) => match (tag.as_str(), inner.as_ref()) {
                ("unsafe", _) => inner.to_value()?,
                ("vault", Node::Str(text)) => {
                    let mut m = Map::new();
                    m.insert("__ansible_vault".into(), Value::String(text.clone()));
                    Value::Object(m)
                }
                _ => {
                    return Err(format!(
                        "the YAML tag !{tag} is not one Ansible knows (only !unsafe and !vault)"
                    ))
                }
            },
        })
    }

    /// A mapping key as text, as Python's json.dumps writes scalar keys.
    pub fn key_text(&self) -> Result<String, String> {
        match self {
            Node::Str(s) => Ok(s.clone()),
            Node::Number(n) => Ok(n.to_string()),
            Node::Bool(b) => Ok(b.to_string()),
            Node::Null => Ok("null".into()),
            Node::Tagged(t, inner) if t == "unsafe" => inner.key_text(),
            other => Err(format!(
                "a mapping key is {}; keys must be plain names",
                other.kind()
            )),
        }
    }
}

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
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(Node::Map(pairs))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        // serde_yaml hands a `!tag value` over as an enum variant.
        let (tag, variant): (String, _) = data.variant()?;
        let inner: Node = variant.newtype_variant()?;
        Ok(Node::Tagged(tag, Box::new(inner)))
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
        assert_eq!(
            v("1: a\ntrue: b\n~: c"),
            json!({"1": "a", "true": "b", "null": "c"})
        );
        assert_eq!(
            v("n: 123456789012345678901234"),
            json!({"n": 123456789012345678901234.0})
        );
        assert!(parse("a: [").is_err());
        assert!(parse("a: 1\n---\nb: 2").is_err());
        assert!(parse("x: !foo bar").unwrap().to_value().is_err());
        assert!(parse("? [1]\n: x").unwrap().to_value().is_err());
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
