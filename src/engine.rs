//! Running a pipeline: the plan (what the cache has and why the rest must run), the
//! scheduler, the executors that compute stages (threads here, or Slurm jobs), and
//! progress.

pub mod cancel;
pub mod execute;
pub mod executor;
pub mod job;
pub mod local;
pub mod panics;
pub mod plan;
pub mod progress;
pub mod results;
pub mod run;
pub mod slurm;
pub mod slurm_call;
pub mod usage;
