//! Running a pipeline: the plan (what the cache has and why the rest must run), the
//! scheduler, the executors that compute stages, and progress.

pub mod cancel;
pub mod execute;
pub mod executor;
pub mod local;
pub mod panics;
pub mod plan;
pub mod progress;
pub mod run;
