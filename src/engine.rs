//! Running a pipeline: keys, cache lookups, the scheduler, progress, and the verdicts
//! that `run` and `status` print.

pub mod cancel;
pub mod execute;
pub mod plan;
pub mod progress;
pub mod run;
pub mod status;
