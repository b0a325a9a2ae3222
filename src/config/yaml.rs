//! The only module that knows the YAML crate: text in, a [`Node`] tree with positions out.
//!
//! yaml-rust2's event parser is used instead of serde_yaml because every node needs its
//! line and column for error messages, and serde_yaml (now unmaintained) keeps positions
//! only for the first syntax error.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::node::{Key, Mark, Node, Origin, Value};

/// A syntax error, with where it was found.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

/// Parse one YAML document. An empty document is an empty mapping.
pub fn parse(text: &str, origin: Origin) -> Result<Node, SyntaxError> {
    let mut builder = Builder { origin, stack: Vec::new(), anchors: HashMap::new(), root: None, error: None };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        return Err(SyntaxError { mark: mark(origin, m), message: e.info().to_string() });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.root.unwrap_or_else(|| Node::new(Value::Map(Vec::new()), Mark { origin, line: 1, col: 1 })))
}

fn mark(origin: Origin, m: &Marker) -> Mark {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Mark { origin, line: m.line(), col: m.col() + 1 }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        mark: Mark,
        anchor: usize,
    },
    /// `pending` holds a key whose value has not arrived yet.
    Map {
        entries: Vec<(Key, Node)>,
        pending: Option<Key>,
        mark: Mark,
        anchor: usize,
    },
}

struct Builder {
    origin: Origin,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, mark: Mark, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { mark, message });
        }
    }

    /// Hand a finished node to whatever contains it.
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending, .. }) => match pending.take() {
                Some(key) => {
                    if entries.iter().any(|(k, _)| k.name == key.name) {
                        let (m, name) = (key.mark, key.name.clone());
                        self.fail(m, format!("duplicate key `{name}`"));
                    } else {
                        entries.push((key, node));
                    }
                }
                None => match node.value {
                    Value::Seq(_) | Value::Map(_) => {
                        self.fail(node.mark, "a key must be a plain value, not a list or mapping".into())
                    }
                    _ => {
                        let name = node.scalar_text().unwrap_or_default();
                        *pending = Some(Key { name, mark: node.mark });
                    }
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, m: Marker) {
        let at = mark(self.origin, &m);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain { plain_scalar(text) } else { Value::Str(text) };
                self.push(Node::new(value, at), anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { items: Vec::new(), mark: at, anchor }),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { entries: Vec::new(), pending: None, mark: at, anchor })
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { items, mark, anchor }) => self.push(Node::new(Value::Seq(items), mark), anchor),
                Some(Frame::Map { entries, mark, anchor, .. }) => {
                    // A block mapping's start event is marked one column past its
                    // first key; point at the key instead.
                    let mark = match entries.first() {
                        Some((k, _)) if (k.mark.line, k.mark.col) < (mark.line, mark.col) => k.mark,
                        _ => mark,
                    };
                    self.push(Node::new(Value::Map(entries), mark), anchor)
                }
                None => {}
            },
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push(Node { mark: at, ..node }, 0),
                None => self.fail(at, "alias to an unknown anchor".into()),
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// Resolve an unquoted scalar by the YAML core schema; quoted scalars stay strings.
fn plain_scalar(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    let numeric = text.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.');
    if numeric && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let doc = "name: t\nstages:\n  a: {cmd: {run: 'echo 1', n: 3, f: 0.5, b: true}}\n";
        let root = parse(doc, Origin::File).unwrap();
        let stages = root.get("stages").unwrap();
        assert_eq!((stages.mark.line, stages.mark.col), (3, 3));
        let cmd = stages.get("a").unwrap().get("cmd").unwrap();
        assert!(matches!(cmd.get("run").unwrap().value, Value::Str(ref s) if s == "echo 1"));
        assert!(matches!(cmd.get("n").unwrap().value, Value::Int(3)));
        assert!(matches!(cmd.get("f").unwrap().value, Value::Float(f) if f == 0.5));
        assert!(matches!(cmd.get("b").unwrap().value, Value::Bool(true)));
        let Value::Map(entries) = &cmd.value else { panic!() };
        assert_eq!((entries[1].0.mark.line, entries[1].0.mark.col), (3, 28));
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let root = parse("a: '3'\nb: 3\n", Origin::File).unwrap();
        assert!(matches!(root.get("a").unwrap().value, Value::Str(_)));
        assert!(matches!(root.get("b").unwrap().value, Value::Int(3)));
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let e = parse("a: 1\nb: 2\na: 3\n", Origin::File).unwrap_err();
        assert_eq!((e.mark.line, e.mark.col), (3, 1));
        assert!(e.message.contains("duplicate key `a`"));
        let e = parse("a: [1, 2\nb: 3\n", Origin::File).unwrap_err();
        assert!(e.mark.line >= 2, "{e:?}");
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let root = parse("x: &d {a: 1}\ny: *d\n", Origin::File).unwrap();
        assert_eq!(root.get("y").unwrap().to_json(), serde_json::json!({"a": 1}));
    }
}
