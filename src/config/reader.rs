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

    /// A non-negative integer, `default` when absent.
    pub fn uint(&mut self, key: &'static str, default: u64, diags: &mut Diagnostics) -> u64 {
        let Some(node) = self.get(key) else { return default };
        match node.value {
            Value::Int(i) if i >= 0 => i as u64,
            _ => {
                let found = node.scalar_text().map_or_else(|| node.type_name().to_string(), |t| format!("`{t}`"));
                diags.error(node.mark, &self.path.key(key), format!("expected a non-negative integer, found {found}"));
                default
            }
        }
    }

    /// A number (integers accepted), `default` when absent.
    pub fn float(&mut self, key: &'static str, default: f64, diags: &mut Diagnostics) -> f64 {
        let Some(node) = self.get(key) else { return default };
        match node.value {
            Value::Float(f) if f.is_finite() => f,
            Value::Int(i) => i as f64,
            _ => {
                let found = node.scalar_text().map_or_else(|| node.type_name().to_string(), |t| format!("`{t}`"));
                diags.error(node.mark, &self.path.key(key), format!("expected a number, found {found}"));
                default
            }
        }
    }

    pub fn boolean(&mut self, key: &'static str, default: bool, diags: &mut Diagnostics) -> bool {
        let Some(node) = self.get(key) else { return default };
        match node.value {
            Value::Bool(b) => b,
            _ => {
                let found = node.scalar_text().map_or_else(|| node.type_name().to_string(), |t| format!("`{t}`"));
                diags.error(node.mark, &self.path.key(key), format!("expected true or false, found {found}"));
                default
            }
        }
    }

    /// A string that must be one of `choices`, `default` when absent.
    pub fn choice(
        &mut self,
        key: &'static str,
        choices: &[&'static str],
        default: &'static str,
        diags: &mut Diagnostics,
    ) -> &'static str {
        let Some(node) = self.get(key) else { return default };
        let path = self.path.key(key);
        let Some(s) = expect_string(node, &path, diags) else { return default };
        match choices.iter().find(|c| **c == s) {
            Some(c) => c,
            None => {
                let help = match nearest(&s, choices.iter().copied()) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("expected one of: {}", choices.join(", ")),
                };
                diags.error_help(node.mark, &path, format!("unknown value `{s}`"), help);
                default
            }
        }
    }

    /// A nested mapping, read by `f`; `None` when absent or not a mapping.
    pub fn map<T>(
        &mut self,
        key: &'static str,
        diags: &mut Diagnostics,
        f: impl FnOnce(&mut MapReader<'a>, &mut Diagnostics) -> T,
    ) -> Option<T> {
        let node = self.get(key)?;
        let mut inner = MapReader::new(node, self.path.key(key), diags)?;
        let out = f(&mut inner, diags);
        inner.finish(diags);
        Some(out)
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
