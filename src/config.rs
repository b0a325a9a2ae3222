//! The pipeline file: YAML with positions, validation, matrix expansion, overrides.

pub mod diagnostic;
#[cfg(test)]
mod fuzz;
pub mod interpolate;
pub mod load;
pub mod node;
pub mod overrides;
pub mod params;
pub mod pipeline;
pub mod resources;
pub mod suggest;
pub mod yaml;

pub use load::{ConfigError, Pipeline, load, parse};
pub use pipeline::Kinds;
