//! The long table and the findings as Markdown, for people: accuracies in percent.

use std::path::Path;

use super::atomic;
use super::build::Report;
use super::csv::HEADER;
use super::error::ReportError;

impl Report {
    pub fn write_markdown(&self, path: &Path) -> Result<(), ReportError> {
        atomic::write_bytes(path, self.to_markdown().as_bytes())
    }

    pub(crate) fn to_markdown(&self) -> String {
        let mut out = String::from(
            "# Transfer report\n\nTop-1 accuracy in percent over runs (std: sample standard deviation); \
             `n` is empty for base networks.\n\n",
        );
        out.push_str(&format!("| {} |\n", HEADER.join(" | ")));
        out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in &self.rows {
            let n = r.n.map(|n| n.to_string()).unwrap_or_default();
            let pct = |x: f64| format!("{:.2}", 100.0 * x);
            out.push_str(&format!(
                "| {} | {} | {n} | {} | {} | {} | {} | {} |\n",
                cell(&r.split),
                cell(&r.treatment),
                pct(r.mean_top1),
                pct(r.std_top1),
                pct(r.min_top1),
                pct(r.max_top1),
                r.runs
            ));
        }
        out.push_str("\n## Findings\n\n");
        out.push_str(&format!("{}\n\n", self.noise.describe()));
        for f in &self.findings {
            out.push_str(&format!("{}. **{}**, {}: {}\n", f.id, f.name, f.verdict.word(), f.detail));
        }
        out
    }
}

/// Escapes the one character that breaks a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use crate::report::build::build;
    use crate::report::test_records::run;

    #[test]
    fn rows_in_percent_then_findings() {
        let md = build(&[run("random", "baseB", None, 0.625), run("random", "AnB", Some(1), 0.5)]).to_markdown();
        assert!(md.contains("| random | baseB |  | 62.50 | 0.00 | 62.50 | 62.50 | 1 |\n"), "{md}");
        assert!(md.contains("| random | AnB | 1 | 50.00 |"), "{md}");
        assert!(md.contains("3. **specificity**, not measurable: needs BnB and AnB runs (missing: BnB)"), "{md}");
    }
}
