//! The plan: for each selected stage, whether the cache has it (fresh), must compute it
//! and why (stale, damaged), or cannot know yet because an input must be computed
//! first (waiting). `run`, `status`, `--dry-run`, `show` and `gc` all read this; none
//! walks the graph on its own.
//!
//! One pass over the stages in topological order: a stage's key is made of its
//! parameters and its inputs' output digests, which the pass already knows for every
//! fresh input. The cost is one key and one manifest lookup per stage, linear in
//! stages and edges.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::config::Pipeline;
use crate::digest::StatCache;
use crate::graph::Source;
use crate::key::{Change, Params, StageKey, diff};
use crate::remote::{Remote, RemoteError};
use crate::store::{Damage, Lookup, Manifest, Memo, Output, Records, Store, StoreError};

/// The outputs of a finished stage by name, as its manifest has them (a sorted list:
/// a stage has a few outputs, and a plan holds one of these per stage).
pub type Produced = crate::name_map::NameMap<Output>;

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
    /// The key cannot be computed (a dependency file is missing or unreadable). Shared,
    /// since a plan's reasons are cloned and an IO error is not.
    Input(std::sync::Arc<KeyError>),
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
            StaleReason::Input(e) => f.write_str(&crate::causes::chain_text(&**e)),
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
    Damaged { problems: Vec<Damage> },
    /// An input (by stage index) must be computed first; its output decides this
    /// stage's key.
    Waiting { on: Vec<usize> },
    /// Not in the local cache; the remote the plan was given has it.
    Remote { manifest: Box<Manifest> },
}

impl StageState {
    pub fn word(&self) -> &'static str {
        match self {
            StageState::Fresh { .. } => "fresh",
            StageState::Stale { .. } => "stale",
            StageState::Damaged { .. } => "damaged",
            StageState::Waiting { .. } => "waiting",
            StageState::Remote { .. } => "remote",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub state: StageState,
    /// The key, where the inputs are known (a fresh stage's may be in its manifest
    /// instead).
    pub key: Option<StageKey>,
    /// The key's digest, where the inputs are known and the stage is not fresh (a fresh
    /// stage's is its manifest's key): see `digest()`.
    digest: Option<String>,
}

impl Planned {
    /// The digest of the stage's key, where its inputs are known.
    pub fn digest(&self) -> Option<&str> {
        match &self.state {
            StageState::Fresh { manifest } | StageState::Remote { manifest } => Some(&manifest.key),
            _ => self.digest.as_deref(),
        }
    }
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

    /// The keys of the selected stages that are fresh.
    pub fn fresh_keys(&self) -> impl Iterator<Item = &str> {
        self.selected().filter_map(|(_, s)| match &s.state {
            StageState::Fresh { manifest } => Some(manifest.key.as_str()),
            _ => None,
        })
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
        if targets.is_empty() && force.is_empty() {
            return Ok(Selection { selected: vec![true; p.stages.len()], forced: vec![false; p.stages.len()] });
        }
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

impl Selection {
    /// The stages `names` name (stages or matrix groups, spaces ignored), as the
    /// command line names them.
    pub fn named(p: &Pipeline, names: &[String]) -> Result<Vec<usize>, UnknownStage> {
        let index = NameIndex::new(p);
        let mut found = Vec::new();
        for name in names {
            found.extend(index.find(p, name)?);
        }
        Ok(found)
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

/// Plan the selected stages against the cache and, when given, a remote cache. Reads
/// manifests (through `memo`, and the remote's) and workspace file digests (through
/// `stat`); writes nothing.
///
/// Without a remote this is one pass in topological order. With one, a stage the
/// local cache lacks is asked of the remote, and the stages after it wait for the
/// answer: each pass asks every such stage it reached at once, in parallel, and the
/// next pass goes on from their answers.
pub fn plan(
    p: &Pipeline,
    store: &Store,
    sel: &Selection,
    books: &mut Books,
    remote: Option<&Remote>,
) -> Result<Plan, PlanError> {
    let n = p.stages.len();
    let mut pass = Pass {
        stages: vec![None; n],
        forced_outputs: HashMap::new(),
        // Parameters do not depend on inputs: those of the stages the last run found in
        // the cache (likely fresh again, so their keys are needed) are built at once, on
        // all cores; the others when their key is.
        params: {
            use rayon::prelude::*;
            let likely = |i: usize| sel.selected[i] && books.memo.remembers(&p.stages[i].name);
            (0..n).into_par_iter().map(|i| likely(i).then(|| p.stages[i].task.params())).collect()
        },
        unsettled: vec![false; n],
    };
    let mut pending: Vec<usize> = p.dag.order.iter().copied().filter(|&i| sel.selected[i]).collect();
    while !pending.is_empty() {
        let mut ask: Vec<(usize, Planned)> = Vec::new();
        let mut later = Vec::new();
        for &i in &pending {
            pass.unsettled[i] = false;
        }
        for i in pending {
            if p.dag.upstream[i].iter().any(|&u| pass.unsettled[u]) {
                pass.unsettled[i] = true;
                later.push(i);
                continue;
            }
            let planned = pass.local(p, store, sel, books, i)?;
            let missing = matches!(planned.state, StageState::Stale { .. } | StageState::Damaged { .. })
                && planned.digest.is_some()
                && !sel.forced[i];
            match remote {
                Some(_) if missing => {
                    pass.unsettled[i] = true;
                    ask.push((i, planned));
                }
                _ => pass.stages[i] = Some(planned),
            }
        }
        let Some(remote) = remote else { break };
        let digests: Vec<String> = ask.iter().filter_map(|(_, s)| s.digest.clone()).collect();
        let found = remote.manifests(&digests)?;
        for ((i, mut planned), m) in ask.into_iter().zip(found) {
            if let Some(m) = m {
                planned.state = StageState::Remote { manifest: Box::new(m) };
                planned.digest = None;
            }
            pass.unsettled[i] = false;
            pass.stages[i] = Some(planned);
        }
        pending = later;
    }
    Ok(Plan { stages: pass.stages })
}

/// What one planning pass knows so far.
struct Pass {
    stages: Vec<Option<Planned>>,
    /// The outputs of forced stages found in the cache (recomputed, but their keys stand
    /// for their readers' until then); every other known output is in its manifest.
    forced_outputs: HashMap<usize, Produced>,
    params: Vec<Option<Params>>,
    /// Stages whose entry the remote is being asked for, and the stages after them:
    /// they are planned in a later pass.
    unsettled: Vec<bool>,
}

impl Pass {
    /// Stage `i` against the local cache, its inputs planned already.
    fn local(
        &mut self,
        p: &Pipeline,
        store: &Store,
        sel: &Selection,
        books: &mut Books,
        i: usize,
    ) -> Result<Planned, StoreError> {
        let (stages, forced_outputs) = (&self.stages, &self.forced_outputs);
        let outputs_of = |u: usize| match &stages[u] {
            Some(Planned { state: StageState::Fresh { manifest } | StageState::Remote { manifest }, .. }) => {
                Some(&manifest.outputs)
            }
            _ => forced_outputs.get(&u),
        };
        let on: Vec<usize> = p.dag.upstream[i].iter().copied().filter(|u| outputs_of(*u).is_none()).collect();
        if !on.is_empty() {
            return Ok(Planned { state: StageState::Waiting { on }, key: None, digest: None });
        }
        let key = match key_with(p, i, self.params[i].take(), outputs_of, &mut books.stat) {
            Ok(k) => k,
            Err(e) => {
                let reasons = vec![StaleReason::Input(std::sync::Arc::new(e))];
                return Ok(Planned { state: StageState::Stale { reasons }, key: None, digest: None });
            }
        };
        let digest = key.digest();
        let (found, key) = books.memo.lookup(store, &p.stages[i].name, key, &digest)?;
        let state = match found {
            Lookup::Hit(m) if sel.forced[i] => {
                self.forced_outputs.insert(i, m.outputs);
                StageState::Stale { reasons: vec![StaleReason::Forced] }
            }
            Lookup::Hit(m) => StageState::Fresh { manifest: m },
            Lookup::Damaged { problems } => StageState::Damaged { problems },
            Lookup::Miss => {
                StageState::Stale { reasons: stale_reasons(&books.records, &p.stages[i].name, &digest, &key) }
            }
        };
        // A fresh stage's digest is its manifest's key: not held twice.
        let digest = (!matches!(state, StageState::Fresh { .. })).then_some(digest);
        Ok(Planned { state, key, digest })
    }
}

/// Why a stage that is not in the cache must be computed, from this pipeline's record
/// of the key it had last time.
fn stale_reasons(records: &Records, stage: &str, digest: &str, key: &Option<StageKey>) -> Vec<StaleReason> {
    match records.get(stage) {
        None => vec![StaleReason::NeverRun],
        Some(r) if r.key == digest => vec![StaleReason::EntryGone],
        Some(r) => match key.as_ref().map(|k| diff(&r.key_struct, k)).unwrap_or_default() {
            d if d.is_empty() => vec![StaleReason::KeyChanged],
            d => vec![StaleReason::Changed(d)],
        },
    }
}

/// A plan could not be made: the local cache or the remote failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The key of stage `i`; every stage it depends on must have finished (`produced`).
pub fn stage_key(
    p: &Pipeline,
    i: usize,
    produced: &[Option<Produced>],
    stat: &mut StatCache,
) -> Result<StageKey, KeyError> {
    key_with(p, i, None, |u| produced[u].as_ref(), stat)
}

/// The key of stage `i`, with its parameters when they are already built.
fn key_with<'a>(
    p: &Pipeline,
    i: usize,
    params: Option<Params>,
    produced: impl Fn(usize) -> Option<&'a Produced>,
    stat: &mut StatCache,
) -> Result<StageKey, KeyError> {
    let stage = &p.stages[i];
    // Gathered, then sorted once: a report can read tens of thousands of inputs, and
    // inserting each into a sorted list would move the ones after it every time.
    let mut inputs = Vec::with_capacity(p.dag.inputs[i].len());
    for input in &p.dag.inputs[i] {
        let digest = match &input.source {
            Source::Output(s, path) => match produced(*s).and_then(|o| o.get(path)) {
                Some(o) => o.content.digest.clone(),
                None => workspace_digest(p, path, stat)?,
            },
            Source::Workspace(path) => workspace_digest(p, path, stat)?,
            Source::Stage { stage: s, output } => {
                let outs = produced(*s).ok_or_else(|| KeyError::NotProduced(p.stages[*s].name.clone()))?;
                match output {
                    Some(o) => outs
                        .get(o)
                        .map(|o| o.content.digest.clone())
                        .ok_or_else(|| KeyError::NoOutput { stage: p.stages[*s].name.clone(), output: o.clone() })?,
                    None => all_outputs_digest(outs),
                }
            }
        };
        inputs.push((input.role.clone(), digest));
    }
    let inputs: crate::name_map::NameMap<String> = inputs.into_iter().collect();
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
    for (name, o) in outs.iter() {
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(o.content.digest.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// The file in the cache's `stat/` that remembers this workspace's file digests.
pub fn workspace_id(p: &Pipeline) -> String {
    workspace_file(&p.workspace)
}

fn workspace_file(workspace: &Path) -> String {
    let id = blake3::hash(workspace.to_string_lossy().as_bytes()).to_hex();
    format!("{}.stat", &id[..16])
}

/// What the cache keeps beside its entries for one pipeline file: the digests of its
/// workspace's files, the last key of each stage, and the memo of the entries the last
/// run found. All of it is found from the file's path alone, so a command reads it
/// while the file is parsed (at 100,000 stages each takes a quarter of a second).
pub struct Books {
    pub stat: StatCache,
    pub records: Records,
    pub memo: Memo,
}

impl Books {
    /// The books of pipeline file `file` (absolute, as `Pipeline::file` is).
    pub fn load(store: &Store, file: &Path) -> Books {
        let workspace = crate::config::load::workspace_of(file);
        let (stat, memo) = rayon::join(
            || StatCache::load(store.sub("stat").join(workspace_file(&workspace))),
            || Memo::load(store, file),
        );
        Books { stat, records: Records::load(&store.sub("records"), file), memo }
    }
}

/// The plan of a pipeline as `status` and friends need it: loads the stat cache, the
/// records and the memo of the last run, plans, and saves the stat cache (the only
/// thing it may write). Only `run` writes the memo: it keeps the records in step with
/// it.
pub fn plan_pipeline(p: &Pipeline, store: &Store, sel: &Selection, remote: Option<&Remote>) -> Result<Plan, PlanError> {
    plan_with(p, store, sel, Books::load(store, &p.file), remote)
}

/// As `plan_pipeline`, with the books already read and, when given, a remote cache
/// (its entries are `remote` in the plan).
pub fn plan_with(
    p: &Pipeline,
    store: &Store,
    sel: &Selection,
    mut books: Books,
    remote: Option<&Remote>,
) -> Result<Plan, PlanError> {
    let plan = plan(p, store, sel, &mut books, remote)?;
    let _ = books.stat.save();
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
                    StageState::Damaged { problems } => problems.iter().map(Damage::to_string).collect(),
                    StageState::Waiting { on } => {
                        on.iter().map(|u| format!("waits for {}", p.stages[*u].name)).collect()
                    }
                    StageState::Remote { .. } => vec!["on the remote".to_string()],
                };
                StageStatus {
                    name: p.stages[i].name.clone(),
                    state: s.state.word(),
                    reasons,
                    key: s.digest().map(str::to_string),
                }
            })
            .collect()
    }
}
