//! Computing one stage: take its lock, check again, give the task its inputs (each
//! object verified) in a scratch folder, run it, store its outputs, publish the
//! manifest. Runs wherever the executor runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::Pipeline;
use crate::engine::cancel::CANCEL;
use crate::engine::executor::{Executed, Job};
use crate::engine::plan::KeyError;
use crate::graph::Source;
use crate::kind::{FailureClass, RunContext, StageFailure};
use crate::store::{Lookup, MANIFEST_FORMAT, Manifest, Output, Store, StoreError, Verified};

pub fn execute(store: &Store, p: &Pipeline, job: &Job) -> Result<Executed, StageFailure> {
    let stage = &p.stages[job.stage];
    let digest = job.key.digest();
    // Two processes that need the same key: one computes, the other waits here and
    // then finds the entry.
    let _lock = store.lock(&digest)?;
    if !job.force
        && let Lookup::Hit(m) = store.lookup(&digest)?
    {
        return Ok(Executed::Cached(*m));
    }
    let scratch = store.scratch()?;
    let out_dir = scratch.path().join("out");
    let log_path = job.log.clone().unwrap_or_else(|| scratch.path().join("log"));
    let in_dir = scratch.path().join("in");
    std::fs::create_dir_all(&out_dir).map_err(|e| StageFailure::caused("cannot create the scratch folder", e))?;
    std::fs::write(&log_path, b"").map_err(|e| StageFailure::caused("cannot create the stage log", e))?;
    let verify_started = Instant::now();
    let (inputs, verified_bytes) = gather_inputs(store, p, job, &in_dir)?;
    let inputs_verified = Verified { bytes: verified_bytes, seconds: verify_started.elapsed().as_secs_f64() };
    let resume_dir = store.resume_dir(&digest);
    let downloads = store.sub("downloads");
    let started = Instant::now();
    let ctx = RunContext {
        stage: &stage.name,
        workspace: &p.workspace,
        out_dir: &out_dir,
        log_path: &log_path,
        threads: job.threads,
        inputs: &inputs,
        resume_dir: &resume_dir,
        downloads: &downloads,
        progress: &*job.progress,
        cancel: &CANCEL,
    };
    stage.task.run(&ctx)?;
    let seconds = started.elapsed().as_secs_f64();
    for name in stage.task.outputs() {
        if std::fs::symlink_metadata(out_dir.join(&name)).is_err() {
            return Err(StageFailure::new(format!("the stage finished without writing its output `{name}`")));
        }
    }
    // From the first object stored to the manifest published, `gc` waits: it would
    // otherwise see objects that no entry names yet, and remove them.
    let _storing = store.gc_lock(false)?;
    let mut outputs = crate::name_map::NameMap::new();
    let mut names: Vec<String> = crate::digest::walk(&out_dir)
        .map_err(|e| StageFailure::caused("cannot list the outputs", e))?
        .into_iter()
        .map(|rel| rel.split('/').next().unwrap_or_default().to_string())
        .collect();
    names.dedup();
    for name in names {
        let content = store.store(&out_dir.join(&name))?;
        outputs.insert(name, Output { content, workspace: false });
    }
    for name in stage.task.workspace_outputs() {
        let content = store.store(&p.workspace.join(&name))?;
        outputs.insert(name, Output { content, workspace: true });
    }
    let log = Some(store.store(&log_path)?);
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        key: digest,
        key_struct: job.key.clone(),
        stage: stage.name.clone(),
        outputs,
        log,
        seconds,
        created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        inputs_verified: Some(inputs_verified),
        job: job.cluster.as_ref().map(crate::engine::usage::measure),
    };
    // Outputs first, manifest last: until this rename the entry does not exist.
    store.publish(&manifest)?;
    let _ = crate::durable::remove_path(&resume_dir);
    Ok(Executed::Ran(manifest))
}

/// Each input by role, as a path: workspace inputs where they are, stage outputs linked
/// from the cache into `in_dir` (one folder per role; a whole stage as a folder of its
/// outputs). An object that fails verification fails this stage as a damaged input of
/// the stage that produced it, which the scheduler then computes again. Also returns
/// how many bytes were verified.
fn gather_inputs(
    store: &Store,
    p: &Pipeline,
    job: &Job,
    in_dir: &std::path::Path,
) -> Result<(BTreeMap<String, PathBuf>, u64), StageFailure> {
    let mut out = BTreeMap::new();
    let mut bytes = 0u64;
    for input in &p.dag.inputs[job.stage] {
        let path = match &input.source {
            Source::Output(_, path) | Source::Workspace(path) => p.workspace.join(path),
            Source::Stage { stage, output } => {
                let dest = in_dir.join(&input.role);
                let produced = &job.upstream[stage];
                let one = match output {
                    Some(o) => Some(
                        &produced
                            .get(o)
                            .ok_or_else(|| {
                                StageFailure::from(KeyError::NoOutput {
                                    stage: p.stages[*stage].name.clone(),
                                    output: o.clone(),
                                })
                            })?
                            .content,
                    ),
                    None => None,
                };
                // A whole stage as a folder of the outputs this task reads.
                let reads = p.stages[job.stage].task.reads();
                let wanted = |name: &str| reads.is_none_or(|r| r.contains(&name));
                let parts: Vec<(&String, &crate::digest::Content)> = match one {
                    Some(_) => Vec::new(),
                    None => produced.iter().filter(|(name, _)| wanted(name)).map(|(n, o)| (n, &o.content)).collect(),
                };
                bytes += match one {
                    Some(c) => c.size,
                    None => parts.iter().map(|(_, c)| c.size).sum(),
                };
                if let Some(remote) = &job.remote {
                    let contents = one.into_iter().chain(parts.iter().map(|(_, c)| *c));
                    fetch_missing(store, remote, contents).map_err(|e| {
                        let what = format!("input `{}` from stage `{}`", input.role, p.stages[*stage].name);
                        if e.is_damage() {
                            // Computed here, it is whole again.
                            StageFailure::damaged_input(*stage, format!("{what}: {e}"))
                        } else {
                            StageFailure::caused(format!("cannot fetch {what} from the remote cache"), e)
                                .with_class(FailureClass::Io)
                        }
                    })?;
                }
                let linked = match one {
                    Some(c) => store.link(c, &dest),
                    None => std::fs::create_dir_all(&dest)
                        .map_err(|source| StoreError::Io { path: dest.clone(), source })
                        .and_then(|()| parts.iter().try_for_each(|(name, c)| store.link(c, &dest.join(name)))),
                };
                match linked {
                    Ok(()) => {}
                    Err(e) if e.is_damage() => {
                        let what = format!("input `{}` from stage `{}`: {e}", input.role, p.stages[*stage].name);
                        return Err(StageFailure::damaged_input(*stage, what));
                    }
                    Err(e) => return Err(StageFailure::caused(format!("cannot link input `{}`", input.role), e)),
                }
                dest
            }
        };
        out.insert(input.role.clone(), path);
    }
    Ok((out, bytes))
}

/// Bring from the remote the objects of `contents` the local cache lacks (an input
/// whose stage was found on the remote), each verified before it is stored.
fn fetch_missing<'c>(
    store: &Store,
    remote: &crate::remote::Remote,
    contents: impl Iterator<Item = &'c crate::digest::Content>,
) -> Result<(), crate::remote::RemoteError> {
    // `fetch` skips the objects already here.
    let files: Vec<&crate::digest::FileEntry> = contents.flat_map(|c| &c.files).collect();
    remote.fetch(store, &files, &crate::remote::Transfer::quiet()).map(drop)
}
