//! `pipe exec-job SPEC...`: compute the stages cluster job files describe, one after
//! another. Each stage writes its own report and publishes its own entry as soon as
//! it is done, and one that fails does not stop the others (they were all ready when
//! the job was submitted, so none needs another).

use std::path::{Path, PathBuf};

use crate::error::Error;

pub fn exec_job(cache: &Path, specs: &[PathBuf]) -> Result<(), Error> {
    let mut failed = None;
    for spec in specs {
        let error = match crate::engine::job::exec(cache, spec) {
            Ok(true) => continue,
            Ok(false) => Error::JobFailed,
            Err(e) => Error::Executor(e),
        };
        // Of several stages, each failure is told here and the job's status says one
        // failed; each stage's report says how.
        failed = Some(if specs.len() > 1 {
            eprintln!("{}: {}", spec.display(), error.render());
            Error::JobFailed
        } else {
            error
        });
    }
    failed.map_or(Ok(()), Err)
}
