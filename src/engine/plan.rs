//! The plan: for each selected stage, whether the cache has it (fresh), must compute it
//! and why (stale, damaged), or cannot know yet because an input must be computed
//! first (waiting). `run`, `status`, `--dry-run`, `show` and `gc` all read this; none
//! walks the graph on its own.
//!
//! One pass over the stages in topological order: a stage's key is made of its
//! parameters and its inputs' output digests, which the pass already knows for every
//! fresh input. The cost is one key and one manifest lookup per stage, linear in
//! stages and edges.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Pipeline;
use crate::digest::{Content, StatCache};
use crate::graph::Source;
use crate::key::{Change, StageKey, diff};
use crate::store::{Lookup, Manifest, Memo, Records, Store, StoreError};

/// The outputs of a finished stage, sorted by output name. A list, not a map: a stage
/// has a few outputs, and a plan holds one of these per stage.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Produced(Vec<(String, Content)>);

impl Produced {
    pub fn get(&self, name: &str) -> Option<&Content> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|k| &self.0[k].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Content)> {
        self.0.iter().map(|(n, c)| (n, c))
    }

    pub fn values(&self) -> impl Iterator<Item = &Content> {
        self.0.iter().map(|(_, c)| c)
    }
}

impl FromIterator<(String, Content)> for Produced {
    fn from_iter<I: IntoIterator<Item = (String, Content)>>(items: I) -> Produced {
        let mut v: Vec<(String, Content)> = items.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Produced(v)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("dependency `{0}` does not exist, and no stage writes it")]
    Missing(String),
    #[error("cannot read dependency `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("input stage `{0}` has not produced its outputs")]
    NotProduced(String),
    #[error("stage `{stage}` did not produce its output `{output}`")]
    NoOutput { stage: String, output: String },
}

/// A stage or group name on the command line that the pipeline does not have.
#[derive(Debug, thiserror::Error)]
#[error("no stage named `{name}` in {file}{}", hint.as_ref().map(|h| format!("; did you mean `{h}`?")).unwrap_or_default())]
pub struct UnknownStage {
    pub name: String,
    pub file: String,
    pub hint: Option<String>,
}

/// Why a stage must be computed.
#[derive(Debug, Clone)]
pub enum StaleReason {
    /// No record of this stage name for this pipeline file, and no entry.
    NeverRun,
    /// Same key as last time, but the entry is not in this cache.
    EntryGone,
    /// `--force`.
    Forced,
    /// The key changed since this pipeline last computed the stage: these fields.
    Changed(Vec<Change>),
    /// The key changed in a way no single field shows.
    KeyChanged,
    /// The key cannot be computed (a dependency file is missing or unreadable).
    Input(String),
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaleReason::NeverRun => f.write_str("never run"),
            StaleReason::EntryGone => f.write_str("its cache entry is gone (removed, or another cache)"),
            StaleReason::Forced => f.write_str("forced"),
            StaleReason::Changed(changes) => {
                let lines: Vec<String> = changes.iter().map(Change::to_string).collect();
                f.write_str(&lines.join("; "))
            }
            StaleReason::KeyChanged => f.write_str("key changed"),
            StaleReason::Input(e) => f.write_str(e),
        }
    }
}

/// Where one stage stands.
#[derive(Debug, Clone)]
pub enum StageState {
    /// In the cache with these inputs.
    Fresh { manifest: Box<Manifest> },
    /// Must be computed.
    Stale { reasons: Vec<StaleReason> },
    /// Its entry exists but some of its bytes failed verification or are gone: it is
    /// computed again.
    Damaged { problems: Vec<String> },
    /// An input (by stage index) must be computed first; its output decides this
    /// stage's key.
    Waiting { on: Vec<usize> },
}

impl StageState {
    pub fn word(&self) -> &'static str {
        match self {
            StageState::Fresh { .. } => "fresh",
            StageState::Stale { .. } => "stale",
            StageState::Damaged { .. } => "damaged",
            StageState::Waiting { .. } => "waiting",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub state: StageState,
    /// The key, where the inputs are known (a fresh stage's may be in its manifest
    /// instead).
    pub key: Option<StageKey>,
    pub digest: Option<String>,
}

#[derive(Debug)]
pub struct Plan {
    /// By stage index; `None` for stages not selected.
    pub stages: Vec<Option<Planned>>,
}

impl Plan {
    /// Selected stages in file order.
    pub fn selected(&self) -> impl Iterator<Item = (usize, &Planned)> {
        self.stages.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
    }

    pub fn count(&self, word: &str) -> usize {
        self.selected().filter(|(_, s)| s.state.word() == word).count()
    }
}

/// Which stages a command is about, and which it recomputes regardless.
#[derive(Debug, Clone)]
pub struct Selection {
    pub selected: Vec<bool>,
    pub forced: Vec<bool>,
}

impl Selection {
    /// The named targets and everything they need (all stages when none is named);
    /// `force` names stages or groups to recompute even when cached.
    pub fn new(p: &Pipeline, targets: &[String], force: &[String]) -> Result<Selection, UnknownStage> {
        let index = NameIndex::new(p);
        let mut selected = vec![targets.is_empty(); p.stages.len()];
        let mut stack = Vec::new();
        for t in targets {
            stack.extend(index.find(p, t)?);
        }
        while let Some(i) = stack.pop() {
            if !selected[i] {
                selected[i] = true;
                stack.extend(p.dag.upstream[i].iter().copied());
            }
        }
        let mut forced = vec![false; p.stages.len()];
        for name in force {
            for i in index.find(p, name)? {
                forced[i] = true;
            }
        }
        Ok(Selection { selected, forced })
    }
}

/// Stage and group names to indices, built once per command.
struct NameIndex {
    by_name: std::collections::HashMap<String, Vec<usize>>,
}

impl NameIndex {
    fn new(p: &Pipeline) -> NameIndex {
        let mut by_name: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
        for (i, s) in p.stages.iter().enumerate() {
            by_name.entry(s.name.replace(' ', "")).or_default().push(i);
            if s.group != s.name {
                by_name.entry(s.group.clone()).or_default().push(i);
            }
        }
        NameIndex { by_name }
    }

    /// A stage (`base[half=A]`, spaces ignored) or a matrix group (`base`).
    fn find(&self, p: &Pipeline, name: &str) -> Result<Vec<usize>, UnknownStage> {
        match self.by_name.get(&name.replace(' ', "")) {
            Some(found) => Ok(found.clone()),
            None => {
                let names = p.stages.iter().map(|s| s.name.as_str()).chain(p.stages.iter().map(|s| s.group.as_str()));
                Err(UnknownStage {
                    name: name.to_string(),
                    file: p.file.display().to_string(),
                    hint: crate::config::suggest::nearest(name, names).map(str::to_string),
                })
            }
        }
    }
}

/// Plan the selected stages against the cache. Reads manifests (through `memo`) and
/// workspace file digests (through `stat`); writes nothing.
pub fn plan(
    p: &Pipeline,
    store: &Store,
    sel: &Selection,
    stat: &mut StatCache,
    records: &Records,
    memo: &mut Memo,
) -> Result<Plan, StoreError> {
    let n = p.stages.len();
    let mut outputs: Vec<Option<Produced>> = vec![None; n];
    let mut stages: Vec<Option<Planned>> = vec![None; n];
    // Parameters do not depend on inputs: those of the stages the last run found in the
    // cache (likely fresh again, so their keys are needed) are built at once, on all
    // cores; the others when their key is.
    let mut params: Vec<Option<serde_json::Value>> = {
        use rayon::prelude::*;
        let likely = |i: usize| sel.selected[i] && memo.last_key(&p.stages[i].name).is_some();
        (0..n).into_par_iter().map(|i| likely(i).then(|| p.stages[i].task.params())).collect()
    };
    for &i in &p.dag.order {
        if !sel.selected[i] {
            continue;
        }
        let on: Vec<usize> = p.dag.upstream[i].iter().copied().filter(|u| outputs[*u].is_none()).collect();
        if !on.is_empty() {
            stages[i] = Some(Planned { state: StageState::Waiting { on }, key: None, digest: None });
            continue;
        }
        let key = match key_with(p, i, params[i].take(), &outputs, stat) {
            Ok(k) => k,
            Err(e) => {
                let reasons = vec![StaleReason::Input(crate::causes::chain_text(&e))];
                stages[i] = Some(Planned { state: StageState::Stale { reasons }, key: None, digest: None });
                continue;
            }
        };
        let digest = key.digest();
        let (found, key) = memo.lookup(store, &p.stages[i].name, key, &digest)?;
        let state = match found {
            Lookup::Hit(m) => {
                outputs[i] = Some(produced_of(&m));
                if sel.forced[i] {
                    StageState::Stale { reasons: vec![StaleReason::Forced] }
                } else {
                    StageState::Fresh { manifest: m }
                }
            }
            Lookup::Damaged { problems } => StageState::Damaged { problems },
            Lookup::Miss => {
                let reasons = match records.get(&p.stages[i].name) {
                    None => vec![StaleReason::NeverRun],
                    Some(r) if r.key == digest => vec![StaleReason::EntryGone],
                    Some(r) => match key.as_ref().map(|k| diff(&r.key_struct, k)).unwrap_or_default() {
                        d if d.is_empty() => vec![StaleReason::KeyChanged],
                        d => vec![StaleReason::Changed(d)],
                    },
                };
                StageState::Stale { reasons }
            }
        };
        stages[i] = Some(Planned { state, key, digest: Some(digest) });
    }
    Ok(Plan { stages })
}

/// The key of stage `i`; every stage it depends on must have finished (`produced`).
pub fn stage_key(
    p: &Pipeline,
    i: usize,
    produced: &[Option<Produced>],
    stat: &mut StatCache,
) -> Result<StageKey, KeyError> {
    key_with(p, i, None, produced, stat)
}

/// The key of stage `i`, with its parameters when they are already built.
fn key_with(
    p: &Pipeline,
    i: usize,
    params: Option<serde_json::Value>,
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
    let params = params.unwrap_or_else(|| stage.task.params());
    Ok(StageKey::new(stage.kind.name(), stage.kind.version(), params, inputs))
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
    for (name, c) in outs.iter() {
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(c.digest.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

pub fn produced_of(m: &Manifest) -> Produced {
    m.outputs.iter().map(|(k, o)| (k.clone(), o.content.clone())).collect()
}

/// The file in the cache's `stat/` that remembers this workspace's file digests.
pub fn workspace_id(p: &Pipeline) -> String {
    let id = blake3::hash(p.workspace.to_string_lossy().as_bytes()).to_hex();
    format!("{}.json", &id[..16])
}

/// The plan of a pipeline as `status` and friends need it: loads the stat cache, the
/// records and the memo of the last run, plans, and saves the stat cache (the only
/// thing it may write). Only `run` writes the memo: it keeps the records in step with
/// it.
pub fn plan_pipeline(p: &Pipeline, store: &Store, sel: &Selection) -> Result<Plan, StoreError> {
    let mut stat = StatCache::load(store.sub("stat").join(workspace_id(p)));
    let records = Records::load(&store.sub("records"), &p.file);
    let mut memo = Memo::load(store, &p.file);
    let plan = plan(p, store, sel, &mut stat, &records, &mut memo)?;
    let _ = stat.save();
    Ok(plan)
}

/// The JSON form of one planned stage, for `status --json`.
#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub name: String,
    pub state: &'static str,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Plan {
    /// One line per reason (a changed key gives one per field).
    pub fn statuses(&self, p: &Pipeline) -> Vec<StageStatus> {
        self.selected()
            .map(|(i, s)| {
                let reasons: Vec<String> = match &s.state {
                    StageState::Fresh { .. } => Vec::new(),
                    // A changed key gives one line per changed field.
                    StageState::Stale { reasons } => reasons
                        .iter()
                        .flat_map(|r| match r {
                            StaleReason::Changed(changes) => changes.iter().map(Change::to_string).collect(),
                            other => vec![other.to_string()],
                        })
                        .collect(),
                    StageState::Damaged { problems } => problems.clone(),
                    StageState::Waiting { on } => {
                        on.iter().map(|u| format!("waits for {}", p.stages[*u].name)).collect()
                    }
                };
                StageStatus { name: p.stages[i].name.clone(), state: s.state.word(), reasons, key: s.digest.clone() }
            })
            .collect()
    }
}
