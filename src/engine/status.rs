//! `pipe status`: for each stage, whether the cache has it (fresh), it must run and why
//! (stale), or it waits on a stale input whose output decides its key (waiting).
//!
//! Nothing runs and nothing is written. A stale stage's reasons compare its new key,
//! field by field, with the key it had the last time this pipeline file ran it.

use serde::Serialize;

use crate::config::Pipeline;
use crate::digest::StatCache;
use crate::engine::plan::{Produced, select, stage_key};
use crate::engine::run::{produced_of, workspace_id};
use crate::key::diff;
use crate::store::{Records, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Fresh,
    Stale,
    Waiting,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub name: String,
    pub state: State,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

pub fn status(p: &Pipeline, store: &Store, targets: &[String]) -> Result<Vec<StageStatus>, StatusError> {
    let selected = select(p, targets).map_err(StatusError::Target)?;
    let mut stat = StatCache::load(store.sub("stat").join(workspace_id(p)));
    let records = Records::load(&store.sub("records"), &p.file);
    let n = p.stages.len();
    let mut outputs: Vec<Option<Produced>> = vec![None; n];
    let mut out: Vec<Option<StageStatus>> = vec![None; n];
    for &i in &p.dag.order {
        if !selected[i] {
            continue;
        }
        let name = p.stages[i].name.clone();
        let blocked: Vec<String> = p.dag.upstream[i]
            .iter()
            .filter(|u| outputs[**u].is_none())
            .map(|u| format!("waits for {}", p.stages[*u].name))
            .collect();
        if !blocked.is_empty() {
            out[i] = Some(StageStatus { name, state: State::Waiting, reasons: blocked, key: None });
            continue;
        }
        let key = match stage_key(p, i, &outputs, &mut stat) {
            Ok(k) => k,
            Err(e) => {
                out[i] = Some(StageStatus { name, state: State::Stale, reasons: vec![e.to_string()], key: None });
                continue;
            }
        };
        let digest = key.digest();
        if let Some(m) = store.entry(&digest)? {
            outputs[i] = Some(produced_of(&m));
            out[i] = Some(StageStatus { name, state: State::Fresh, reasons: Vec::new(), key: Some(digest) });
            continue;
        }
        let reasons = match records.stages.get(&name) {
            None => vec!["never run".to_string()],
            Some(r) if r.key == digest => vec!["its cache entry is gone (removed, or another cache)".to_string()],
            Some(r) => {
                let d = diff(&r.key_struct, &key);
                if d.is_empty() { vec!["key changed".to_string()] } else { d }
            }
        };
        out[i] = Some(StageStatus { name, state: State::Stale, reasons, key: Some(digest) });
    }
    let _ = stat.save();
    Ok(out.into_iter().flatten().collect())
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
