//! The last key recorded for each stage name of one pipeline file, so `status` can
//! explain staleness as a difference of fields. Never used to decide a hit.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::key::StageKey;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub key_struct: StageKey,
}

#[derive(Debug, Default)]
pub struct Records {
    file: PathBuf,
    pub stages: BTreeMap<String, Record>,
    changed: BTreeMap<String, Record>,
}

#[derive(Serialize, Deserialize, Default)]
struct RecordFile {
    pipeline: String,
    stages: BTreeMap<String, Record>,
}

impl Records {
    /// The records of the pipeline file `pipeline` (absolute), kept under `dir`.
    pub fn load(dir: &Path, pipeline: &Path) -> Records {
        let id = blake3::hash(pipeline.to_string_lossy().as_bytes()).to_hex();
        let file = dir.join(format!("{}.json", &id[..16]));
        let stages = fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<RecordFile>(&b).ok())
            .map(|r| r.stages)
            .unwrap_or_default();
        Records { file, stages, changed: BTreeMap::new() }
    }

    pub fn set(&mut self, stage: &str, record: Record) {
        if self.stages.get(stage) != Some(&record) {
            self.stages.insert(stage.to_string(), record.clone());
            self.changed.insert(stage.to_string(), record);
        }
    }

    /// Write what changed, merged over what another process may have written since.
    pub fn save(&mut self, pipeline: &Path) -> std::io::Result<()> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let mut on_disk =
            fs::read(&self.file).ok().and_then(|b| serde_json::from_slice::<RecordFile>(&b).ok()).unwrap_or_default();
        on_disk.pipeline = pipeline.to_string_lossy().into_owned();
        on_disk.stages.extend(std::mem::take(&mut self.changed));
        let bytes = serde_json::to_vec_pretty(&on_disk).map_err(std::io::Error::other)?;
        crate::durable::write_bytes(&self.file, &bytes, false)
    }
}
