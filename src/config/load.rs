//! Reading a pipeline file: text, `--set` overrides, validation, graph.

use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics, Sources, render};
use super::node::{KeyPath, Mark, Origin};
use super::overrides;
use super::pipeline::{Kinds, Stage, validate};
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
    /// Where the file says its stages run (`executor:`), if it says.
    pub executor: Option<super::resources::ExecutorName>,
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

/// The pipeline in `file`, with `--set` overrides, its stages read by `kinds`.
pub fn load(file: &Path, sets: &[String], kinds: Kinds) -> Result<Pipeline, ConfigError> {
    let bytes = std::fs::read(file).map_err(|source| ConfigError::Read { path: file.to_path_buf(), source })?;
    parse(file, &bytes, sets, kinds)
}

/// A pipeline from the bytes of `file` (read by the caller), with `--set` overrides.
/// Pure: nothing is read or written, so every mistake comes back as diagnostics.
pub fn parse(file: &Path, bytes: &[u8], sets: &[String], kinds: Kinds) -> Result<Pipeline, ConfigError> {
    let (text, not_text) = decode(bytes);
    let invalid = |diagnostics: Vec<Diagnostic>| ConfigError::Invalid {
        file: file.to_path_buf(),
        text: text.clone(),
        sets: sets.to_vec(),
        diagnostics,
    };
    if let Some(mark) = not_text {
        return Err(invalid(vec![Diagnostic {
            mark,
            path: KeyPath::root(),
            message: "not a text file: this byte is not UTF-8 (a pipeline file is YAML text)".into(),
            help: None,
        }]));
    }
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
    let validated = validate(&root, kinds, &mut diags);
    let dag = graph::build(&validated.stages, &validated.declared, &mut diags);
    diags.dedup();
    if !diags.is_empty() {
        return Err(invalid(diags.items));
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let workspace = workspace_of(&abs);
    let name = validated.name.unwrap_or_else(|| {
        file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline".to_string())
    });
    Ok(Pipeline { name, file: abs, workspace, stages: validated.stages, dag, executor: validated.executor })
}

/// The file's text without a UTF-8 byte-order mark (editors on Windows write one), and
/// where the first byte that is not UTF-8 is, if any (the text is then lossy).
/// The folder a pipeline file (absolute) runs in: its own.
pub fn workspace_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn decode(bytes: &[u8]) -> (String, Option<Mark>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(t) => (t.to_string(), None),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = 1 + good.iter().filter(|b| **b == b'\n').count();
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            let col = 1 + String::from_utf8_lossy(&good[line_start..]).chars().count();
            (String::from_utf8_lossy(bytes).into_owned(), Some(Mark { origin: Origin::File, line, col }))
        }
    }
}
