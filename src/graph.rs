//! The stage graph: which stage feeds which, in what order they can run, and cycles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::diagnostic::Diagnostics;
use crate::config::node::KeyPath;
use crate::config::pipeline::Stage;
use crate::kind::Input;

/// Where one input of a stage comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Exactly a workspace path that stage `.0` writes: its digest is known from the
    /// stage's result.
    Output(usize, String),
    /// A workspace path (hashed when needed), after the stages that write into it ran.
    Workspace(String),
    /// One output of another stage, or all of them (`None`).
    Stage { stage: usize, output: Option<String> },
}

/// One resolved input: the role the task reads it under, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub role: String,
    pub source: Source,
}

#[derive(Debug)]
pub struct Dag {
    pub upstream: Vec<Vec<usize>>,
    pub downstream: Vec<Vec<usize>>,
    /// Stage indices in an order where every stage follows its inputs.
    pub order: Vec<usize>,
    /// Per stage, its inputs resolved (a group reference becomes one per instance).
    pub inputs: Vec<Vec<Resolved>>,
}

pub fn build(stages: &[Stage], declared: &[String], diags: &mut Diagnostics) -> Dag {
    let mut graph = DiGraph::new();
    for i in 0..stages.len() {
        graph.add_node(i);
    }
    let outs = workspace_outputs(stages, diags);
    let index = NameIndex::new(stages);
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
    let mut inputs = Vec::with_capacity(stages.len());
    for (i, stage) in stages.iter().enumerate() {
        let mut mine = Vec::new();
        for input in stage.task.inputs() {
            match input {
                Input::Path(p) => {
                    let mut source = Source::Workspace(p.clone());
                    if let Some(&s) = outs.get(&p)
                        && s != i
                    {
                        source = Source::Output(s, p.clone());
                        upstream[i].push(s);
                    }
                    // Stages that write a folder holding it, or files inside it, run first.
                    for s in ancestors(&p).filter_map(|a| outs.get(a).copied()).chain(inside(&outs, &p).map(|(_, s)| s))
                    {
                        if s != i {
                            upstream[i].push(s);
                        }
                    }
                    mine.push(Resolved { role: p, source });
                }
                Input::Stage { role, reference, mark, field } => {
                    let path = KeyPath::root().key("stages").key(&stage.group).key(stage.kind.name()).key(field);
                    for (role, s, output) in resolve(stages, &index, declared, &role, &reference, mark, &path, diags) {
                        upstream[i].push(s);
                        mine.push(Resolved { role, source: Source::Stage { stage: s, output } });
                    }
                }
            }
        }
        inputs.push(mine);
        upstream[i].sort_unstable();
        upstream[i].dedup();
    }
    for (i, ups) in upstream.iter().enumerate() {
        for u in ups {
            graph.add_edge(NodeIndex::new(*u), NodeIndex::new(i), ());
        }
    }
    let order = match toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|n| n.index()).collect(),
        Err(_) => {
            report_cycles(&graph, stages, diags);
            (0..stages.len()).collect()
        }
    };
    let mut downstream = vec![Vec::new(); stages.len()];
    for (i, ups) in upstream.iter().enumerate() {
        for u in ups {
            downstream[*u].push(i);
        }
    }
    Dag { upstream, downstream, order, inputs }
}

/// Split `base[half=A].checkpoint` into the stage part and the output part. Matrix
/// values may hold dots (`lr=0.01`), so with brackets the output follows the last `]`.
pub fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let cut = match reference.rfind(']') {
        Some(end) => reference[end..].find('.').map(|d| end + d),
        None => reference.find('.'),
    };
    match cut {
        Some(c) => (&reference[..c], Some(&reference[c + 1..])),
        None => (reference, None),
    }
}

/// Every stage's workspace outputs by path, sorted (the outputs inside a folder are one
/// range); two stages writing the same path, or one inside the other's, is an error.
fn workspace_outputs(stages: &[Stage], diags: &mut Diagnostics) -> BTreeMap<String, usize> {
    let mut outs: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in stages.iter().enumerate() {
        for o in s.task.workspace_outputs() {
            let theirs = |p: &str| outs.get(p).copied().filter(|other| *other != i);
            let clash = theirs(&o)
                .map(|other| (o.clone(), other))
                .or_else(|| ancestors(&o).find_map(|a| theirs(a).map(|other| (a.to_string(), other))))
                .or_else(|| inside(&outs, &o).find(|(_, other)| *other != i).map(|(p, other)| (p.to_string(), other)));
            if let Some((path, other)) = clash {
                diags.error(
                    s.mark,
                    &KeyPath::root().key("stages").key(&s.group),
                    format!("`{}` writes `{o}`, which overlaps `{path}` written by `{}`", s.name, stages[other].name),
                );
            }
            outs.entry(o).or_insert(i);
        }
    }
    outs
}

/// The folders above a relative path (`a/b/c` -> `a`, `a/b`).
fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    p.match_indices('/').map(|(at, _)| &p[..at])
}

/// The outputs strictly inside folder `p`.
fn inside<'a>(outs: &'a BTreeMap<String, usize>, p: &'a str) -> impl Iterator<Item = (&'a str, usize)> {
    // The paths that start with `p` follow it in order; of those, the ones inside it
    // (`p/...`) come after those that go on with a byte below '/' (`p.txt`, `p-2`) and
    // before those that go on with one above (`p0`, `p_x`). No key is built for the
    // range: this runs for every output and input of every stage.
    use std::ops::Bound;
    outs.range::<str, _>((Bound::Excluded(p), Bound::Unbounded))
        .map_while(move |(k, v)| match k.strip_prefix(p).map(|rest| rest.as_bytes().first().copied()) {
            Some(Some(b)) if b <= b'/' => Some((k, *v)),
            _ => None,
        })
        .filter(|(k, _)| k.as_bytes()[p.len()] == b'/')
        .map(|(k, v)| (k.as_str(), v))
}

/// Stage names and group names to stage indices.
struct NameIndex<'a> {
    names: HashMap<&'a str, usize>,
    groups: HashMap<&'a str, Vec<usize>>,
}

impl<'a> NameIndex<'a> {
    fn new(stages: &'a [Stage]) -> NameIndex<'a> {
        let mut names = HashMap::with_capacity(stages.len());
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, s) in stages.iter().enumerate() {
            names.entry(s.name.as_str()).or_insert(i);
            groups.entry(s.group.as_str()).or_default().push(i);
        }
        NameIndex { names, groups }
    }
}

/// The stages a reference names: one stage, or every instance of a matrix group.
#[allow(clippy::too_many_arguments)]
fn resolve(
    stages: &[Stage],
    index: &NameIndex,
    declared: &[String],
    role: &str,
    reference: &str,
    mark: crate::config::node::Mark,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> Vec<(String, usize, Option<String>)> {
    let (name, output) = split_reference(reference);
    let exact: Vec<usize> = index.names.get(name).map(|i| vec![*i]).unwrap_or_default();
    let found: Vec<usize> =
        if exact.is_empty() { index.groups.get(name).cloned().unwrap_or_default() } else { exact.clone() };
    let group = name.split('[').next().unwrap_or(name);
    if found.is_empty() && declared.iter().any(|d| d == group) && !index.groups.contains_key(group) {
        // That stage has errors of its own, already reported.
        return Vec::new();
    }
    if found.is_empty() {
        // Suggestions come from the named group's instances, or from the group names:
        // a large matrix with a broken reference must not compare every pair of names.
        let instances = index.groups.get(group).map(|v| v.as_slice()).unwrap_or_default();
        let mut group_names: Vec<&str> = index.groups.keys().copied().collect();
        group_names.sort_unstable();
        let candidates: Vec<&str> = if instances.is_empty() {
            group_names.clone()
        } else {
            instances.iter().take(1000).map(|i| stages[*i].name.as_str()).collect()
        };
        let help = match crate::config::suggest::nearest(name, candidates) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("stages here: {}", group_names.join(", ")),
        };
        diags.error_help(mark, path, format!("`{reference}` names no stage"), help);
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in found {
        if let Some(o) = output {
            let declared = stages[s].task.outputs();
            if !declared.iter().any(|d| d == o) {
                let help = match crate::config::suggest::nearest(o, declared.iter().map(String::as_str)) {
                    Some(x) => format!("did you mean `{}.{x}`?", stages[s].name),
                    None if declared.is_empty() => format!("`{}` has no named outputs", stages[s].name),
                    None => format!("its outputs: {}", declared.join(", ")),
                };
                diags.error_help(mark, path, format!("stage `{}` has no output `{o}`", stages[s].name), help);
                continue;
            }
        }
        let role = if exact.is_empty() { format!("{role}/{}", stages[s].name) } else { role.to_string() };
        out.push((role, s, output.map(str::to_string)));
    }
    out
}

/// Name the stages on every cycle, in the order the data would flow.
fn report_cycles(graph: &DiGraph<usize, ()>, stages: &[Stage], diags: &mut Diagnostics) {
    for scc in tarjan_scc(graph) {
        let start = scc[0];
        let self_loop = graph.contains_edge(start, start);
        if scc.len() == 1 && !self_loop {
            continue;
        }
        // Walk inside the component from `start` until we are back.
        let mut cycle = vec![start];
        let mut seen = BTreeSet::from([start]);
        let mut at = start;
        loop {
            let next = graph.neighbors(at).filter(|n| scc.contains(n)).find(|n| *n == start || !seen.contains(n));
            match next {
                Some(n) if n == start => break,
                Some(n) => {
                    seen.insert(n);
                    cycle.push(n);
                    at = n;
                }
                None => break,
            }
        }
        let names: Vec<&str> = cycle.iter().chain([&start]).map(|n| stages[n.index()].name.as_str()).collect();
        let first = &stages[start.index()];
        diags.error(
            first.mark,
            &KeyPath::root().key("stages").key(&first.group),
            format!("the stages form a cycle: {}", names.join(" -> ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{inside, split_reference};

    #[test]
    fn inside_a_folder_are_the_paths_under_it_only() {
        let outs: std::collections::BTreeMap<String, usize> =
            ["p", "p-2", "p.txt", "p/x", "p/y/z", "p0", "p_q/r", "q/p/x"]
                .iter()
                .enumerate()
                .map(|(i, p)| (p.to_string(), i))
                .collect();
        let found: Vec<&str> = inside(&outs, "p").map(|(k, _)| k).collect();
        assert_eq!(found, ["p/x", "p/y/z"]);
        assert_eq!(inside(&outs, "p/y").map(|(k, _)| k).collect::<Vec<_>>(), ["p/y/z"]);
        assert_eq!(inside(&outs, "q").count(), 1);
        assert_eq!(inside(&outs, "p/x").count() + inside(&outs, "r").count(), 0);
    }

    #[test]
    fn references_split_at_the_output() {
        assert_eq!(split_reference("split.A"), ("split", Some("A")));
        assert_eq!(split_reference("split"), ("split", None));
        assert_eq!(split_reference("t[lr=0.01,n=2].metrics"), ("t[lr=0.01,n=2]", Some("metrics")));
        assert_eq!(split_reference("t[lr=0.01]"), ("t[lr=0.01]", None));
    }
}
