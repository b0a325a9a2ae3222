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

/// The most nodes a file may expand to, aliases counted at their full size: room for
/// the largest pipeline allowed (100,000 stages written out one by one, about 20 values
/// each), far below what a "billion laughs" file of nested aliases would take in memory.
pub const MAX_NODES: usize = 2_000_000;

/// The deepest nesting of lists and mappings a file may have.
pub const MAX_DEPTH: usize = 64;

/// Parse one YAML document. An empty document is an empty mapping; a second document
/// in the same text is an error (it would otherwise be ignored).
pub fn parse(text: &str, origin: Origin) -> Result<Node, SyntaxError> {
    let mut builder =
        Builder { origin, stack: Vec::new(), anchors: HashMap::new(), root: None, error: None, nodes: 0, documents: 0 };
    let mut parser = Parser::new_from_str(text);
    // Event by event rather than through `Parser::load`, which recurses once per level
    // of block nesting: a file of mappings nested thousands deep would overflow the
    // stack before the depth limit below could refuse it.
    while builder.error.is_none() {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, m)) => builder.on_event(ev, m),
            Err(e) => {
                let m = e.marker();
                return Err(SyntaxError { mark: mark(origin, m), message: e.info().to_string() });
            }
        }
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
    /// Anchored nodes, with how many nodes each counts for.
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    error: Option<SyntaxError>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
    documents: usize,
}

impl Builder {
    fn fail(&mut self, mark: Mark, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { mark, message });
        }
    }

    /// Count `n` more nodes; false (with the error recorded) past the limit.
    fn count(&mut self, n: usize, at: Mark) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            self.fail(
                at,
                format!("the file expands to more than {MAX_NODES} values (aliases counted in full); a pipeline needs far fewer"),
            );
            return false;
        }
        true
    }

    /// Hand a finished node to whatever contains it.
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = size_of(&node);
            self.anchors.insert(anchor, (node.clone(), size));
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
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                if self.count(1, at) {
                    let value = if style == TScalarStyle::Plain { plain_scalar(text) } else { Value::Str(text) };
                    self.push(Node::new(value, at), anchor);
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(at, format!("lists and mappings nested more than {MAX_DEPTH} deep"));
            }
            Event::SequenceStart(anchor, _) => {
                if self.count(1, at) {
                    self.stack.push(Frame::Seq { items: Vec::new(), mark: at, anchor })
                }
            }
            Event::MappingStart(anchor, _) => {
                if self.count(1, at) {
                    self.stack.push(Frame::Map { entries: Vec::new(), pending: None, mark: at, anchor })
                }
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
            // The anchored node was counted when built, so its copy is bounded too.
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some((node, size)) => {
                    if self.count(size, at) {
                        self.push(Node { mark: at, ..node }, 0)
                    }
                }
                None => self.fail(at, "alias to an unknown anchor".into()),
            },
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(at, "a second YAML document (after `---`): a pipeline file holds exactly one".into());
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// How many nodes `node` holds, itself included.
fn size_of(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(size_of).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| size_of(v)).sum(),
        _ => 0,
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

    /// Nesting far past the limit, in every form, is refused at the level that passes
    /// it; nothing recurses once per level.
    #[test]
    fn deep_nesting_is_refused_where_it_passes_the_limit() {
        let n = 5_000;
        let block_maps: String = (0..n).map(|i| format!("{}k:\n", "  ".repeat(i))).collect::<String>() + "1\n";
        let block_seqs: String = (0..n).map(|i| format!("{}-\n", "  ".repeat(i))).collect::<String>() + "1\n";
        let flow_maps = "{a: ".repeat(n) + "1" + &"}".repeat(n);
        let flow_seqs = "[".repeat(100_000) + &"]".repeat(100_000);
        for text in [block_maps, block_seqs, flow_maps, flow_seqs] {
            let e = parse(&text, Origin::File).unwrap_err();
            assert!(e.message.contains("nested more than 64 deep") || e.message.contains("recursion limit"), "{e:?}");
            assert!(e.mark.line >= 1, "{e:?}");
        }
        let e = parse(&(0..100).map(|i| format!("{}k:\n", "  ".repeat(i))).collect::<String>(), Origin::File);
        assert_eq!(e.unwrap_err().mark.line, 65);
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
