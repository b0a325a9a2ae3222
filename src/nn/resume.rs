//! The resume state of a training run: everything needed to continue after the last
//! finished epoch and end with the same bytes as an uninterrupted run.
//!
//! One file, `train_state.safetensors`, published atomically after every epoch: the
//! trainable parameters ("param.NAME"), their momentum buffers ("momentum.NAME") and a
//! JSON record (epoch, random streams, logs, key) stored as a u8 tensor "state.json".
//! One file means one rename, so parameters and counters can never disagree. Frozen
//! parameters are not stored: they never change and the key covers their bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::error::NnError;
use super::step::EpochLog;
use crate::rng::Rng;

const STATE_FILE: &str = "train_state.safetensors";
const META: &str = "state.json";
/// Bump when the layout of the state or the meaning of its fields changes.
const STATE_VERSION: u32 = 1;

/// The random streams of a run; each purpose has its own so that, e.g., turning
/// augmentation on does not change the batch order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Streams {
    pub shuffle: Rng,
    pub dropout: Rng,
    pub augment: Rng,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        Streams {
            shuffle: Rng::derive(seed, "shuffle"),
            dropout: Rng::derive(seed, "dropout"),
            augment: Rng::derive(seed, "augment"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    key: String,
    /// Epochs finished.
    epoch: usize,
    streams: Streams,
    logs: Vec<EpochLog>,
}

pub(crate) struct TrainState {
    pub epoch: usize,
    pub streams: Streams,
    pub logs: Vec<EpochLog>,
    /// Trainable parameters only.
    pub params: BTreeMap<String, Tensor>,
    pub momentum: BTreeMap<String, Vec<f32>>,
}

pub(crate) fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Publishes the state after an epoch. `params` and `momentum` are the trainable ones.
pub(crate) fn save(
    dir: &Path,
    key: &str,
    epoch: usize,
    streams: &Streams,
    logs: &[EpochLog],
    params: &[(&str, &Tensor)],
    momentum: &[(&str, &[f32])],
) -> Result<(), NnError> {
    std::fs::create_dir_all(dir).map_err(|e| NnError::io(dir, e))?;
    let meta =
        Meta { version: STATE_VERSION, key: key.to_string(), epoch, streams: streams.clone(), logs: logs.to_vec() };
    let json = serde_json::to_vec(&meta).expect("state serialises");
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let json_len = json.len();
    tensors.insert(META.into(), Tensor::from_vec(json, json_len, &Device::Cpu)?);
    for (name, t) in params {
        tensors.insert(format!("param.{name}"), (*t).clone());
    }
    for (name, buf) in momentum {
        let t = Tensor::from_slice(buf, buf.len(), &Device::Cpu)?;
        tensors.insert(format!("momentum.{name}"), t);
    }
    let path = state_path(dir);
    write_atomic(&path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp)
            .map_err(|source| NnError::WriteTensors { path: path.clone(), source })
    })
}

/// The saved state if there is one and it was written for `key`; a state for another
/// key (other config, data or starting parameters) is ignored and later overwritten.
pub(crate) fn load(dir: &Path, key: &str) -> Result<Option<TrainState>, NnError> {
    let path = state_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |problem: String| NnError::State { path: path.clone(), problem };
    let mut tensors =
        candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let meta = tensors.remove(META).ok_or_else(|| bad(format!("no `{META}` record")))?;
    if meta.dtype() != DType::U8 {
        return Err(bad(format!("`{META}` is not bytes")));
    }
    let meta: Meta = serde_json::from_slice(&meta.to_vec1::<u8>()?).map_err(|e| bad(format!("bad `{META}`: {e}")))?;
    if meta.version != STATE_VERSION || meta.key != key {
        return Ok(None);
    }
    let mut params = BTreeMap::new();
    let mut momentum = BTreeMap::new();
    for (name, t) in tensors {
        if let Some(p) = name.strip_prefix("param.") {
            params.insert(p.to_string(), t);
        } else if let Some(m) = name.strip_prefix("momentum.") {
            momentum.insert(m.to_string(), t.to_vec1::<f32>()?);
        } else {
            return Err(bad(format!("unexpected tensor `{name}`")));
        }
    }
    Ok(Some(TrainState { epoch: meta.epoch, streams: meta.streams, logs: meta.logs, params, momentum }))
}
