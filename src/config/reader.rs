//! Typed reading of a mapping node, recording every problem instead of stopping at one.
//!
//! A stage kind checks its parameters with a [`MapReader`]: it asks for the keys it
//! knows, then [`MapReader::finish`] reports every key it did not ask for, with the
//! nearest known one as a suggestion.

use super::diagnostic::Diagnostics;
use super::node::{Key, KeyPath, Node, Value};
use super::suggest::nearest;

pub struct MapReader<'a> {
    entries: &'a [(Key, Node)],
    node: &'a Node,
    path: KeyPath,
    known: Vec<&'static str>,
}

impl<'a> MapReader<'a> {
    /// `None` (with a recorded error) when the node is not a mapping.
    pub fn new(node: &'a Node, path: KeyPath, diags: &mut Diagnostics) -> Option<MapReader<'a>> {
        match &node.value {
            Value::Map(entries) => Some(MapReader { entries, node, path, known: Vec::new() }),
            _ => {
                diags.error(node.mark, &path, format!("expected a mapping, found {}", node.type_name()));
                None
            }
        }
    }

    pub fn path(&self, key: &str) -> KeyPath {
        self.path.key(key)
    }

    pub fn node(&self) -> &'a Node {
        self.node
    }

    /// The value under `key`, marking the key as known.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.known.push(key);
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    pub fn require(&mut self, key: &'static str, diags: &mut Diagnostics) -> Option<&'a Node> {
        let v = self.get(key);
        if v.is_none() {
            diags.error(self.node.mark, &self.path, format!("missing required key `{key}`"));
        }
        v
    }

    pub fn string(&mut self, key: &'static str, diags: &mut Diagnostics) -> Option<String> {
        let node = self.get(key)?;
        expect_string(node, &self.path.key(key), diags)
    }

    pub fn required_string(&mut self, key: &'static str, diags: &mut Diagnostics) -> Option<String> {
        let node = self.require(key, diags)?;
        expect_string(node, &self.path.key(key), diags)
    }

    /// A list of strings; a single string counts as a list of one.
    pub fn string_list(&mut self, key: &'static str, diags: &mut Diagnostics) -> Vec<String> {
        let Some(node) = self.get(key) else { return Vec::new() };
        let path = self.path.key(key);
        match &node.value {
            Value::Str(s) => vec![s.clone()],
            Value::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, item)| expect_string(item, &path.index(i), diags)).collect()
            }
            _ => {
                diags.error(node.mark, &path, format!("expected a list of strings, found {}", node.type_name()));
                Vec::new()
            }
        }
    }

    /// Report every key that was never asked for.
    pub fn finish(self, diags: &mut Diagnostics) {
        for (k, _) in self.entries {
            if !self.known.contains(&k.name.as_str()) {
                let path = self.path.key(&k.name);
                match nearest(&k.name, self.known.iter().copied()) {
                    Some(s) => diags.error_help(
                        k.mark,
                        &path,
                        format!("unknown key `{}`", k.name),
                        format!("did you mean `{s}`?"),
                    ),
                    None => diags.error_help(
                        k.mark,
                        &path,
                        format!("unknown key `{}`", k.name),
                        format!("expected one of: {}", self.known.join(", ")),
                    ),
                }
            }
        }
    }
}

pub fn expect_string(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        _ => {
            diags.error(node.mark, path, format!("expected a string, found {}", node.type_name()));
            None
        }
    }
}
