//! `pipe dag`: the stage graph as text, Graphviz dot or Mermaid.

use std::fmt::Write as _;

use crate::config::Pipeline;

/// One line per stage in run order, with what it reads.
pub fn text(p: &Pipeline) -> String {
    let mut out = String::new();
    for &i in &p.dag.order {
        let s = &p.stages[i];
        let ups: Vec<&str> = p.dag.upstream[i].iter().map(|u| p.stages[*u].name.as_str()).collect();
        if ups.is_empty() {
            let _ = writeln!(out, "{} ({})", s.name, s.kind.name());
        } else {
            let _ = writeln!(out, "{} ({}) <- {}", s.name, s.kind.name(), ups.join(", "));
        }
    }
    out
}

pub fn dot(p: &Pipeline) -> String {
    let mut out =
        format!("digraph {} {{\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n", quote(&p.name));
    for (i, s) in p.stages.iter().enumerate() {
        let _ = writeln!(out, "  n{i} [label={}];", quote(&format!("{}\n{}", s.name, s.kind.name())));
    }
    for (i, ups) in p.dag.upstream.iter().enumerate() {
        for u in ups {
            let _ = writeln!(out, "  n{u} -> n{i};");
        }
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(p: &Pipeline) -> String {
    let mut out = String::from("flowchart LR\n");
    for (i, s) in p.stages.iter().enumerate() {
        let label = s.name.replace('"', "#quot;");
        let _ = writeln!(out, "  n{i}[\"{label}<br/><i>{}</i>\"]", s.kind.name());
    }
    for (i, ups) in p.dag.upstream.iter().enumerate() {
        for u in ups {
            let _ = writeln!(out, "  n{u} --> n{i}");
        }
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}
