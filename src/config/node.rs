//! The YAML document as a tree of values that remember where they came from.
//!
//! Validation walks this tree instead of deserializing straight into structs, so it can
//! report every problem at once, each with its line, column and key path.

use std::fmt;

/// Where a node came from: the pipeline file, or one `--set` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    File,
    /// Index into the list of `--set` arguments.
    Set(usize),
}

/// A position: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mark {
    pub origin: Origin,
    pub line: usize,
    pub col: usize,
}

impl Mark {
    pub fn file(line: usize, col: usize) -> Mark {
        Mark { origin: Origin::File, line, col }
    }
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys keep their order and their own positions.
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub mark: Mark,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

impl Node {
    pub fn new(value: Value, mark: Mark) -> Node {
        Node { value, mark }
    }

    /// The name of the value's type, as error messages say it.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar as text, for interpolation and stage names; `None` for lists and maps.
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => return None,
        })
    }

    /// Plain JSON, for parameters that enter a stage key.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }

    /// Merge `over` onto `self`: mappings merge key by key, anything else is replaced.
    /// This is how a stage's own settings override the pipeline-wide defaults.
    pub fn merged(&self, over: &Node) -> Node {
        match (&self.value, &over.value) {
            (Value::Map(base), Value::Map(top)) => {
                let mut out = base.clone();
                for (k, v) in top {
                    match out.iter_mut().find(|(ok, _)| ok.name == k.name) {
                        Some((ok, ov)) => {
                            *ov = ov.merged(v);
                            ok.mark = k.mark;
                        }
                        None => out.push((k.clone(), v.clone())),
                    }
                }
                Node::new(Value::Map(out), over.mark)
            }
            _ => over.clone(),
        }
    }
}

/// A key path such as `stages.base.train.epochs` or `stages.split.cmd.deps[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(String);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(String::new())
    }

    pub fn key(&self, name: &str) -> KeyPath {
        if self.0.is_empty() { KeyPath(name.to_string()) } else { KeyPath(format!("{}.{}", self.0, name)) }
    }

    pub fn index(&self, i: usize) -> KeyPath {
        KeyPath(format!("{}[{}]", self.0, i))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path from the segment `name` on (`stages.b.train.training.lr` ->
    /// `training.lr` for `training`), or None when no segment is `name`.
    pub fn from_segment(&self, name: &str) -> Option<KeyPath> {
        let s = self.0.as_str();
        let mut at = 0;
        while let Some(i) = s[at..].find(name).map(|i| i + at) {
            let starts = i == 0 || s.as_bytes()[i - 1] == b'.';
            let end = i + name.len();
            let ends = end == s.len() || matches!(s.as_bytes()[end], b'.' | b'[');
            if starts && ends {
                return Some(KeyPath(s[i..].to_string()));
            }
            at = i + 1;
        }
        None
    }
}

/// Where a node lies, spelled out only when a problem is reported: every instance of a
/// large matrix visits every node of its parameters, and almost never has anything to
/// report.
pub enum At<'a> {
    Root(&'a KeyPath),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    pub fn path(&self) -> KeyPath {
        match self {
            At::Root(p) => (*p).clone(),
            At::Key(parent, k) => parent.path().key(k),
            At::Index(parent, i) => parent.path().index(*i),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("(top level)") } else { f.write_str(&self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_from_a_segment() {
        let p = KeyPath::root().key("stages").key("trainer").key("train").key("training").key("lr");
        assert_eq!(p.from_segment("training").unwrap().as_str(), "training.lr");
        assert_eq!(p.from_segment("train").unwrap().as_str(), "train.training.lr");
        assert!(p.from_segment("rain").is_none());
        let q = KeyPath::root().key("network").key("layers").index(2);
        assert_eq!(q.from_segment("layers").unwrap().as_str(), "layers[2]");
    }

    fn map(entries: Vec<(&str, Node)>) -> Node {
        let m = Mark::file(1, 1);
        Node::new(Value::Map(entries.into_iter().map(|(k, v)| (Key { name: k.into(), mark: m }, v)).collect()), m)
    }

    fn int(i: i64) -> Node {
        Node::new(Value::Int(i), Mark::file(1, 1))
    }

    #[test]
    fn merge_overrides_leaves_and_keeps_the_rest() {
        let base = map(vec![("a", int(1)), ("b", map(vec![("x", int(2)), ("y", int(3))]))]);
        let over = map(vec![("b", map(vec![("y", int(30))])), ("c", int(4))]);
        let m = base.merged(&over).to_json();
        assert_eq!(m, serde_json::json!({"a": 1, "b": {"x": 2, "y": 30}, "c": 4}));
    }

    #[test]
    fn key_paths_read_like_yaml() {
        let p = KeyPath::root().key("stages").key("split").key("deps").index(2);
        assert_eq!(p.as_str(), "stages.split.deps[2]");
        assert_eq!(KeyPath::root().to_string(), "(top level)");
    }
}
