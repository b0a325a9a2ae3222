//! `${var}` in stage parameters, filled in from the stage's matrix values.
//!
//! A string that is exactly `${var}` takes the variable's value with its type (so
//! `n: "${n}"` gives an integer); inside a longer string the value is spliced as text.
//! `$${` writes a literal `${`, for shell commands that use `${VAR}` themselves.
//! `${env:NAME}` takes the environment variable NAME (an error when it is not set), so a
//! pipeline can find data where each user keeps it.

use std::collections::BTreeMap;

use super::diagnostic::Diagnostics;
use super::node::{At, KeyPath, Node, Value};
use super::suggest::nearest;

pub type Vars = BTreeMap<String, Node>;

/// A copy of `node` with every `${var}` replaced.
pub fn interpolate(node: &Node, vars: &Vars, path: &KeyPath, diags: &mut Diagnostics) -> Node {
    fill(node, vars, &At::Root(path), diags)
}

fn fill(node: &Node, vars: &Vars, at: &At<'_>, diags: &mut Diagnostics) -> Node {
    match &node.value {
        Value::Str(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                && let Some(v) = vars.get(name)
            {
                return Node { mark: node.mark, ..v.clone() };
            }
            match splice(s, vars) {
                Ok(text) => Node::new(Value::Str(text), node.mark),
                Err(name) if name.starts_with("env:") => {
                    let var = &name[4..];
                    let path = at.path();
                    diags.error_help(
                        node.mark,
                        &path,
                        format!("environment variable `{var}` is not set"),
                        format!("set it (`export {var}=...`) or give the value with `--set {}=...`", path.as_str()),
                    );
                    node.clone()
                }
                Err(name) => {
                    let help = match nearest(&name, vars.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `${{{s}}}`? (write `$${{` for a literal `${{`)"),
                        None if vars.is_empty() => {
                            "this stage has no matrix variables; write `$${` for a literal `${`".to_string()
                        }
                        None => format!(
                            "variables here: {}; write `$${{` for a literal `${{`",
                            vars.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    };
                    diags.error_help(node.mark, &at.path(), format!("unknown variable `{name}` in `{s}`"), help);
                    node.clone()
                }
            }
        }
        Value::Seq(items) => Node::new(
            Value::Seq(items.iter().enumerate().map(|(i, n)| fill(n, vars, &At::Index(at, i), diags)).collect()),
            node.mark,
        ),
        Value::Map(entries) => Node::new(
            Value::Map(entries.iter().map(|(k, v)| (k.clone(), fill(v, vars, &At::Key(at, &k.name), diags))).collect()),
            node.mark,
        ),
        _ => node.clone(),
    }
}

/// Splice variables into text; `Err(name)` for the first unknown one.
fn splice(s: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push_str("${");
                rest = body;
                continue;
            };
            let name = &body[..end];
            if let Some(var) = name.strip_prefix("env:") {
                let value = std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| name.to_string())?;
                out.push_str(&value);
            } else {
                let value = vars.get(name).ok_or_else(|| name.to_string())?;
                out.push_str(&value.scalar_text().unwrap_or_else(|| value.to_json().to_string()));
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::{Mark, Origin};
    use crate::config::yaml::parse;

    fn vars() -> Vars {
        let v = parse("n: 3\nhalf: A\n", Origin::File).unwrap();
        let Value::Map(entries) = v.value else { panic!() };
        entries.into_iter().map(|(k, v)| (k.name, v)).collect()
    }

    #[test]
    fn typed_whole_and_spliced_parts() {
        let node = parse("a: '${n}'\nb: 'run ${half} $n $${HOME} ${n}x'\n", Origin::File).unwrap();
        let mut d = Diagnostics::default();
        let out = interpolate(&node, &vars(), &KeyPath::root(), &mut d);
        assert!(d.is_empty());
        assert_eq!(out.to_json(), serde_json::json!({"a": 3, "b": "run A $n ${HOME} 3x"}));
    }

    #[test]
    fn unknown_variable_suggests() {
        let node = Node::new(Value::Str("x ${hafl}".into()), Mark::file(1, 1));
        let mut d = Diagnostics::default();
        interpolate(&node, &vars(), &KeyPath::root(), &mut d);
        assert_eq!(d.items.len(), 1);
        assert!(d.items[0].help.as_deref().unwrap().contains("${half}"));
    }
}
