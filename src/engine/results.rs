//! A pipeline's results as the cache holds them, for the report page (`pipe run`
//! writes one per report stage, `pipe show --html` one of the whole pipeline) and for
//! `pipe show`: the record of every trained network, with what only the cache knows
//! (each network's key and checkpoint, every stage's compute time). The page itself
//! is made by [`crate::report`]; where it goes and its title are the report kind's
//! ([`crate::kinds::report::page_path`]).

use std::collections::BTreeMap;

use crate::config::Pipeline;
use crate::kinds::report::record;
use crate::report::{Computed, Place, RunRecord, StageTime};
use crate::store::{Manifest, Store, StoreError};

/// The results could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot make a temporary folder")]
    Temp(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A network's files are in the cache but do not read as a trained network.
    #[error("the results of stage `{stage}` cannot be read: {reason}")]
    Record { stage: String, reason: String },
}

/// The pipeline's trained networks as the cache holds them.
#[derive(Default)]
pub struct Networks {
    pub records: Vec<RunRecord>,
    pub places: BTreeMap<String, Place>,
    /// Network stages not in the cache.
    pub missing: Vec<String>,
    /// Network stages whose results failed verification (quarantined, left out).
    pub damaged: Vec<String>,
}

pub fn is_network(p: &Pipeline, i: usize) -> bool {
    p.stages[i].kind.trains_network()
}

/// The network stages among `stages`, read from their manifests where `entry` has
/// one. Their info, metrics and log are verified as they are read; damaged ones are
/// left out.
pub fn networks<'m>(
    p: &Pipeline,
    store: &Store,
    stages: impl IntoIterator<Item = usize>,
    entry: impl Fn(usize) -> Option<&'m Manifest>,
) -> Result<Networks, ResultsError> {
    let mut out = Networks::default();
    for i in stages.into_iter().filter(|i| is_network(p, *i)) {
        let name = &p.stages[i].name;
        let Some(manifest) = entry(i) else {
            out.missing.push(name.clone());
            continue;
        };
        let dir = tempfile::tempdir().map_err(ResultsError::Temp)?;
        let linked =
            ["info.json", "metrics.json", "log.json"].iter().try_for_each(|file| match manifest.outputs.get(file) {
                Some(o) => store.link(&o.content, &dir.path().join(file)),
                None => Ok(()),
            });
        match linked {
            Ok(()) => out.records.push(
                record(name, dir.path())
                    .map_err(|f| ResultsError::Record { stage: name.clone(), reason: f.to_string() })?,
            ),
            // Damaged bytes are never shown: the stage is left out, and the plan now
            // calls it damaged, so `pipe run` computes it again.
            Err(e) if e.is_damage() => {
                out.damaged.push(name.clone());
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let checkpoint = manifest
            .outputs
            .get("network")
            .and_then(|o| o.content.files.iter().find(|f| f.path == crate::nn::MODEL_FILE))
            .map(|f| store.object_path(&f.digest).display().to_string())
            .unwrap_or_default();
        out.places.insert(name.clone(), Place { key: manifest.key.clone(), checkpoint });
    }
    Ok(out)
}

/// Every selected stage in the file's order, with its compute time from its manifest.
pub fn timeline<'m>(
    p: &Pipeline,
    selected: &[bool],
    entry: impl Fn(usize) -> Option<(&'m Manifest, Computed)>,
) -> Vec<StageTime> {
    (0..p.stages.len())
        .filter(|i| selected[*i])
        .map(|i| {
            let (seconds, how, job) = match entry(i) {
                Some((m, how)) => (Some(m.seconds), how, m.job.as_ref().map(job_use)),
                None => (None, Computed::Missing, None),
            };
            let (name, kind) = (p.stages[i].name.clone(), p.stages[i].kind.name().to_string());
            StageTime { name, kind, seconds, how, job }
        })
        .collect()
}

/// A manifest's cluster job as the page shows it.
fn job_use(j: &crate::store::JobRun) -> crate::report::JobUse {
    crate::report::JobUse {
        job: format!("{} job {}", j.executor, j.id.as_deref().unwrap_or("?")),
        node: j.node.clone(),
        asked: crate::engine::usage::asked_text(&j.asked),
        used: crate::engine::usage::used_text(&j.used),
    }
}
