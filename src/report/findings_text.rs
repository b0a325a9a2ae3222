//! The findings as text: a line on the noise, then one line per finding.

use super::build::Report;

impl Report {
    /// One line per finding with its verdict as an ASCII word (`reproduced`,
    /// `NOT reproduced`, `not measurable`), after a line saying which noise the
    /// verdicts were measured against.
    pub fn render_findings(&self) -> String {
        let mut out = format!("{}\n", self.noise.describe());
        out.push_str(&super::sanity::render(&self.bases));
        for f in &self.findings {
            out.push_str(&format!("{}. {:<14}  {}: {}\n", f.id, f.verdict.word(), f.name, f.detail));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::report::build::build;
    use crate::report::test_records::paper_records;

    #[test]
    fn one_line_per_finding_after_the_noise() {
        let text = build(&paper_records(1)).render_findings();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(lines[0].starts_with("noise: one run per cell"), "{text}");
        assert_eq!(
            lines[2],
            "2. reproduced      co-adaptation dip: BnB at n=5 is 3.2 below base and 3.0 back up at n=7 \
             (noise 1.0; paper: 3.2 below at n=5, 2.0 at n=4, 3.0 back up at n=7)"
        );
        assert!(lines[5].starts_with("5. not measurable  distance hurts: needs a random and a by_group"), "{text}");
    }
}
