//! Computing a stage's key from its parameters and the content of its inputs.

use std::collections::BTreeMap;

use crate::config::Pipeline;
use crate::digest::{Content, StatCache};
use crate::graph::Source;
use crate::key::StageKey;

/// The outputs of a finished stage, by output name.
pub type Produced = BTreeMap<String, Content>;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("dependency `{0}` does not exist, and no stage writes it")]
    Missing(String),
    #[error("cannot read dependency `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("input stage `{0}` has not produced its outputs")]
    NotProduced(String),
    #[error("stage `{stage}` did not produce its output `{output}`")]
    NoOutput { stage: String, output: String },
}

/// The key of stage `i`; every stage it depends on must have finished (`produced`).
pub fn stage_key(
    p: &Pipeline,
    i: usize,
    produced: &[Option<Produced>],
    stat: &mut StatCache,
) -> Result<StageKey, KeyError> {
    let stage = &p.stages[i];
    let mut inputs = BTreeMap::new();
    for input in &p.dag.inputs[i] {
        let digest = match &input.source {
            Source::Output(s, path) => match produced[*s].as_ref().and_then(|o| o.get(path)) {
                Some(c) => c.digest.clone(),
                None => workspace_digest(p, path, stat)?,
            },
            Source::Workspace(path) => workspace_digest(p, path, stat)?,
            Source::Stage { stage: s, output } => {
                let outs = produced[*s].as_ref().ok_or_else(|| KeyError::NotProduced(p.stages[*s].name.clone()))?;
                match output {
                    Some(o) => outs
                        .get(o)
                        .map(|c| c.digest.clone())
                        .ok_or_else(|| KeyError::NoOutput { stage: p.stages[*s].name.clone(), output: o.clone() })?,
                    None => all_outputs_digest(outs),
                }
            }
        };
        inputs.insert(input.role.clone(), digest);
    }
    Ok(StageKey::new(stage.kind.name(), stage.kind.version(), stage.task.params(), inputs))
}

fn workspace_digest(p: &Pipeline, path: &str, stat: &mut StatCache) -> Result<String, KeyError> {
    match stat.content(&p.workspace.join(path)) {
        Ok(c) => Ok(c.digest),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(KeyError::Missing(path.to_string())),
        Err(source) => Err(KeyError::Io { path: path.to_string(), source }),
    }
}

/// One digest for all of a stage's outputs: their names and contents.
pub fn all_outputs_digest(outs: &Produced) -> String {
    let mut h = blake3::Hasher::new();
    for (name, c) in outs {
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(c.digest.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// The stages to consider: the named targets and everything they need, or all.
/// A name may be a stage (`base[half=A]`) or a matrix group (`base`).
pub fn select(p: &Pipeline, targets: &[String]) -> Result<Vec<bool>, String> {
    if targets.is_empty() {
        return Ok(vec![true; p.stages.len()]);
    }
    let mut keep = vec![false; p.stages.len()];
    let mut stack = Vec::new();
    for t in targets {
        let found: Vec<usize> = p
            .stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name == *t || s.group == *t || s.name.replace(' ', "") == t.replace(' ', ""))
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            let names = p.stages.iter().map(|s| s.name.as_str()).chain(p.stages.iter().map(|s| s.group.as_str()));
            let hint =
                crate::config::suggest::nearest(t, names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            return Err(format!("no stage named `{t}` in {}{hint}", p.file.display()));
        }
        stack.extend(found);
    }
    while let Some(i) = stack.pop() {
        if !keep[i] {
            keep[i] = true;
            stack.extend(p.dag.upstream[i].iter().copied());
        }
    }
    Ok(keep)
}
