//! `--set key.path=value`: change the pipeline file's tree before it is validated, so an
//! override gets exactly the same checks (and error messages) as the file itself.

use super::diagnostic::Diagnostics;
use super::node::{Key, KeyPath, Mark, Node, Origin, Value};
use super::yaml;

/// Apply every `--set` argument to `root`, in order.
pub fn apply(root: &mut Node, sets: &[String], diags: &mut Diagnostics) {
    for (i, arg) in sets.iter().enumerate() {
        let mark = Mark { origin: Origin::Set(i), line: 1, col: 1 };
        let Some((path, text)) = arg.split_once('=') else {
            diags.error(mark, &KeyPath::root(), "expected `key.path=value`");
            continue;
        };
        let keys: Vec<&str> = path.split('.').collect();
        if keys.iter().any(|k| k.trim().is_empty()) {
            diags.error(mark, &KeyPath::root(), format!("`{path}` is not a key path like `training.epochs`"));
            continue;
        }
        let value = match yaml::parse(text, Origin::Set(i)) {
            // An empty right-hand side is an empty string, not an empty mapping.
            Ok(_) if text.trim().is_empty() => Node::new(Value::Str(String::new()), mark),
            Ok(v) => Node { mark, ..v },
            Err(e) => {
                diags.error(mark, &KeyPath::root(), format!("value `{text}` is not valid YAML: {}", e.message));
                continue;
            }
        };
        set(root, &keys, value, mark, KeyPath::root(), diags);
    }
}

fn set(node: &mut Node, keys: &[&str], value: Node, mark: Mark, path: KeyPath, diags: &mut Diagnostics) {
    let Value::Map(entries) = &mut node.value else {
        diags.error(mark, &path, format!("cannot set a key inside {}", node.type_name()));
        return;
    };
    let (first, rest) = (keys[0], &keys[1..]);
    let here = path.key(first);
    let pos = match entries.iter().position(|(k, _)| k.name == first) {
        Some(p) => p,
        None => {
            let empty = Node::new(Value::Map(Vec::new()), mark);
            entries.push((Key { name: first.to_string(), mark }, empty));
            entries.len() - 1
        }
    };
    if rest.is_empty() {
        entries[pos].1 = value;
    } else {
        set(&mut entries[pos].1, rest, value, mark, here, diags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_existing_and_new_keys_with_yaml_values() {
        let mut root = yaml::parse("a: {b: 1}\n", Origin::File).unwrap();
        let mut d = Diagnostics::default();
        apply(&mut root, &["a.b=2".into(), "a.c=[x, 3]".into(), "d.e=hi".into()], &mut d);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(root.to_json(), serde_json::json!({"a": {"b": 2, "c": ["x", 3]}, "d": {"e": "hi"}}));
        assert_eq!(root.get("a").unwrap().get("b").unwrap().mark.origin, Origin::Set(0));
    }

    #[test]
    fn reports_bad_arguments() {
        let mut root = yaml::parse("a: 1\n", Origin::File).unwrap();
        let mut d = Diagnostics::default();
        apply(&mut root, &["nothing".into(), "a.b=1".into(), "x..y=1".into()], &mut d);
        assert_eq!(d.items.len(), 3, "{d:?}");
    }
}
