//! A pipeline's stages against the local cache and a remote: which entries are here,
//! which are on the remote, and which neither has. A stage's key needs its inputs'
//! outputs, so stages are resolved in waves: each wave is every stage whose inputs are
//! resolved, and its remote manifests are fetched in parallel.

use rayon::prelude::*;

use super::{Remote, RemoteError};
use crate::config::Pipeline;
use crate::digest::StatCache;
use crate::engine::plan::{Plan, Produced, Selection, StageState, plan_pipeline, stage_key, workspace_id};
use crate::store::{Lookup, Manifest, Store};

/// Where one selected stage's entry is.
#[derive(Debug)]
pub enum Resolved {
    Local(Box<Manifest>),
    Remote(Box<Manifest>),
    /// Neither cache has it (`key`, when its inputs are known).
    Missing {
        key: Option<String>,
    },
}

impl Resolved {
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            Resolved::Local(m) | Resolved::Remote(m) => Some(m),
            Resolved::Missing { .. } => None,
        }
    }
}

/// Each selected stage (by index; `None` when not selected), resolved.
pub fn resolve(
    p: &Pipeline,
    store: &Store,
    remote: &Remote,
    sel: &Selection,
) -> Result<Vec<Option<Resolved>>, ResolveError> {
    let plan = plan_pipeline(p, store, sel)?;
    resolve_plan(p, store, remote, &plan)
}

/// [`resolve`], from a plan made already.
pub fn resolve_plan(
    p: &Pipeline,
    store: &Store,
    remote: &Remote,
    plan: &Plan,
) -> Result<Vec<Option<Resolved>>, ResolveError> {
    let n = p.stages.len();
    let mut out: Vec<Option<Resolved>> = (0..n).map(|_| None).collect();
    let mut produced: Vec<Option<Produced>> = vec![None; n];
    let mut pending: Vec<usize> = Vec::new();
    for &i in &p.dag.order {
        let Some(planned) = &plan.stages[i] else { continue };
        match &planned.state {
            StageState::Fresh { manifest } => {
                produced[i] = Some(manifest.outputs.clone());
                out[i] = Some(Resolved::Local(manifest.clone()));
            }
            _ => pending.push(i),
        }
    }
    let mut stat = StatCache::load(store.sub("stat").join(workspace_id(p)));
    let pool = super::sync::pool();
    loop {
        // The stages whose inputs are all resolved (in the order of the graph).
        let (wave, rest): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&i| p.dag.upstream[i].iter().all(|u| produced[*u].is_some()));
        if wave.is_empty() {
            break;
        }
        pending = rest;
        let mut ask = Vec::new();
        for i in wave {
            let key =
                stage_key(p, i, &produced, &mut stat).map_err(|e| ResolveError::Key(p.stages[i].name.clone(), e))?;
            let digest = key.digest();
            match store.lookup(&digest)? {
                Lookup::Hit(m) => {
                    produced[i] = Some(m.outputs.clone());
                    out[i] = Some(Resolved::Local(m));
                }
                Lookup::Miss | Lookup::Damaged { .. } => ask.push((i, digest)),
            }
        }
        let found: Vec<Result<Option<Manifest>, RemoteError>> =
            pool.install(|| ask.par_iter().map(|(_, digest)| remote.manifest(digest)).collect());
        for ((i, digest), m) in ask.into_iter().zip(found) {
            match m? {
                Some(m) => {
                    produced[i] = Some(m.outputs.clone());
                    out[i] = Some(Resolved::Remote(Box::new(m)));
                }
                None => out[i] = Some(Resolved::Missing { key: Some(digest) }),
            }
        }
    }
    for i in pending {
        out[i] = Some(Resolved::Missing { key: None });
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("stage `{0}`: {1}")]
    Key(String, crate::engine::plan::KeyError),
}
