//! One module per subcommand: each loads what it needs, calls the library and prints.

pub mod cache;
pub mod dag;
pub mod page;
pub mod remote;
pub mod run;
pub mod show;
pub mod status;

use crate::cli::PipelineArgs;
use crate::config::{Pipeline, load};
use crate::error::Error;

pub fn load_pipeline(a: &PipelineArgs) -> Result<Pipeline, Error> {
    Ok(load(&a.file, &a.sets)?)
}
