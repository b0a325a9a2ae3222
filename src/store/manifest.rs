//! What the cache knows about one computed stage.

use serde::{Deserialize, Serialize};

use crate::digest::Content;
use crate::key::StageKey;

pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The hex digest of `key_struct`.
    pub key: String,
    /// The full key, so `status` can say which field changed.
    pub key_struct: StageKey,
    /// The name of the stage that computed it (informational: not part of the key).
    pub stage: String,
    /// Output name -> content: workspace paths for `cmd`, file names for other kinds.
    pub outputs: crate::name_map::NameMap<Output>,
    /// The task's log (command output), kept beside the outputs.
    pub log: Option<Content>,
    pub seconds: f64,
    pub created_unix: u64,
    /// What checking the inputs' bytes against their digests cost before the task ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_verified: Option<Verified>,
    /// The cluster job that computed it, when one did (run information, not in the key;
    /// manifests written before it existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobRun>,
}

/// Where a cluster job computed an entry, what it asked for, and what it used, as the
/// job measured itself (so it is known without Slurm's accounting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// `slurm`.
    pub executor: String,
    /// The job's id (`SLURM_JOB_ID`; `42_3` for task 3 of array job 42).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The node it ran on (`SLURMD_NODENAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub asked: Asked,
    pub used: Used,
}

/// What a job asked the cluster for; `None`: the partition's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    pub cpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// What a job's process and the processes it waited for used (`getrusage`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Used {
    /// User and system CPU time.
    pub cpu_seconds: f64,
    /// The peak resident memory of the job's process or of its largest child.
    pub max_rss_bytes: u64,
    /// From the job's start to the entry's publication.
    pub wall_seconds: f64,
}

impl Used {
    /// CPUs kept busy on average.
    pub fn cpus(&self) -> f64 {
        if self.wall_seconds > 0.0 { self.cpu_seconds / self.wall_seconds } else { 0.0 }
    }
}

/// Input objects verified for one stage: how many bytes, in how long.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Verified {
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "OutputFields")]
pub struct Output {
    #[serde(flatten)]
    pub content: Content,
    /// Whether it belongs in the workspace (restored there on a hit).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workspace: bool,
}

/// An output as it is written, read field by field: serde's `flatten` would buffer
/// every output's fields before reading them, which made reading the run memo of a
/// 100,000-stage pipeline twice as slow.
#[derive(Deserialize)]
struct OutputFields {
    digest: String,
    size: u64,
    files: Vec<crate::digest::FileEntry>,
    #[serde(default)]
    dir: bool,
    #[serde(default)]
    workspace: bool,
}

impl Manifest {
    /// Every object the entry names: its outputs' files, then its log's.
    pub fn files(&self) -> impl Iterator<Item = &crate::digest::FileEntry> {
        self.outputs.values().flat_map(|o| &o.content.files).chain(self.log.iter().flat_map(|l| &l.files))
    }
}

impl From<OutputFields> for Output {
    fn from(mut o: OutputFields) -> Output {
        // As `Content` reads its list: without the room JSON's growth left.
        o.files.shrink_to_fit();
        Output {
            content: Content { digest: o.digest, size: o.size, files: o.files, dir: o.dir },
            workspace: o.workspace,
        }
    }
}
