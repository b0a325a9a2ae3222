//! A stage's parameters read into a kind's own serde struct, with every problem found
//! at once and reported at its line, column and key path.
//!
//! A kind declares its parameters once, as a `#[derive(Deserialize)]` struct (defaults,
//! enums for choices, `deny_unknown_fields`), and reads it with [`Params::read`]. The
//! reader is a serde `Deserializer` over the positioned YAML tree, so:
//!
//! - a value of the wrong type, a missing key, an unknown key (with the nearest known
//!   one as a suggestion) or an unknown choice is reported where it is written;
//! - reading goes on after a problem: a value that failed is left out and the struct
//!   is read again, until nothing new fails, so one run reports every problem;
//! - a single value where a list is expected counts as a list of one
//!   (`deps: data.csv`);
//! - [`Located`] gives a value's position, for stage references checked later.
//!
//! Checks that span several fields stay in the kind, reported with [`Params::problem`].
//!
//! The tree is walked with a loop per mapping or list and the parser limits nesting
//! (see [`super::yaml`]), so no file can drive the recursion past that depth.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::diagnostic::{Diagnostic, Diagnostics};
pub use super::node::Mark;
use super::node::{At, KeyPath, Node, Origin, Value};
use super::suggest::nearest;

/// One stage's parameters, as its kind reads them.
pub struct Params<'a> {
    node: &'a Node,
    path: &'a KeyPath,
    diags: &'a mut Diagnostics,
}

impl<'a> Params<'a> {
    pub fn new(node: &'a Node, path: &'a KeyPath, diags: &'a mut Diagnostics) -> Params<'a> {
        Params { node, path, diags }
    }

    /// The whole mapping as `T`. Every problem is recorded; `None` when a value could
    /// not be read (an unknown key alone still gives the value, so that the kind's own
    /// checks run and report beside it).
    pub fn read<T: DeserializeOwned>(&mut self) -> Option<T> {
        read_node(self.node, self.path, &[], self.diags)
    }

    /// As [`Params::read`], with the keys `besides` read elsewhere (by
    /// [`Params::field`]) and so left out of `T`.
    pub fn read_besides<T: DeserializeOwned>(&mut self, besides: &'static [&'static str]) -> Option<T> {
        read_node(self.node, self.path, besides, self.diags)
    }

    /// The value under `key` as `T`; `None` when absent or not readable (recorded).
    /// For a setting that decides which struct reads the rest (a dataset's `source`).
    pub fn field<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let node = self.node.get(key)?;
        read_node(node, &self.path.key(key), &[], self.diags)
    }

    /// Whether `key` is written.
    pub fn has(&self, key: &str) -> bool {
        self.node.get(key).is_some()
    }

    /// A problem with the field at `field` (`n`, `training.epochs`, `outs[1]`; `""` for
    /// the stage's parameters as a whole), shown where that field is written, or where
    /// its nearest written parent is.
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        let (mark, path) = self.locate(field);
        self.diags.error(mark, &path, message);
    }

    pub fn problem_help(&mut self, field: &str, message: impl Into<String>, help: impl Into<String>) {
        let (mark, path) = self.locate(field);
        self.diags.error_help(mark, &path, message, help);
    }

    fn locate(&self, field: &str) -> (Mark, KeyPath) {
        let mut node = Some(self.node);
        let mut mark = self.node.mark;
        let mut path = self.path.clone();
        for segment in field.split('.').filter(|s| !s.is_empty()) {
            let (name, index) = match segment.split_once('[') {
                Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (segment, None),
            };
            if !name.is_empty() {
                path = path.key(name);
                node = node.and_then(|n| n.get(name));
            }
            if let Some(i) = index {
                path = path.index(i);
                node = node.and_then(|n| match &n.value {
                    Value::Seq(items) => items.get(i),
                    _ => None,
                });
            }
            if let Some(n) = node {
                mark = n.mark;
            }
        }
        (mark, path)
    }
}

/// A value with where it was written: its position and, inside a list, its index.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub mark: Mark,
    pub index: Option<usize>,
}

/// An error message with a suggestion, from a kind's own `Deserialize` (a layer that
/// does not parse, with the layer syntax as help).
pub fn error_with_help<E: de::Error>(message: impl fmt::Display, help: impl fmt::Display) -> E {
    E::custom(format!("{message}{HELP_SEPARATOR}{help}"))
}

const HELP_SEPARATOR: char = '\u{1f}';

/// The name under which [`Located`] asks this deserializer for a value's position.
const LOCATED: &str = "$pipe::Located";
const LOCATED_FIELDS: &[&str] = &["line", "col", "set", "index", "value"];

fn read_node<T: DeserializeOwned>(
    node: &Node,
    path: &KeyPath,
    besides: &'static [&'static str],
    diags: &mut Diagnostics,
) -> Option<T> {
    let state = RefCell::new(State::default());
    let root = At::Root(path);
    let value = loop {
        let before = state.borrow().poisoned.len();
        let de = De { node, at: &root, index: None, besides, state: &state };
        match guarded(node, &root, &state, T::deserialize(de)) {
            Ok(v) => break Some(v),
            // Each failed pass leaves out at least one more value; a pass that leaves
            // out nothing new, or the whole mapping, is the last.
            Err(_) => {
                let s = state.borrow();
                if s.poisoned.len() == before || s.poisoned.contains(&id(node)) {
                    break None;
                }
            }
        }
    };
    let state = state.into_inner();
    diags.items.extend(state.found);
    if state.poisoned.is_empty() { value } else { None }
}

#[derive(Default)]
struct State {
    /// Values that failed, by address: left out of the next pass.
    poisoned: HashSet<usize>,
    found: Vec<Diagnostic>,
    seen: HashSet<(Mark, String)>,
}

fn id(node: &Node) -> usize {
    node as *const Node as usize
}

fn record(state: &RefCell<State>, mark: Mark, at: &At<'_>, message: String) {
    let (message, help) = match message.split_once(HELP_SEPARATOR) {
        Some((m, h)) => (m.to_string(), Some(h.to_string())),
        None => (message, None),
    };
    let mut s = state.borrow_mut();
    if s.seen.insert((mark, message.clone())) {
        s.found.push(Diagnostic { mark, path: at.path(), message, help });
    }
}

/// What went wrong while reading a value.
#[derive(Debug)]
pub enum Error {
    /// Already recorded where it happened; the value it was in is left out.
    Recorded,
    Message(String),
    /// The expected type, in the visitor's words.
    Mismatch(String),
    Missing(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Recorded => f.write_str("invalid parameters"),
            Error::Message(m) => f.write_str(m),
            Error::Mismatch(e) => write!(f, "expected {e}"),
            Error::Missing(k) => write!(f, "missing required key `{k}`"),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error::Message(msg.to_string())
    }

    fn invalid_type(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> Error {
        Error::Mismatch(expected.to_string())
    }

    fn missing_field(field: &'static str) -> Error {
        Error::Missing(field)
    }
}

/// A result for `node`: a new problem is recorded at it and the node is left out of
/// the next pass.
fn guarded<T>(node: &Node, at: &At<'_>, state: &RefCell<State>, r: Result<T, Error>) -> Result<T, Error> {
    // A value with parts left out cannot be judged as a whole: its parts' problems
    // are the ones to fix. A key that is not written at all is a problem of its own.
    let whole = || !has_left_out_part(node, &state.borrow().poisoned);
    let (message, judged) = match r {
        Ok(v) => return Ok(v),
        Err(Error::Recorded) => return Err(Error::Recorded),
        Err(Error::Message(m)) => (m, whole()),
        Err(Error::Mismatch(expected)) => (format!("expected {expected}, found {}", found(node)), whole()),
        Err(Error::Missing(key)) => {
            // A key that was written but failed is reported already.
            let left_out = node.get(key).is_some_and(|v| state.borrow().poisoned.contains(&id(v)));
            (format!("missing required key `{key}`"), !left_out)
        }
    };
    if judged {
        record(state, node.mark, at, message);
    }
    state.borrow_mut().poisoned.insert(id(node));
    Err(Error::Recorded)
}

/// Whether a value under `node` was left out, walked with a stack (no recursion).
fn has_left_out_part(node: &Node, poisoned: &HashSet<usize>) -> bool {
    let mut stack: Vec<&Node> = vec![node];
    while let Some(n) = stack.pop() {
        match &n.value {
            Value::Seq(items) => stack.extend(items),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
        if !std::ptr::eq(n, node) && poisoned.contains(&id(n)) {
            return true;
        }
    }
    false
}

/// How a problem names what it found: a scalar by its text, anything else by type.
fn found(node: &Node) -> String {
    match &node.value {
        Value::Seq(_) | Value::Map(_) | Value::Null => node.type_name().to_string(),
        // `8.0`, not `8`: what was written is a number with a fraction.
        Value::Float(f) => format!("`{f:?}`"),
        _ => node.scalar_text().map_or_else(|| node.type_name().to_string(), |t| format!("`{t}`")),
    }
}

#[derive(Clone, Copy)]
struct De<'a, 'p> {
    node: &'a Node,
    at: &'p At<'p>,
    index: Option<usize>,
    /// Keys of this mapping that are read elsewhere.
    besides: &'static [&'static str],
    state: &'p RefCell<State>,
}

impl<'a, 'p> De<'a, 'p> {
    /// A value of the wrong type, named by its text when it is a scalar.
    fn mismatch<T>(&self, expected: &str) -> Result<T, Error> {
        self.fail(format!("expected {expected}, found {}", found(self.node)))
    }

    /// A problem of this value: recorded, and the value left out of the next pass.
    fn fail<T>(&self, message: String) -> Result<T, Error> {
        record(self.state, self.node.mark, self.at, message);
        self.state.borrow_mut().poisoned.insert(id(self.node));
        Err(Error::Recorded)
    }

    fn guard<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        guarded(self.node, self.at, self.state, r)
    }

    fn uint(&self) -> Option<u64> {
        match self.node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            _ => None,
        }
    }
}

macro_rules! unsigned {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.uint() {
                Some(u) => self.guard(visitor.visit_u64(u)),
                None => self.mismatch("a non-negative integer"),
            }
        }
    )*};
}

macro_rules! signed {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.node.value {
                Value::Int(i) => self.guard(visitor.visit_i64(i)),
                _ => self.mismatch("an integer"),
            }
        }
    )*};
}

macro_rules! float {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.node.value {
                Value::Float(f) if f.is_finite() => self.guard(visitor.visit_f64(f)),
                Value::Int(i) => self.guard(visitor.visit_f64(i as f64)),
                _ => self.mismatch("a number"),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(Seq::new(items, self.at, self.state)),
            Value::Map(entries) => visitor.visit_map(Map::new(entries, None, self.at, self.state)),
        };
        self.guard(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Bool(b) => self.guard(visitor.visit_bool(b)),
            _ => self.mismatch("true or false"),
        }
    }

    unsigned!(deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);
    signed!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128);
    float!(deserialize_f32 deserialize_f64);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Str(s) => self.guard(visitor.visit_str(s)),
            _ => self.mismatch_type("a string"),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Null => self.guard(visitor.visit_none()),
            _ => self.guard(visitor.visit_some(self)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Null => self.guard(visitor.visit_unit()),
            _ => self.mismatch_type("null"),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.guard(visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(items) => self.guard(visitor.visit_seq(Seq::new(items, self.at, self.state))),
            Value::Null => self.mismatch_type("a list"),
            // A single value is a list of one.
            _ => self.guard(visitor.visit_seq(Seq::new(std::slice::from_ref(self.node), self.at, self.state))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(items) if items.len() == len => {
                self.guard(visitor.visit_seq(Seq::new(items, self.at, self.state)))
            }
            _ => self.mismatch_type(&format!("a list of {len} values")),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(entries) => self.guard(visitor.visit_map(Map::new(entries, None, self.at, self.state))),
            _ => self.mismatch_type("a mapping"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == LOCATED {
            let at = Where { de: self, step: 0 };
            return visitor.visit_map(at);
        }
        match &self.node.value {
            Value::Map(entries) => {
                let mut map = Map::new(entries, Some(fields), self.at, self.state);
                map.besides = self.besides;
                self.guard(visitor.visit_map(map))
            }
            _ => self.mismatch_type("a mapping"),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (tag, content) = match &self.node.value {
            Value::Str(s) => (s.as_str(), None),
            Value::Map(entries) if entries.len() == 1 => (entries[0].0.name.as_str(), Some(&entries[0].1)),
            _ => return self.mismatch_type(&format!("one of: {}", variants.join(", "))),
        };
        if !variants.contains(&tag) {
            let help = match nearest(tag, variants.iter().copied()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("expected one of: {}", variants.join(", ")),
            };
            return self.guard(Err(error_with_help(format!("unknown value `{tag}`"), help)));
        }
        let r = visitor.visit_enum(Variant { tag, content, at: self.at, state: self.state });
        // Settings that failed leave the whole value out next time (its variant cannot be
        // read without them).
        if r.is_err() && content.is_some_and(|c| self.state.borrow().poisoned.contains(&id(c))) {
            self.state.borrow_mut().poisoned.insert(id(self.node));
        }
        self.guard(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

impl De<'_, '_> {
    /// A type mismatch named by type alone ("found a list"), as for containers.
    fn mismatch_type<T>(&self, expected: &str) -> Result<T, Error> {
        self.fail(format!("expected {expected}, found {}", self.node.type_name()))
    }
}

/// The items of a list, those that failed in an earlier pass left out.
struct Seq<'a, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    at: &'p At<'p>,
    state: &'p RefCell<State>,
}

impl<'a, 'p> Seq<'a, 'p> {
    fn new(items: &'a [Node], at: &'p At<'p>, state: &'p RefCell<State>) -> Seq<'a, 'p> {
        Seq { items: items.iter().enumerate(), at, state }
    }
}

impl<'de> de::SeqAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some((i, node)) = self.items.find(|(_, n)| !self.state.borrow().poisoned.contains(&id(n))) else {
            return Ok(None);
        };
        let at = At::Index(self.at, i);
        let de = De { node, at: &at, index: Some(i), besides: &[], state: self.state };
        guarded(node, &at, self.state, seed.deserialize(de)).map(Some)
    }
}

/// The entries of a mapping. For a struct (`fields` known), a key it does not know is
/// reported with the nearest known one and skipped; values that failed in an earlier
/// pass are left out, as if not written.
struct Map<'a, 'p> {
    entries: std::slice::Iter<'a, (super::node::Key, Node)>,
    fields: Option<&'static [&'static str]>,
    besides: &'static [&'static str],
    value: Option<(&'a str, &'a Node)>,
    at: &'p At<'p>,
    state: &'p RefCell<State>,
}

impl<'a, 'p> Map<'a, 'p> {
    fn new(
        entries: &'a [(super::node::Key, Node)],
        fields: Option<&'static [&'static str]>,
        at: &'p At<'p>,
        state: &'p RefCell<State>,
    ) -> Map<'a, 'p> {
        Map { entries: entries.iter(), fields, besides: &[], value: None, at, state }
    }
}

impl<'de> de::MapAccess<'de> for Map<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        for (key, node) in self.entries.by_ref() {
            if self.besides.contains(&key.name.as_str()) {
                continue;
            }
            if let Some(fields) = self.fields
                && !fields.contains(&key.name.as_str())
            {
                let help = match nearest(&key.name, fields.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of: {}", fields.join(", ")),
                };
                let at = At::Key(self.at, &key.name);
                record(self.state, key.mark, &at, format!("unknown key `{}`{HELP_SEPARATOR}{help}", key.name));
                continue;
            }
            if self.state.borrow().poisoned.contains(&id(node)) {
                continue;
            }
            self.value = Some((&key.name, node));
            let name: de::value::StrDeserializer<'_, Error> = key.name.as_str().into_deserializer();
            return seed.deserialize(name).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (name, node) = self.value.take().expect("a value follows its key");
        let at = At::Key(self.at, name);
        let de = De { node, at: &at, index: None, besides: &[], state: self.state };
        guarded(node, &at, self.state, seed.deserialize(de))
    }
}

/// An enum's variant: a unit variant by its name, or `{variant: content}`.
struct Variant<'a, 'p> {
    tag: &'a str,
    content: Option<&'a Node>,
    at: &'p At<'p>,
    state: &'p RefCell<State>,
}

impl<'de, 'a, 'p> de::EnumAccess<'de> for Variant<'a, 'p> {
    type Error = Error;
    type Variant = Variant<'a, 'p>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), Error> {
        let tag: de::value::StrDeserializer<'_, Error> = self.tag.into_deserializer();
        Ok((seed.deserialize(tag)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None | Some(Node { value: Value::Null, .. }) => Ok(()),
            Some(_) => Err(Error::Message(format!("`{}` takes no settings", self.tag))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let node = self.content.ok_or_else(|| Error::Message(format!("`{}` needs a value", self.tag)))?;
        let at = At::Key(self.at, self.tag);
        let de = De { node, at: &at, index: None, besides: &[], state: self.state };
        guarded(node, &at, self.state, seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let node = self.content.ok_or_else(|| Error::Message(format!("`{}` needs a list", self.tag)))?;
        let at = At::Key(self.at, self.tag);
        let de = De { node, at: &at, index: None, besides: &[], state: self.state };
        de::Deserializer::deserialize_tuple(de, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        let node = self.content.ok_or_else(|| Error::Message(format!("`{}` needs a mapping", self.tag)))?;
        let at = At::Key(self.at, self.tag);
        let de = De { node, at: &at, index: None, besides: &[], state: self.state };
        de::Deserializer::deserialize_struct(de, "", fields, visitor)
    }
}

/// The entries [`Located`] reads: the position, then the value itself.
struct Where<'a, 'p> {
    de: De<'a, 'p>,
    step: usize,
}

impl<'de> de::MapAccess<'de> for Where<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(name) = LOCATED_FIELDS.get(self.step) else { return Ok(None) };
        let name: de::value::StrDeserializer<'_, Error> = (*name).into_deserializer();
        seed.deserialize(name).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let mark = self.de.node.mark;
        let step = self.step;
        self.step += 1;
        let number = |n: i64| seed_i64(n);
        match step {
            0 => seed.deserialize(number(mark.line as i64)),
            1 => seed.deserialize(number(mark.col as i64)),
            2 => seed.deserialize(number(match mark.origin {
                Origin::File => -1,
                Origin::Set(i) => i as i64,
            })),
            3 => seed.deserialize(number(self.de.index.map_or(-1, |i| i as i64))),
            _ => seed.deserialize(self.de),
        }
    }
}

fn seed_i64(n: i64) -> de::value::I64Deserializer<Error> {
    n.into_deserializer()
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Located<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Located<T>, D::Error> {
        deserializer.deserialize_struct(LOCATED, LOCATED_FIELDS, LocatedVisitor(std::marker::PhantomData))
    }
}

struct LocatedVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value read from a pipeline file")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Located<T>, A::Error> {
        let mut numbers = [0i64; 4];
        for n in &mut numbers {
            map.next_key::<de::IgnoredAny>()?;
            *n = map.next_value()?;
        }
        map.next_key::<de::IgnoredAny>()?;
        let value = map.next_value()?;
        let [line, col, set, index] = numbers;
        let origin = if set < 0 { Origin::File } else { Origin::Set(set as usize) };
        let mark = Mark { origin, line: line as usize, col: col as usize };
        Ok(Located { value, mark, index: usize::try_from(index).ok() })
    }
}

/// A scalar setting as text (`env: {SEED: 3}` gives `"3"`): anything but null, a list
/// or a mapping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct PlainText(pub String);

impl<'de> de::Deserialize<'de> for PlainText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<PlainText, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PlainText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a plain value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<PlainText, E> {
                Ok(PlainText(b.to_string()))
            }
            fn visit_i64<E>(self, i: i64) -> Result<PlainText, E> {
                Ok(PlainText(i.to_string()))
            }
            fn visit_u64<E>(self, u: u64) -> Result<PlainText, E> {
                Ok(PlainText(u.to_string()))
            }
            fn visit_f64<E>(self, f: f64) -> Result<PlainText, E> {
                Ok(PlainText(f.to_string()))
            }
            fn visit_str<E>(self, s: &str) -> Result<PlainText, E> {
                Ok(PlainText(s.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::config::diagnostic::{Sources, render};
    use crate::config::yaml;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default = "three")]
        count: u64,
        #[serde(default)]
        mode: Mode,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, PlainText>,
    }

    fn three() -> u64 {
        3
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        rate: f64,
        #[serde(default)]
        flip: bool,
        at: Option<Located<String>>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Fast,
        SlowAndSteady,
    }

    fn read(text: &str) -> (Option<Outer>, String) {
        let node = yaml::parse(text, Origin::File).unwrap();
        let mut diags = Diagnostics::default();
        let path = KeyPath::root().key("stages").key("s").key("kind");
        let value = Params::new(&node, &path, &mut diags).read::<Outer>();
        let file = std::path::Path::new("p.yaml");
        let shown =
            if diags.is_empty() { String::new() } else { render(&diags.items, &Sources { file, text, sets: &[] }) };
        (value, shown)
    }

    #[test]
    fn a_good_mapping_reads_with_defaults() {
        let (v, shown) = read("name: x\ntags: one\nenv: {A: 1, B: true}\ninner: {rate: 2, at: here}\n");
        assert_eq!(shown, "");
        let v = v.unwrap();
        assert_eq!((v.name.as_str(), v.count, &v.mode, &v.tags), ("x", 3, &Mode::Fast, &vec!["one".to_string()]));
        assert_eq!(v.env["A"], PlainText("1".into()));
        assert_eq!(v.env["B"], PlainText("true".into()));
        let inner = v.inner.unwrap();
        assert_eq!(inner.rate, 2.0);
        let at = inner.at.unwrap();
        assert_eq!((at.value.as_str(), at.mark.line, at.mark.col, at.index), ("here", 4, 22, None));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "naem: x\ncount: -1\nmode: slow_and_stedy\ninner: {flip: 3}\ntags: [a, [b], c, {d: 1}]\n\
                    env: {A: [1]}\n";
        let (v, shown) = read(text);
        assert!(v.is_none());
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn an_unknown_key_alone_still_gives_the_value() {
        let (v, shown) = read("name: x\ncuont: 4\n");
        assert_eq!(v.map(|v| v.count), Some(3));
        assert!(shown.contains("unknown key `cuont`") && shown.contains("did you mean `count`?"), "{shown}");
    }

    #[test]
    fn wrong_types_name_what_was_found() {
        let (_, shown) = read("name: [x]\ncount: 1.5\ninner: {rate: fast}\n");
        assert!(shown.contains("expected a string, found a list"), "{shown}");
        assert!(shown.contains("expected a non-negative integer, found `1.5`"), "{shown}");
        assert!(shown.contains("expected a number, found `fast`"), "{shown}");
        assert!(shown.contains("key: stages.s.kind.inner.rate"), "{shown}");
    }

    #[test]
    fn a_problem_is_placed_at_its_field() {
        let node = yaml::parse("a: 1\nb: {c: [x, y]}\n", Origin::File).unwrap();
        let path = KeyPath::root().key("k");
        let mut diags = Diagnostics::default();
        let mut p = Params::new(&node, &path, &mut diags);
        p.problem("b.c[1]", "bad");
        p.problem("b.d", "absent");
        let d = &diags.items;
        assert_eq!((d[0].mark.line, d[0].mark.col, d[0].path.as_str()), (2, 12, "k.b.c[1]"));
        assert_eq!((d[1].mark.line, d[1].mark.col, d[1].path.as_str()), (2, 4, "k.b.d"));
    }
}
