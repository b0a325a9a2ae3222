//! The stage key: what a stage's output depends on, hashed.
//!
//! Hashed: the key format, the stage kind and its implementation version, the resolved
//! parameters (defaults filled in), and the content digest of every input.
//! Deliberately not hashed: the stage's name, the pipeline's name or path, the cache
//! path, the thread count, timestamps. So a renamed stage, or another pipeline that
//! computes the same thing, finds the same cache entry.
//!
//! The structure is stored in every manifest, so `pipe status` can say which field
//! changed instead of just "the hash differs".

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::name_map::NameMap;

/// Bump to invalidate every cache entry (a change of what goes into keys).
pub const KEY_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageKey {
    pub format: u32,
    pub kind: String,
    pub kind_version: u32,
    pub params: Params,
    /// Input name (a workspace path, or a role such as `base`) -> blake3 digest.
    pub inputs: NameMap<String>,
}

impl StageKey {
    pub fn new(kind: &str, kind_version: u32, params: impl Into<Params>, inputs: NameMap<String>) -> StageKey {
        StageKey { format: KEY_FORMAT, kind: kind.to_string(), kind_version, params: params.into(), inputs }
    }

    /// The hex blake3 digest of the canonical form: JSON with the fields and every
    /// object's keys in sorted order and no whitespace (a plan computes one key per
    /// stage, so this builds no JSON tree).
    pub fn digest(&self) -> String {
        /// The fields in sorted order; `params` is canonical text already.
        #[derive(Serialize)]
        struct Canonical<'a> {
            format: u32,
            inputs: &'a NameMap<String>,
            kind: &'a str,
            kind_version: u32,
            params: &'a RawValue,
        }
        let canonical = Canonical {
            format: self.format,
            inputs: &self.inputs,
            kind: &self.kind,
            kind_version: self.kind_version,
            params: &self.params.0,
        };
        // Written out first and hashed at once: the serializer writes token by token,
        // and a hasher fed a few bytes at a time is several times slower.
        let mut text = Vec::with_capacity(256);
        serde_json::to_writer(&mut text, &canonical).expect("a stage key is plain data");
        blake3::hash(&text).to_hex().to_string()
    }
}

/// A stage's parameters as the canonical JSON text of the key: object keys sorted at
/// every level, no whitespace. Kept as text rather than as a JSON tree: a plan holds one
/// key per stage, and the text is a tenth of the tree's memory; it is parsed back only
/// to say which field changed.
#[derive(Clone)]
pub struct Params(Box<RawValue>);

impl Params {
    /// `serde_json::Map` keeps its keys sorted, so a value prints in canonical form.
    pub fn of(v: &serde_json::Value) -> Params {
        Params(serde_json::value::to_raw_value(v).expect("a JSON value prints as JSON"))
    }

    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).expect("canonical JSON parses")
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl From<serde_json::Value> for Params {
    fn from(v: serde_json::Value) -> Params {
        Params::of(&v)
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Read through a JSON tree, so text written with other spacing or key order (a
/// manifest edited by hand, another tool) comes back canonical.
impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Params, D::Error> {
        serde_json::Value::deserialize(d).map(|v| Params::of(&v))
    }
}

/// One field in which a stage's new key differs from the one it had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Format {
        old: u32,
        new: u32,
    },
    Kind {
        old: String,
        new: String,
    },
    Version {
        kind: String,
        old: u32,
        new: u32,
    },
    /// A parameter, by dotted path (`params.training.epochs`), as JSON text; `None`
    /// where it was or is unset.
    Param {
        path: String,
        old: Option<String>,
        new: Option<String>,
    },
    InputChanged {
        name: String,
    },
    InputRemoved {
        name: String,
    },
    InputAdded {
        name: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        match self {
            Change::Format { old, new } => write!(f, "key format: {old} -> {new}"),
            Change::Kind { old, new } => write!(f, "kind: {old} -> {new}"),
            Change::Version { kind, old, new } => write!(f, "implementation of `{kind}`: version {old} -> {new}"),
            Change::Param { path, old, new } => write!(f, "{path}: {} -> {}", shown(old), shown(new)),
            Change::InputChanged { name } => write!(f, "input {name} changed"),
            Change::InputRemoved { name } => write!(f, "input {name} removed"),
            Change::InputAdded { name } => write!(f, "input {name} added"),
        }
    }
}

/// Why `new` differs from `old`, one change per field, e.g.
/// `params.run: "echo 1" -> "echo 2"` or `input data.csv changed`.
pub fn diff(old: &StageKey, new: &StageKey) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.format != new.format {
        changes.push(Change::Format { old: old.format, new: new.format });
    }
    if old.kind != new.kind {
        changes.push(Change::Kind { old: old.kind.clone(), new: new.kind.clone() });
    } else if old.kind_version != new.kind_version {
        changes.push(Change::Version { kind: new.kind.clone(), old: old.kind_version, new: new.kind_version });
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("params", &old.params.value(), &mut a);
    flatten("params", &new.params.value(), &mut b);
    for (path, va) in &a {
        match b.get(path) {
            Some(vb) if vb == va => {}
            vb => changes.push(Change::Param { path: path.clone(), old: Some(va.clone()), new: vb.cloned() }),
        }
    }
    for (path, vb) in &b {
        if !a.contains_key(path) {
            changes.push(Change::Param { path: path.clone(), old: None, new: Some(vb.clone()) });
        }
    }
    for (name, da) in &old.inputs {
        match new.inputs.get(name) {
            Some(db) if db == da => {}
            Some(_) => changes.push(Change::InputChanged { name: name.clone() }),
            None => changes.push(Change::InputRemoved { name: name.clone() }),
        }
    }
    for name in new.inputs.keys() {
        if !old.inputs.contains_key(name) {
            changes.push(Change::InputAdded { name: name.clone() });
        }
    }
    changes
}

/// Leaves of a JSON tree by dotted path; lists are leaves (shown whole).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// The canonical form spelled out: object keys sorted at every level, no
    /// whitespace. `StageKey::digest` must hash exactly this text.
    fn canonical(v: &serde_json::Value, out: &mut String) {
        use serde_json::Value as J;
        match v {
            J::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}:", J::String(k.clone()));
                    canonical(&map[k], out);
                }
                out.push('}');
            }
            J::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
    use serde_json::json;

    /// `k` with its parameters changed by `f`.
    fn edit(k: &mut StageKey, f: impl FnOnce(&mut serde_json::Value)) {
        let mut v = k.params.value();
        f(&mut v);
        k.params = v.into();
    }

    fn key() -> StageKey {
        let inputs = NameMap::from([("data.csv".to_string(), "ab".repeat(32))]);
        StageKey::new("cmd", 1, json!({"run": "echo 1", "outs": ["o.txt"], "env": {"A": "1", "B": "2"}}), inputs)
    }

    /// Changing this value means every user's cache entries stop matching: do it only
    /// on purpose, together with `KEY_FORMAT` or a kind's version.
    #[test]
    fn canonical_form() {
        let mut text = String::new();
        canonical(&serde_json::to_value(key()).unwrap(), &mut text);
        assert_eq!(
            text,
            format!(
                "{{\"format\":1,\"inputs\":{{\"data.csv\":\"{}\"}},\"kind\":\"cmd\",\"kind_version\":1,\
                 \"params\":{{\"env\":{{\"A\":\"1\",\"B\":\"2\"}},\"outs\":[\"o.txt\"],\"run\":\"echo 1\"}}}}",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn the_digest_hashes_the_canonical_text() {
        let mut k = key();
        k.params = json!({"z": [1.5, -2, "\u{1}é\"", null, true], "a": {"y": {}, "b": []}, "m": 1e300}).into();
        let mut text = String::new();
        canonical(&serde_json::to_value(&k).unwrap(), &mut text);
        assert_eq!(k.digest(), blake3::hash(text.as_bytes()).to_hex().to_string());
    }

    #[test]
    fn params_read_back_from_any_spelling_are_the_canonical_text() {
        let k = key();
        let spaced = r#"{"format": 1, "kind": "cmd", "kind_version": 1, "inputs": {"data.csv": "X"},
            "params": {"run": "echo 1", "outs": ["o.txt"], "env": {"B": "2", "A": "1"}}}"#;
        let back: StageKey = serde_json::from_str(&spaced.replace('X', &"ab".repeat(32))).unwrap();
        assert_eq!(back.params.as_str(), r#"{"env":{"A":"1","B":"2"},"outs":["o.txt"],"run":"echo 1"}"#);
        assert_eq!((back.digest(), back), (k.digest(), k.clone()));
        // Written out as the same JSON object, not as a string holding JSON.
        let written = serde_json::to_value(&k).unwrap();
        assert_eq!(written["params"], k.params.value());
    }

    #[test]
    fn golden_key() {
        assert_eq!(key().digest(), "89def2bfaa003c8ea81c8a9462cec142052872d66823ede0f72d67c375a3152a");
    }

    #[test]
    fn map_order_does_not_matter() {
        let mut k = key();
        k.params = json!({"env": {"B": "2", "A": "1"}, "outs": ["o.txt"], "run": "echo 1"}).into();
        assert_eq!(k.digest(), key().digest());
    }

    #[test]
    fn every_field_matters() {
        let base = key().digest();
        let mut variants = Vec::new();
        let mut k = key();
        k.format += 1;
        variants.push(k);
        let mut k = key();
        k.kind = "train".into();
        variants.push(k);
        let mut k = key();
        k.kind_version = 2;
        variants.push(k);
        let mut k = key();
        edit(&mut k, |p| p["run"] = json!("echo 2"));
        variants.push(k);
        let mut k = key();
        edit(&mut k, |p| p["env"]["A"] = json!("3"));
        variants.push(k);
        let mut k = key();
        edit(&mut k, |p| p["outs"] = json!(["p.txt"]));
        variants.push(k);
        let mut k = key();
        k.inputs.insert("data.csv".into(), "cd".repeat(32));
        variants.push(k);
        let mut k = key();
        k.inputs.insert("other".into(), "cd".repeat(32));
        variants.push(k);
        let mut k = key();
        edit(&mut k, |p| p["run"] = json!(1));
        variants.push(k);
        let mut digests: Vec<String> = variants.iter().map(StageKey::digest).collect();
        assert!(!digests.contains(&base));
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), variants.len());
    }

    #[test]
    fn diff_names_fields() {
        let mut new = key();
        edit(&mut new, |p| p["run"] = json!("echo 2"));
        edit(&mut new, |p| p["env"]["C"] = json!("x"));
        new.inputs.insert("data.csv".into(), "cd".repeat(32));
        new.kind_version = 2;
        assert_eq!(
            diff(&key(), &new).iter().map(Change::to_string).collect::<Vec<_>>(),
            vec![
                "implementation of `cmd`: version 1 -> 2",
                "params.run: \"echo 1\" -> \"echo 2\"",
                "params.env.C: (unset) -> \"x\"",
                "input data.csv changed",
            ]
        );
    }
}
