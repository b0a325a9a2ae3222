//! One stage computed by another `pipe` process (a cluster job): what the submitter
//! writes for it ([`JobSpec`]), what the job writes back ([`JobReport`]), and the job's
//! side, `pipe exec-job SPEC` ([`exec`]).
//!
//! The job loads the same pipeline file with the same `--set` overrides, computes the
//! stage's key from the inputs the submitter names, and refuses to run when that key is
//! not the submitter's (the file changed in between): a job computes exactly the entry
//! it was submitted for, or nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Pipeline;
use crate::digest::StatCache;
use crate::engine::executor::{ClusterJob, ExecError, Executed, Executor, Job};
use crate::engine::local::Local;
use crate::engine::plan::{Produced, stage_key, workspace_id};
use crate::key::StageKey;
use crate::kind::{FailureClass, StageFailure};
use crate::store::Store;

/// Everything a job needs to compute one stage; written as JSON beside its script.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobSpec {
    /// The pipeline file, absolute.
    pub pipeline: PathBuf,
    pub sets: Vec<String>,
    pub stage: String,
    pub key: StageKey,
    /// The outputs of each stage it reads, by stage name.
    pub upstream: BTreeMap<String, Produced>,
    pub threads: usize,
    pub force: bool,
    /// Where the stage's own output (a command's, training lines) goes, so the
    /// submitter can show its last lines whatever ends the job.
    pub log: PathBuf,
    /// Where the job writes its [`JobReport`].
    pub report: PathBuf,
    /// What the job asked the cluster for, recorded in the entry beside what it used.
    #[serde(default)]
    pub asked: Option<crate::store::Asked>,
}

/// How a job ended, as it saw it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum JobReport {
    /// The entry is in the cache: computed by this job, or found there (another
    /// process computed it meanwhile).
    Ok { ran: bool, seconds: f64 },
    /// The stage failed: its message and causes, outermost first.
    Failed { chain: Vec<String>, tail: Vec<String>, class: FailureClass, seconds: f64 },
}

impl JobReport {
    pub fn read(path: &Path) -> Option<JobReport> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// `pipe exec-job SPEC`: compute the stage and write the report. `Ok(true)` when the
/// entry is in the cache afterwards.
pub fn exec(cache: &Path, spec_path: &Path) -> Result<bool, ExecError> {
    let path = || spec_path.to_path_buf();
    let text = std::fs::read(spec_path).map_err(|source| ExecError::ReadJob { path: path(), source })?;
    let spec: JobSpec = serde_json::from_slice(&text).map_err(|source| ExecError::BadJob { path: path(), source })?;
    let started = std::time::Instant::now();
    let result = compute(cache, &spec, started, crate::engine::usage::cpu_so_far());
    let seconds = started.elapsed().as_secs_f64();
    let report = match &result {
        Ok(Executed::Ran(_)) => JobReport::Ok { ran: true, seconds },
        Ok(Executed::Cached(_)) => JobReport::Ok { ran: false, seconds },
        Err(f) => JobReport::Failed { chain: f.chain(), tail: f.tail.clone(), class: f.class, seconds },
    };
    if let Err(f) = &result {
        eprintln!("stage `{}` failed: {f}", spec.stage);
    }
    let bytes = serde_json::to_vec_pretty(&report).expect("a report is plain data");
    crate::durable::write_bytes(&spec.report, &bytes, true)
        .map_err(|source| ExecError::WriteReport { path: spec.report.clone(), source })?;
    Ok(result.is_ok())
}

fn compute(
    cache: &Path,
    spec: &JobSpec,
    started: std::time::Instant,
    cpu_before: f64,
) -> Result<Executed, StageFailure> {
    let p = crate::config::load(&spec.pipeline, &spec.sets, crate::kinds::registry())
        .map_err(|e| StageFailure::new(format!("the job cannot load the pipeline: {e}")))?;
    let store = Store::open(cache)?;
    let i = p
        .index_of(&spec.stage)
        .ok_or_else(|| StageFailure::new(format!("the pipeline has no stage `{}` any more", spec.stage)))?;
    let mut produced: Vec<Option<Produced>> = vec![None; p.stages.len()];
    let mut upstream = BTreeMap::new();
    for (name, outputs) in &spec.upstream {
        let u = p
            .index_of(name)
            .ok_or_else(|| StageFailure::new(format!("the pipeline has no stage `{name}` any more")))?;
        produced[u] = Some(outputs.clone());
        upstream.insert(u, outputs.clone());
    }
    // The workspace's digests as the submitter last saw them, read only: many jobs
    // share the file, and only the submitter writes it.
    let mut stat = StatCache::load(store.sub("stat").join(workspace_id(&p)));
    let key = stage_key(&p, i, &produced, &mut stat)?;
    if key.digest() != spec.key.digest() {
        return Err(changed(&p, i));
    }
    let job = Job {
        stage: i,
        key,
        threads: spec.threads,
        force: spec.force,
        upstream,
        progress: Box::new(|line| println!("{line}")),
        announce: Box::new(|_| {}),
        log: Some(spec.log.clone()),
        remote: None,
        cluster: spec.asked.clone().map(|asked| ClusterJob { asked, started, cpu_before }),
    };
    std::thread::scope(|scope| {
        let mut local = Local::new(scope, &p, &store, spec.threads);
        local.start(job);
        local.wait().result
    })
}

fn changed(p: &Pipeline, i: usize) -> StageFailure {
    StageFailure::new(format!(
        "stage `{}` has another key in {} than when the job was submitted (the file or an input changed); \
         run pipe again",
        p.stages[i].name,
        p.file.display()
    ))
}
