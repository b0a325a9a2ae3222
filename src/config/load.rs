//! Reading a pipeline file: text, `--set` overrides, validation, graph.

use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics, Sources, render};
use super::node::{KeyPath, Origin};
use super::overrides;
use super::pipeline::{Stage, validate};
use super::yaml;
use crate::graph::{self, Dag};

/// A validated pipeline, ready to plan and run.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    /// The pipeline file's folder: commands run here and relative paths start here.
    pub workspace: PathBuf,
    pub stages: Vec<Stage>,
    pub dag: Dag,
}

impl Pipeline {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", render(diagnostics, &Sources { file, text, sets }).trim_end())]
    Invalid { file: PathBuf, text: String, sets: Vec<String>, diagnostics: Vec<Diagnostic> },
}

pub fn load(file: &Path, sets: &[String]) -> Result<Pipeline, ConfigError> {
    let text =
        std::fs::read_to_string(file).map_err(|source| ConfigError::Read { path: file.to_path_buf(), source })?;
    let invalid = |diagnostics: Vec<Diagnostic>| ConfigError::Invalid {
        file: file.to_path_buf(),
        text: text.clone(),
        sets: sets.to_vec(),
        diagnostics,
    };
    let mut root = yaml::parse(&text, Origin::File).map_err(|e| {
        invalid(vec![Diagnostic {
            mark: e.mark,
            path: KeyPath::root(),
            message: format!("invalid YAML: {}", e.message),
            help: None,
        }])
    })?;
    let mut diags = Diagnostics::default();
    overrides::apply(&mut root, sets, &mut diags);
    let validated = validate(&root, &mut diags);
    let dag = graph::build(&validated.stages, &validated.declared, &mut diags);
    diags.dedup();
    if !diags.is_empty() {
        return Err(invalid(diags.items));
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let workspace = abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let name = validated.name.unwrap_or_else(|| {
        file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline".to_string())
    });
    Ok(Pipeline { name, file: abs, workspace, stages: validated.stages, dag })
}
