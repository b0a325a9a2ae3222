//! The readable table printed at the end of `pipe run`: the paper's table, per split.

use super::build::Report;
use super::column::Column;
use super::panel::Panel;
use super::stats::Stats;

impl Report {
    /// One block per split: a header line, then rows n = 1..L with the columns
    /// base | BnB | BnB+ | AnB | AnB+ | random, in percent, `mean ±std` where a cell
    /// has more than one run and `-` where it has none. Base repeats on every row so
    /// that each row reads on its own.
    pub fn render_table(&self) -> String {
        if self.panels.is_empty() {
            return "no runs to report\n".to_owned();
        }
        self.panels.iter().map(render_panel).collect::<Vec<_>>().join("\n")
    }
}

/// A human name for a split, as in the paper's figure titles.
pub(crate) fn split_title(panel: &Panel) -> String {
    let halves = match panel.split.as_str() {
        "random" => "similar halves, ",
        "by_group" => "dissimilar halves, ",
        _ => "",
    };
    format!("{} split ({halves}target {})", panel.split, panel.targets.join("+"))
}

fn render_panel(panel: &Panel) -> String {
    let runs: Vec<usize> = panel.cells.values().map(|s| s.runs).collect();
    let (lo, hi) = (runs.iter().min().copied().unwrap_or(0), runs.iter().max().copied().unwrap_or(0));
    let per_cell = if lo == hi { format!("{lo}") } else { format!("{lo}-{hi}") };
    let total: usize = runs.iter().sum();
    let mut out =
        format!("{}: {total} runs, {per_cell} per cell; top-1 accuracy (%), mean ±std over runs\n", split_title(panel));

    let ns: Vec<usize> = (1..=panel.max_n().max(1)).collect();
    let cell = |column: Column, n: usize| panel.cell(column, if column == Column::Base { 0 } else { n });
    // Each column: the mean right-aligned in its own width, then the spread, so that
    // the decimal points line up whether or not a cell has a spread.
    let mut columns: Vec<Vec<String>> = Vec::new();
    for column in Column::TABLE {
        let parts: Vec<(String, String)> = ns.iter().map(|&n| parts(cell(column, n))).collect();
        let mean_w = parts.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        let spread_w = parts.iter().map(|(_, s)| s.chars().count()).max().unwrap_or(0);
        let width = (mean_w + spread_w).max(column.label().len());
        let mut lines = vec![format!("{:<width$}", column.label())];
        lines.extend(parts.iter().map(|(m, s)| format!("{:<width$}", format!("{m:>mean_w$}{s}"))));
        columns.push(lines);
    }
    let n_width = ns.last().map_or(1, |n| n.to_string().len());
    for line in 0..=ns.len() {
        let label = if line == 0 { "n".to_owned() } else { ns[line - 1].to_string() };
        let mut text = format!("{label:>n_width$}");
        for column in &columns {
            text.push_str("  ");
            text.push_str(&column[line]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The mean and the ` ±std` suffix of a cell, or `-` and nothing.
fn parts(stats: Option<&Stats>) -> (String, String) {
    match stats {
        None => ("-".to_owned(), String::new()),
        Some(s) if s.runs > 1 => (format!("{:.1}", s.mean), format!(" ±{:.1}", s.std)),
        Some(s) => (format!("{:.1}", s.mean), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use crate::report::build::build;
    use crate::report::test_records::{base, seeded, series};

    #[test]
    fn small_table_exactly() {
        let mut records = vec![base("random", 62.5)];
        records.extend(series("random", "BnB", &[62.0, 60.0]));
        records.extend(series("random", "AnB+", &[63.0, 64.0]));
        records.push(seeded("random", "AnB+", Some(2), 1, 0.65));
        records.push(seeded("random", "random", Some(1), 0, 0.049));
        let want = "\
random split (similar halves, target B): 7 runs, 1-2 per cell; top-1 accuracy (%), mean ±std over runs
n  base  BnB   BnB+  AnB  AnB+       random
1  62.5  62.0  -     -    63.0       4.9
2  62.5  60.0  -     -    64.5 ±0.7    -
";
        assert_eq!(build(&records).render_table(), want);
    }

    #[test]
    fn fits_100_columns_with_wide_cells() {
        let mut records = vec![base("random", 99.9), seeded("random", "baseB", None, 1, 0.5)];
        for t in ["BnB", "BnB+", "AnB", "AnB+", "random"] {
            records.extend(series("random", t, &[100.0; 12]));
            records.extend((1..=12).map(|n| seeded("random", t, Some(n), 1, 0.0)));
        }
        let table = build(&records).render_table();
        assert!(table.lines().skip(1).all(|l| l.chars().count() <= 100), "{table}");
        assert!(table.contains("12  75.0 ±35.3  50.0 ±70.7"), "{table}");
    }
}
