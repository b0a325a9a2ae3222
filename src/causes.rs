//! An error's chain of causes as lines of text, for every place that shows one.

use std::error::Error;

/// `e` and its sources, outermost first. A cause whose text the line before already
/// quotes (`cannot write x: No space left on device` over `No space left on device`)
/// is left out.
pub fn chain(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    extend(&mut lines, e);
    lines
}

/// Append `e`'s chain to `lines` under the same rule.
pub fn extend(lines: &mut Vec<String>, e: &(dyn Error + 'static)) {
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !lines.last().is_some_and(|l| l.contains(&text)) {
            lines.push(text);
        }
        next = e.source();
    }
}

/// [`chain`] on one line.
pub fn chain_text(e: &(dyn Error + 'static)) -> String {
    chain(e).join(": ")
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot write {path}")]
    struct Write {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn causes_are_listed_once() {
        let e = Write { path: "x".into(), source: std::io::Error::other("disk full") };
        assert_eq!(super::chain(&e), ["cannot write x", "disk full"]);
        let quoted = std::io::Error::other("disk full");
        let mut lines = vec!["writing: disk full".to_string()];
        super::extend(&mut lines, &quoted);
        assert_eq!(lines, ["writing: disk full"]);
    }
}
