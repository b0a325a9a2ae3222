//! The paper's view of one split: runs pooled by column (whichever half is the
//! target) and by n, in percent. Table, findings and figure read only panels.

use std::collections::{BTreeMap, BTreeSet};

use super::column::Column;
use super::record::RunRecord;
use super::stats::Stats;

/// One run as a point of the figure: its column, n (0 for base) and top-1 in percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    pub column: Column,
    pub n: usize,
    pub top1: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Panel {
    pub split: String,
    /// Target halves of the panel's transferred and random networks.
    pub targets: Vec<String>,
    /// Per (column, n) with base at n = 0; accuracies in percent.
    pub cells: BTreeMap<(Column, usize), Stats>,
    pub points: Vec<Point>,
    /// Chance level of the base networks, where their classes are known.
    pub chance: Option<Chance>,
}

/// What a network that learned nothing scores, in percent, and how far above it a
/// base must be to have learned something: three binomial standard deviations of a
/// guesser's accuracy on the base's test images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Chance {
    pub classes: usize,
    pub percent: f64,
    pub margin: f64,
}

impl Chance {
    /// The chance level of a set of base runs: of the one with the fewest classes and
    /// test images, so that a doubt counts against the verdicts.
    pub fn of(runs: &[&RunRecord]) -> Option<Chance> {
        let classes = runs.iter().map(|r| r.classes).collect::<Option<Vec<_>>>()?.into_iter().min()?;
        let images = runs.iter().map(|r| r.test_images).collect::<Option<Vec<_>>>()?.into_iter().min()?;
        let p = 1.0 / classes.max(1) as f64;
        let margin = 300.0 * (p * (1.0 - p) / images.max(1) as f64).sqrt();
        Some(Chance { classes, percent: 100.0 * p, margin })
    }
}

impl Panel {
    pub fn cell(&self, column: Column, n: usize) -> Option<&Stats> {
        self.cells.get(&(column, n))
    }

    pub fn base(&self) -> Option<&Stats> {
        self.cell(Column::Base, 0)
    }

    /// The n at which `column` has runs, ascending.
    pub fn ns(&self, column: Column) -> Vec<usize> {
        self.cells.keys().filter(|(c, _)| *c == column).map(|&(_, n)| n).collect()
    }

    /// The deepest cut in the panel (0 when it holds base networks only).
    pub fn max_n(&self) -> usize {
        self.cells.keys().map(|&(_, n)| n).max().unwrap_or(0)
    }

    /// The mean of `column` at n.
    pub fn mean(&self, column: Column, n: usize) -> Option<f64> {
        self.cell(column, n).map(|s| s.mean)
    }

    pub fn has(&self, column: Column) -> bool {
        self.cells.keys().any(|(c, _)| *c == column)
    }
}

/// Where a split sorts: the similar split first, the dissimilar one second, as in the
/// paper's figures; anything else after them by name.
pub(crate) fn split_rank(split: &str) -> (u8, &str) {
    match split {
        "random" => (0, split),
        "by_group" => (1, split),
        _ => (2, split),
    }
}

/// Builds one panel per split that has classified runs.
///
/// The base column pools `base{T}` only for the halves T that the split's other
/// networks target: baseA is trained in a B-target experiment too (as AnB's source),
/// but it is not the reference AnB is compared with.
pub(crate) fn panels(records: &[RunRecord]) -> Vec<Panel> {
    let mut by_split: BTreeMap<(u8, &str), Vec<(&RunRecord, Column)>> = BTreeMap::new();
    for r in records {
        let column = Column::classify(&r.treatment, &r.target_half);
        if column != Column::Other {
            by_split.entry(split_rank(&r.split)).or_default().push((r, column));
        }
    }
    by_split
        .into_iter()
        .map(|((_, split), runs)| {
            let mut targets: BTreeSet<&str> =
                runs.iter().filter(|(_, c)| *c != Column::Base).map(|(r, _)| r.target_half.as_str()).collect();
            if targets.is_empty() {
                targets = runs.iter().map(|(r, _)| r.target_half.as_str()).collect();
            }
            let points: Vec<Point> = runs
                .iter()
                .filter(|(r, _)| targets.contains(r.target_half.as_str()))
                .map(|&(r, column)| Point {
                    column,
                    n: if column == Column::Base { 0 } else { r.n.unwrap_or(0) },
                    top1: 100.0 * r.top1,
                })
                .collect();
            let mut groups: BTreeMap<(Column, usize), Vec<f64>> = BTreeMap::new();
            for p in &points {
                groups.entry((p.column, p.n)).or_default().push(p.top1);
            }
            let cells = groups.into_iter().filter_map(|(k, v)| Stats::of(&v).map(|s| (k, s))).collect();
            let bases: Vec<&RunRecord> = runs
                .iter()
                .filter(|(r, c)| *c == Column::Base && targets.contains(r.target_half.as_str()))
                .map(|(r, _)| *r)
                .collect();
            Panel {
                split: split.to_owned(),
                targets: targets.into_iter().map(str::to_owned).collect(),
                cells,
                points,
                chance: Chance::of(&bases),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::panels;
    use crate::report::column::Column;
    use crate::report::test_records::run;

    #[test]
    fn base_pools_only_the_targeted_half_and_splits_sort_similar_first() {
        let mut base_a = run("random", "baseA", None, 0.9);
        base_a.target_half = "A".into();
        let records = [
            run("by_group", "AnB", Some(1), 0.40),
            run("random", "baseB", None, 0.62),
            base_a,
            run("random", "AnB", Some(2), 0.50),
            run("random", "AnB then fine-tuned", Some(2), 0.99),
        ];
        let p = panels(&records);
        assert_eq!(p.iter().map(|p| p.split.as_str()).collect::<Vec<_>>(), ["random", "by_group"]);
        assert_eq!(p[0].targets, ["B"]);
        assert!((p[0].base().unwrap().mean - 62.0).abs() < 1e-9);
        assert_eq!(p[0].ns(Column::Transfer), [2]);
        assert_eq!(p[0].points.len(), 2);
        assert_eq!(p[0].max_n(), 2);
    }
}
