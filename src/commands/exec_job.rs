//! `pipe exec-job SPEC`: compute the one stage a cluster job file describes.

use std::path::Path;

use crate::error::Error;

pub fn exec_job(cache: &Path, spec: &Path) -> Result<(), Error> {
    match crate::engine::job::exec(cache, spec) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::JobFailed),
        Err(e) => Err(Error::Executor(e)),
    }
}
