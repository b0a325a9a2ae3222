//! The last key recorded for each stage name of one pipeline file, so `status` can
//! explain staleness as a difference of fields. Never used to decide a hit.
//!
//! Read only when needed: to explain a stage that must be computed, or to record a
//! key that differs from the one the pipeline's memo holds. A no-op run reads none.

use std::cell::OnceCell;
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
    stages: OnceCell<BTreeMap<String, Record>>,
    changed: BTreeMap<String, Record>,
}

#[derive(Serialize, Deserialize, Default)]
struct RecordFile {
    pipeline: String,
    stages: BTreeMap<String, Record>,
}

fn read(file: &Path) -> Option<RecordFile> {
    fs::read(file).ok().and_then(|b| serde_json::from_slice::<RecordFile>(&b).ok())
}

/// The name the cache's books of one pipeline file go by: a hash of its absolute path
/// (`records/<id>.json`, `records/<id>.memo`, `uses/<id>-...log`).
pub(crate) fn pipeline_id(pipeline: &str) -> String {
    blake3::hash(pipeline.as_bytes()).to_hex()[..16].to_string()
}

impl Records {
    /// The records of the pipeline file `pipeline` (absolute), kept under `dir`; the
    /// file is read on first use.
    pub fn load(dir: &Path, pipeline: &Path) -> Records {
        let file = dir.join(format!("{}.json", pipeline_id(&pipeline.to_string_lossy())));
        Records { file, stages: OnceCell::new(), changed: BTreeMap::new() }
    }

    fn stages(&self) -> &BTreeMap<String, Record> {
        self.stages.get_or_init(|| read(&self.file).map(|r| r.stages).unwrap_or_default())
    }

    pub fn get(&self, stage: &str) -> Option<&Record> {
        self.stages().get(stage)
    }

    pub fn set(&mut self, stage: &str, record: Record) {
        if self.get(stage).map(|r| &r.key) != Some(&record.key) {
            self.stages();
            let stages = self.stages.get_mut().expect("loaded above");
            stages.insert(stage.to_string(), record.clone());
            self.changed.insert(stage.to_string(), record);
        }
    }

    /// Write what changed, merged over what another process may have written since.
    pub fn save(&mut self, pipeline: &Path) -> std::io::Result<()> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let mut on_disk = read(&self.file).unwrap_or_default();
        on_disk.pipeline = pipeline.to_string_lossy().into_owned();
        on_disk.stages.extend(std::mem::take(&mut self.changed));
        let bytes = serde_json::to_vec(&on_disk).map_err(std::io::Error::other)?;
        crate::durable::write_bytes(&self.file, &bytes, false)
    }
}
