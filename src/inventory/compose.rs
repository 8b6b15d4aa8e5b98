//! YAML text to a tree of nodes, as PyYAML's composer builds it before any
//! value is made: scalars with their tag (or none) and whether they were
//! plain, sequences, mappings with every pair (repeated keys and `<<`
//! included), aliases pointing at their anchor's node. The events come from
//! `saphyr-parser`; one document at most, as Ansible's loader wants.
//!
//! Nesting is bounded (a deeper document is refused, not a stack overflow).

use super::yaml_error::{Pos, YamlError};
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::collections::HashMap;
use std::rc::Rc;

/// Deeper than this is refused (Ansible's own inventories nest a few
/// levels; the bound is for hostile input).
const MAX_DEPTH: usize = 256;

#[derive(Debug)]
pub enum Raw {
    Scalar {
        value: String,
        /// Untagged and plain, or tagged `!`: resolved as PyYAML resolves.
        implicit: bool,
        tag: Option<String>,
        at: Pos,
    },
    Seq {
        items: Vec<Rc<Raw>>,
        tag: Option<String>,
        at: Pos,
    },
    Map {
        pairs: Vec<(Rc<Raw>, Rc<Raw>)>,
        tag: Option<String>,
        at: Pos,
    },
}

impl Raw {
    pub fn at(&self) -> Pos {
        match self {
            Raw::Scalar { at, .. } | Raw::Seq { at, .. } | Raw::Map { at, .. } => *at,
        }
    }
    pub fn tag(&self) -> Option<&str> {
        match self {
            Raw::Scalar { tag, .. } | Raw::Seq { tag, .. } | Raw::Map { tag, .. } => tag.as_deref(),
        }
    }
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

/// `!!str` as `tag:yaml.org,2002:str`, `!vault` as `!vault`.
fn tag_text(tag: Option<std::borrow::Cow<'_, Tag>>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

fn unexpected(event: &Event<'_>, at: Pos) -> YamlError {
    YamlError::UnexpectedEvent {
        event: format!("{event:?}"),
        at,
    }
}

struct Composer<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Rc<Raw>>,
}

impl<'a> Composer<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.events.next_event() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => Err(YamlError::Scan(e)),
            None => Err(YamlError::EndsEarly),
        }
    }

    fn anchor(&mut self, id: usize, node: Rc<Raw>) -> Rc<Raw> {
        if id != 0 {
            self.anchors.insert(id, node.clone());
        }
        node
    }

    /// The node that starts with `event`.
    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Rc<Raw>, YamlError> {
        let at = pos(&span);
        if depth > MAX_DEPTH {
            return Err(YamlError::TooDeep {
                limit: MAX_DEPTH,
                at,
            });
        }
        match event {
            Event::Alias(id) => self
                .anchors
                .get(&id)
                .cloned()
                .ok_or(YamlError::AliasInside { at }),
            Event::Scalar(value, style, id, tag) => {
                let tag = tag_text(tag);
                let implicit = match &tag {
                    None => style == ScalarStyle::Plain,
                    Some(t) => t == "!",
                };
                let node = Rc::new(Raw::Scalar {
                    value: value.into_owned(),
                    implicit,
                    tag: tag.filter(|t| t != "!"),
                    at,
                });
                Ok(self.anchor(id, node))
            }
            Event::SequenceStart(id, tag) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (e, s) => items.push(self.node(e, s, depth + 1)?),
                    }
                }
                let tag = tag_text(tag).filter(|t| t != "!");
                Ok(self.anchor(id, Rc::new(Raw::Seq { items, tag, at })))
            }
            Event::MappingStart(id, tag) => {
                let mut pairs = Vec::new();
                loop {
                    let k = match self.next()? {
                        (Event::MappingEnd, _) => break,
                        (e, s) => self.node(e, s, depth + 1)?,
                    };
                    let (e, s) = self.next()?;
                    let v = self.node(e, s, depth + 1)?;
                    pairs.push((k, v));
                }
                let tag = tag_text(tag).filter(|t| t != "!");
                Ok(self.anchor(id, Rc::new(Raw::Map { pairs, tag, at })))
            }
            other => Err(unexpected(&other, at)),
        }
    }
}

/// The document of `text`, or `None` for a stream with no document.
pub fn compose(text: &str) -> Result<Option<Rc<Raw>>, YamlError> {
    let mut c = Composer {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
    };
    let mut doc = None;
    loop {
        match c.next()? {
            (Event::StreamStart | Event::Nothing, _) => {}
            (Event::StreamEnd, _) => return Ok(doc),
            (Event::DocumentStart(_), span) => {
                if doc.is_some() {
                    return Err(YamlError::SecondDocument { at: pos(&span) });
                }
                let (e, s) = c.next()?;
                doc = Some(c.node(e, s, 0)?);
                match c.next()? {
                    (Event::DocumentEnd, _) => {}
                    (other, s) => return Err(unexpected(&other, pos(&s))),
                }
            }
            (other, s) => return Err(unexpected(&other, pos(&s))),
        }
    }
}
