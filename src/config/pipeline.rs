//! Validation: the YAML tree becomes a typed pipeline of expanded stages.
//!
//! ```yaml
//! name: demo                  # optional; defaults to the file's stem
//! env: {PYTHONHASHSEED: 0}    # a section: pipeline-wide defaults for kinds that read it
//! stages:
//!   NAME:
//!     KIND: {params...}       # exactly one kind key (cmd, ...)
//!     matrix: {var: [v1, v2]} # optional: one stage per combination, named NAME[var=v1]
//! seeds: 3                    # optional: a matrix variable written `seeds` takes 0, 1, 2
//! executor: slurm             # optional: where stages run (see [`super::resources`])
//! resources: {cpus: 4}        # optional: what each stage asks a cluster for
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use super::diagnostic::Diagnostics;
use super::interpolate::{Vars, interpolate};
use super::node::{Key, KeyPath, Mark, Node, Value};
use super::params::Params;
use super::resources::{self, ExecutorName, Resources};
use super::suggest::nearest;
use crate::kind::{Kind, Task};

/// The stage kinds a pipeline file may use.
pub type Kinds = &'static [&'static dyn Kind];

/// One stage after matrix expansion.
#[derive(Debug)]
pub struct Stage {
    /// `base` or, from a matrix, `base[half=A]`.
    pub name: String,
    /// The name written in the file.
    pub group: String,
    pub kind: &'static dyn Kind,
    pub task: Box<dyn Task>,
    pub mark: Mark,
    /// What it asks a cluster for; shared by a group's instances.
    pub resources: std::sync::Arc<Resources>,
}

impl std::fmt::Debug for dyn Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The validated file, before the graph is built.
pub struct Validated {
    pub name: Option<String>,
    pub stages: Vec<Stage>,
    /// Every stage name written in the file, valid or not: a reference to a stage that
    /// has its own errors is not reported again as a reference to nothing.
    pub declared: Vec<String>,
    /// Where the file says its stages run.
    pub executor: Option<ExecutorName>,
}

const TOP_KEYS: [&str; 5] = ["name", "seeds", "stages", "executor", "resources"];

/// The most stages one pipeline may expand to. Planning is linear in stages, but past
/// this a file is more likely a mistake (a matrix with one variable too many) than an
/// experiment, and its expansion alone would take memory and minutes.
pub const MAX_STAGES: usize = 100_000;

/// The top-level keys of a file, each checked on its own.
#[derive(Default)]
struct TopLevel<'a> {
    name: Option<String>,
    seeds: usize,
    stages: Option<&'a Node>,
    executor: Option<ExecutorName>,
    resources: Option<&'a Node>,
    /// Pipeline-wide defaults for the kinds that read them, by section name.
    sections: BTreeMap<&'static str, &'a Node>,
}

/// What every stage group is read with.
struct Context<'a> {
    kinds: Kinds,
    sections: &'a BTreeMap<&'static str, &'a Node>,
    resources: Option<&'a Node>,
    seeds: usize,
}

pub fn validate(root: &Node, kinds: Kinds, diags: &mut Diagnostics) -> Validated {
    let Value::Map(entries) = &root.value else {
        diags.error(
            root.mark,
            &KeyPath::root(),
            format!("expected a mapping at the top of the file, found {}", root.type_name()),
        );
        return Validated { name: None, stages: Vec::new(), declared: Vec::new(), executor: None };
    };
    let top = top_level(entries, kinds, diags);
    let first_stage_diag = diags.items.len();
    let declared = match top.stages.map(|n| &n.value) {
        Some(Value::Map(list)) => list.iter().map(|(k, _)| k.name.clone()).collect(),
        _ => Vec::new(),
    };
    let cx = Context { kinds, sections: &top.sections, resources: top.resources, seeds: top.seeds };
    let stages = stages(root, top.stages, &cx, diags);
    // A mistake inside a pipeline-wide section is found while checking each stage it
    // was merged into; name it by the section's own path, as the file has it.
    let remap = top.sections.iter().map(|(s, n)| (*s, *n)).chain(top.resources.map(|n| ("resources", n)));
    for (section, node) in remap {
        let mut marks = HashSet::new();
        collect_marks(node, &mut marks);
        for d in &mut diags.items[first_stage_diag..] {
            if marks.contains(&d.mark)
                && let Some(p) = d.path.from_segment(section)
            {
                d.path = p;
            }
        }
    }
    Validated { name: top.name, stages, declared, executor: top.executor }
}

fn top_level<'a>(entries: &'a [(Key, Node)], kinds: Kinds, diags: &mut Diagnostics) -> TopLevel<'a> {
    let top = KeyPath::root();
    let mut sections: Vec<&'static str> = kinds.iter().flat_map(|k| k.sections().iter().copied()).collect();
    sections.sort_unstable();
    sections.dedup();
    let mut out = TopLevel { seeds: 1, ..TopLevel::default() };
    for (k, v) in entries {
        match k.name.as_str() {
            "name" => match &v.value {
                Value::Str(s) if valid_name(s) => out.name = Some(s.clone()),
                _ => diags.error(v.mark, &top.key("name"), "expected a name made of letters, digits, `_` and `-`"),
            },
            "stages" => out.stages = Some(v),
            "executor" => match &v.value {
                Value::Str(s) if ExecutorName::parse(s).is_some() => out.executor = ExecutorName::parse(s),
                _ => diags.error_help(
                    v.mark,
                    &top.key("executor"),
                    format!(
                        "unknown executor {}",
                        v.scalar_text().map_or_else(|| v.type_name().into(), |t| format!("`{t}`"))
                    ),
                    format!("expected one of: {}", ExecutorName::NAMES.join(", ")),
                ),
            },
            "resources" => out.resources = Some(v),
            "seeds" => match v.value {
                Value::Int(n) if (1..=10_000).contains(&n) => out.seeds = n as usize,
                _ => diags.error(v.mark, &top.key("seeds"), "expected a count of seeds, at least 1"),
            },
            s => match sections.iter().copied().find(|x| *x == s) {
                Some(section) if matches!(v.value, Value::Map(_)) => {
                    out.sections.insert(section, v);
                }
                Some(_) => diags.error(v.mark, &top.key(s), format!("expected a mapping, found {}", v.type_name())),
                None => {
                    let known: Vec<&str> = TOP_KEYS.iter().copied().chain(sections.iter().copied()).collect();
                    let help = match nearest(s, known.iter().copied()) {
                        Some(n) => format!("did you mean `{n}`?"),
                        None => format!("expected one of: {}", known.join(", ")),
                    };
                    diags.error_help(k.mark, &top.key(s), format!("unknown key `{s}`"), help);
                }
            },
        }
    }
    out
}

/// Every stage group of `stages:`, expanded.
fn stages(root: &Node, node: Option<&Node>, cx: &Context<'_>, diags: &mut Diagnostics) -> Vec<Stage> {
    let path = KeyPath::root().key("stages");
    let mut stages = Vec::new();
    match node.map(|n| (n, &n.value)) {
        None => diags.error(root.mark, &KeyPath::root(), "missing required key `stages`"),
        Some((_, Value::Map(list))) if !list.is_empty() => {
            for (k, v) in list {
                stage_group(k, v, cx, diags, &mut stages);
                if stages.len() > MAX_STAGES {
                    diags.error_help(
                        k.mark,
                        &path.key(&k.name),
                        format!("the pipeline expands to more than {MAX_STAGES} stages"),
                        "a pipeline of this size is better split into several files sharing one cache",
                    );
                    break;
                }
            }
        }
        Some((n, Value::Map(_))) => diags.error(n.mark, &path, "a pipeline needs at least one stage"),
        Some((n, _)) => {
            diags.error(n.mark, &path, format!("expected a mapping of stage names, found {}", n.type_name()))
        }
    }
    stages
}

/// The positions of every node and key under `node`.
fn collect_marks(node: &Node, out: &mut HashSet<Mark>) {
    out.insert(node.mark);
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|n| collect_marks(n, out)),
        Value::Map(entries) => {
            for (k, v) in entries {
                out.insert(k.mark);
                collect_marks(v, out);
            }
        }
        _ => {}
    }
}

pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A stage group's keys: its one kind with its parameters, its matrix and its own
/// resources; `None` (reported) when the kind is missing or not one.
struct GroupKeys<'a> {
    kind: &'static dyn Kind,
    params: &'a Node,
    matrix: Option<&'a Node>,
    resources: Option<&'a Node>,
}

fn group_keys<'a>(key: &Key, node: &'a Node, kinds: Kinds, diags: &mut Diagnostics) -> Option<GroupKeys<'a>> {
    let path = KeyPath::root().key("stages").key(&key.name);
    if !valid_name(&key.name) {
        diags.error(key.mark, &path, format!("stage name `{}` may hold only letters, digits, `_` and `-`", key.name));
        return None;
    }
    let Value::Map(entries) = &node.value else {
        diags.error(node.mark, &path, format!("expected a mapping with a stage kind, found {}", node.type_name()));
        return None;
    };
    let kind_names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let mut found: Vec<(&'static dyn Kind, &Node, &Key)> = Vec::new();
    let (mut matrix, mut resources) = (None, None);
    for (k, v) in entries {
        if let Some(kind) = kinds.iter().copied().find(|kind| kind.name() == k.name) {
            found.push((kind, v, k));
        } else if k.name == "matrix" {
            matrix = Some(v);
        } else if k.name == "resources" {
            resources = Some(v);
        } else {
            let known: Vec<&str> = kind_names.iter().copied().chain(["matrix", "resources"]).collect();
            let help = match nearest(&k.name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "a stage has one kind ({}), an optional `matrix` and optional `resources`",
                    kind_names.join(", ")
                ),
            };
            let message = format!("unknown key `{}` in stage `{}`", k.name, key.name);
            diags.error_help(k.mark, &path.key(&k.name), message, help);
        }
    }
    match found.as_slice() {
        [(kind, params, _)] => Some(GroupKeys { kind: *kind, params, matrix, resources }),
        [] => {
            let help = format!("add one of: {}", kind_names.join(", "));
            diags.error_help(node.mark, &path, format!("stage `{}` has no kind", key.name), help);
            None
        }
        [_, (_, _, second), ..] => {
            diags.error(second.mark, &path.key(&second.name), format!("stage `{}` has more than one kind", key.name));
            None
        }
    }
}

/// Expand one stage group into `out`; false when the pipeline grew past
/// [`MAX_STAGES`] (reported), so the caller stops.
fn stage_group(key: &Key, node: &Node, cx: &Context<'_>, diags: &mut Diagnostics, out: &mut Vec<Stage>) -> bool {
    let path = KeyPath::root().key("stages").key(&key.name);
    let Some(GroupKeys { kind, params, matrix, resources: own }) = group_keys(key, node, cx.kinds, diags) else {
        return true;
    };
    let combos = match matrix {
        None => vec![Vec::new()],
        Some(m) => match expand_matrix(m, &path.key("matrix"), cx.seeds, diags) {
            Some(c) => c,
            None => return true,
        },
    };
    if out.len() + combos.len() > MAX_STAGES {
        let at = matrix.map_or(key.mark, |m| m.mark);
        diags.error_help(
            at,
            &path.key("matrix"),
            format!(
                "the pipeline expands to {} stages with this matrix; at most {MAX_STAGES} are supported",
                out.len() + combos.len()
            ),
            "a pipeline of this size is better split into several files sharing one cache",
        );
        return false;
    }
    let resources = std::sync::Arc::new(resources::read(cx.resources, own, &path.key("resources"), diags));
    let params = with_sections(params, kind, cx.sections);
    let params_path = path.key(kind.name());
    // Each instance is checked on its own (in parallel: a large matrix is most of the
    // load time); their problems are merged in matrix order, so reports are stable.
    use rayon::prelude::*;
    let checked: Vec<(Option<Stage>, Diagnostics)> =
        combos.into_par_iter().map(|combo| instance(key, kind, &params, &params_path, combo, &resources)).collect();
    for (stage, d) in checked {
        diags.items.extend(d.items);
        out.extend(stage);
    }
    true
}

/// A stage's parameters over the pipeline-wide sections its kind reads (`network`,
/// `training`, `env`): the sections first, the stage's own settings over them.
fn with_sections(params: &Node, kind: &'static dyn Kind, sections: &BTreeMap<&'static str, &Node>) -> Node {
    let mut params = params.clone();
    if matches!(params.value, Value::Map(_)) {
        for section in kind.sections() {
            if let Some(defaults) = sections.get(section) {
                let wrapped = Node::new(
                    Value::Map(vec![(Key { name: section.to_string(), mark: defaults.mark }, (*defaults).clone())]),
                    defaults.mark,
                );
                params = wrapped.merged(&params);
            }
        }
    }
    params
}

/// One instance of a stage group: its matrix values put in, checked by its kind.
fn instance(
    key: &Key,
    kind: &'static dyn Kind,
    params: &Node,
    params_path: &KeyPath,
    combo: Vec<(String, Node)>,
    resources: &std::sync::Arc<Resources>,
) -> (Option<Stage>, Diagnostics) {
    let mut d = Diagnostics::default();
    // `name[k=v,...]`, the matrix values in declaration order.
    let name = if combo.is_empty() {
        key.name.clone()
    } else {
        let mut name = format!("{}[", key.name);
        for (n, (k, v)) in combo.iter().enumerate() {
            let sep = if n == 0 { "" } else { "," };
            let _ = write!(name, "{sep}{k}={}", v.scalar_text().unwrap_or_default());
        }
        name.push(']');
        name
    };
    let vars: Vars = combo.into_iter().collect();
    let resolved = interpolate(params, &vars, params_path, &mut d);
    let Some(task) = kind.check(&mut Params::new(&resolved, params_path, &mut d)) else { return (None, d) };
    let resources = resources.clone();
    (Some(Stage { name, group: key.name.clone(), kind, task, mark: key.mark, resources }), d)
}

/// Every combination of the matrix's values, the last variable varying fastest.
fn expand_matrix(
    node: &Node,
    path: &KeyPath,
    seeds: usize,
    diags: &mut Diagnostics,
) -> Option<Vec<Vec<(String, Node)>>> {
    let Value::Map(entries) = &node.value else {
        diags.error(
            node.mark,
            path,
            format!("expected a mapping of variables to lists of values, found {}", node.type_name()),
        );
        return None;
    };
    if entries.is_empty() {
        diags.error(node.mark, path, "a matrix needs at least one variable");
        return None;
    }
    let mut ok = true;
    let mut combos: Vec<Vec<(String, Node)>> = vec![Vec::new()];
    for (k, v) in entries {
        let vpath = path.key(&k.name);
        let Some(values) = matrix_values(k, v, &vpath, seeds, diags) else {
            ok = false;
            continue;
        };
        if combos.len().saturating_mul(values.len()) > MAX_STAGES {
            diags.error_help(
                v.mark,
                &vpath,
                format!("this matrix makes more than {MAX_STAGES} stages"),
                "a pipeline of this size is better split into several files sharing one cache",
            );
            return None;
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |item| {
                    let mut c = c.clone();
                    c.push((k.name.clone(), item.clone()));
                    c
                })
            })
            .collect();
    }
    ok.then_some(combos)
}

/// One matrix variable's values: a list of plain values, one value, or `seeds`
/// (0..seeds); `None` when something was reported.
fn matrix_values(k: &Key, v: &Node, vpath: &KeyPath, seeds: usize, diags: &mut Diagnostics) -> Option<Vec<Node>> {
    let mut ok = true;
    if !k.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || k.name.starts_with(|c: char| c.is_ascii_digit())
    {
        diags.error(k.mark, vpath, format!("matrix variable `{}` must be an identifier", k.name));
        ok = false;
    }
    let values: Vec<Node> = match &v.value {
        Value::Str(s) if s == "seeds" => (0..seeds).map(|i| Node::new(Value::Int(i as i64), v.mark)).collect(),
        Value::Seq(items) if !items.is_empty() => items.clone(),
        Value::Seq(_) => {
            diags.error(v.mark, vpath, "a matrix variable needs at least one value");
            return None;
        }
        _ if v.scalar_text().is_some() => vec![v.clone()],
        _ => {
            diags.error(v.mark, vpath, format!("expected a list of values, found {}", v.type_name()));
            return None;
        }
    };
    let mut seen = HashSet::new();
    for (i, item) in values.iter().enumerate() {
        if !seen.insert(item.to_json().to_string()) {
            diags.error(item.mark, &vpath.index(i), "this value is repeated");
            ok = false;
        }
        if item.scalar_text().is_none() {
            let message = format!("matrix values must be plain values, found {}", item.type_name());
            diags.error(item.mark, &vpath.index(i), message);
            ok = false;
        }
    }
    ok.then_some(values)
}
