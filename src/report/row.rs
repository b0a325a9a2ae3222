//! The long table: one row per (split, treatment, n), in the units of `metrics.json`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::column::Column;
use super::record::RunRecord;
use super::stats::Stats;

/// One row of the long table. Accuracies are fractions in 0..1, as in `metrics.json`,
/// so the machine-readable files need no unit convention; text output prints percent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub split: String,
    /// The literal treatment name (`baseB`, `AnB+`, ...), not pooled across targets.
    pub treatment: String,
    /// `None` for base networks.
    pub n: Option<usize>,
    pub mean_top1: f64,
    pub std_top1: f64,
    pub min_top1: f64,
    pub max_top1: f64,
    pub runs: usize,
}

/// Groups the records into rows, sorted by split, then n (base first), then treatment
/// in the paper's column order (base, BnB, BnB+, AnB, AnB+, random, then the rest by
/// name), so that every writer produces the same bytes for the same records.
pub(crate) fn long_table(records: &[RunRecord]) -> Vec<Row> {
    /// (split, n, treatment) -> (the treatment's rank for sorting, top-1 of its runs).
    type Groups<'a> = BTreeMap<(&'a str, Option<usize>, String), (Column, Vec<f64>)>;
    let mut groups: Groups<'_> = BTreeMap::new();
    for r in records {
        let column = Column::classify(&r.treatment, &r.target_half);
        let (rank, values) = groups.entry((&r.split, r.n, r.treatment.to_string())).or_insert((column, Vec::new()));
        // A name classifies differently only for malformed input (`baseA` targeting B).
        *rank = (*rank).min(column);
        values.push(r.top1);
    }
    let mut ranked: Vec<(Column, Row)> = groups
        .into_iter()
        .map(|((split, n, treatment), (rank, values))| {
            let s = Stats::of(&values).expect("every group holds at least one run");
            let row = Row {
                split: split.to_owned(),
                treatment,
                n,
                mean_top1: s.mean,
                std_top1: s.std,
                min_top1: s.min,
                max_top1: s.max,
                runs: s.runs,
            };
            (rank, row)
        })
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| (&a.split, a.n, ra, &a.treatment).cmp(&(&b.split, b.n, rb, &b.treatment)));
    ranked.into_iter().map(|(_, row)| row).collect()
}

#[cfg(test)]
mod tests {
    use super::long_table;
    use crate::report::test_records::run;

    #[test]
    fn groups_and_sorts_rows() {
        let records = [
            run("random", "AnB", Some(1), 0.60),
            run("random", "BnB", Some(1), 0.50),
            run("random", "BnB", Some(1), 0.70),
            run("random", "baseB", None, 0.62),
            run("by_group", "random", Some(2), 0.10),
            run("random", "random", Some(1), 0.30),
            run("random", "BnB+", Some(1), 0.61),
        ];
        let rows = long_table(&records);
        let keys: Vec<_> = rows.iter().map(|r| (r.split.as_str(), r.n, r.treatment.as_str(), r.runs)).collect();
        assert_eq!(
            keys,
            [
                ("by_group", Some(2), "random", 1),
                ("random", None, "baseB", 1),
                ("random", Some(1), "BnB", 2),
                ("random", Some(1), "BnB+", 1),
                ("random", Some(1), "AnB", 1),
                ("random", Some(1), "random", 1),
            ]
        );
        let bnb = &rows[2];
        assert!((bnb.mean_top1 - 0.6).abs() < 1e-12);
        assert!((bnb.std_top1 - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!((bnb.min_top1, bnb.max_top1), (0.5, 0.7));
        assert_eq!(rows[1].std_top1, 0.0);
    }
}
