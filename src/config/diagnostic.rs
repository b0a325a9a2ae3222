//! Problems found in a pipeline file, and how they are shown.

use std::fmt::Write as _;
use std::path::Path;

use super::node::{KeyPath, Mark, Origin};

/// One problem: where, which key, what, and possibly a suggestion.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub mark: Mark,
    pub path: KeyPath,
    pub message: String,
    pub help: Option<String>,
}

/// Collects every problem of one validation pass, so all are reported at once.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, mark: Mark, path: &KeyPath, message: impl Into<String>) {
        self.items.push(Diagnostic { mark, path: path.clone(), message: message.into(), help: None });
    }

    pub fn error_help(&mut self, mark: Mark, path: &KeyPath, message: impl Into<String>, help: impl Into<String>) {
        self.items.push(Diagnostic { mark, path: path.clone(), message: message.into(), help: Some(help.into()) });
    }

    /// Matrix instances repeat the same mistake once per instance: say it once.
    pub fn dedup(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.items.retain(|d| seen.insert((d.mark.line, d.mark.col, d.mark.origin, d.message.clone())));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The text a diagnostic points into: the file, and the `--set` arguments.
pub struct Sources<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub sets: &'a [String],
}

/// Render problems the way compilers do: location, key path, message, the source line
/// with a caret, and the suggestion.
pub fn render(items: &[Diagnostic], src: &Sources<'_>) -> String {
    let mut sorted: Vec<&Diagnostic> = items.iter().collect();
    sorted.sort_by_key(|d| (matches!(d.mark.origin, Origin::File), d.mark.line, d.mark.col));
    let mut out = String::new();
    for d in sorted {
        let (place, line_text) = match d.mark.origin {
            Origin::File => (
                format!("{}:{}:{}", src.file.display(), d.mark.line, d.mark.col),
                src.text.lines().nth(d.mark.line.saturating_sub(1)).unwrap_or(""),
            ),
            Origin::Set(i) => (format!("--set {}", src.sets[i]), src.sets[i].as_str()),
        };
        let _ = writeln!(out, "error: {}", d.message);
        let _ = writeln!(out, "  --> {place}");
        let _ = writeln!(out, "   = key: {}", d.path);
        if matches!(d.mark.origin, Origin::File) {
            let num = d.mark.line.to_string();
            let pad = " ".repeat(num.len());
            let _ = writeln!(out, " {pad} |");
            // A binary file's bytes would move the terminal's cursor: show them as `�`.
            let shown: String =
                line_text.chars().map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c }).collect();
            let _ = writeln!(out, " {num} | {shown}");
            let _ = writeln!(out, " {pad} | {}^", " ".repeat(d.mark.col.saturating_sub(1)));
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "   = help: {h}");
        }
        out.push('\n');
    }
    let n = items.len();
    let _ = writeln!(
        out,
        "{} in {}",
        if n == 1 { "1 problem".to_string() } else { format!("{n} problems") },
        src.file.display()
    );
    out
}
