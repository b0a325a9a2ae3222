//! Learning curves as small multiples: one small chart per (split, column, n) with the
//! held-out accuracy or the training loss of each of its networks per epoch, on axes
//! shared by every chart of the grid, and the base networks of the same target drawn
//! behind in light grey, so a transfer is read against its base at a glance.
//!
//! Black curves over light grey ones, and a dashed chance line: readable in grey print.

use std::ops::Range;

use plotters::prelude::*;

use super::column::Column;
use super::error::ReportError;
use super::font;
use super::record::RunRecord;

/// Which per-epoch series a grid shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    /// Held-out top-1, percent.
    Accuracy,
    /// Mean training cross-entropy.
    Loss,
}

impl Metric {
    pub(crate) fn title(self) -> &'static str {
        match self {
            Metric::Accuracy => "held-out top-1 accuracy (%) per epoch",
            Metric::Loss => "training loss per epoch",
        }
    }

    fn series(self, r: &RunRecord) -> Vec<f64> {
        match self {
            Metric::Accuracy => r.curve.iter().map(|a| 100.0 * a).collect(),
            Metric::Loss => r.loss_curve.clone(),
        }
    }
}

/// One chart of the grid.
#[derive(Debug)]
pub(crate) struct Cell<'a> {
    pub split: String,
    pub column: Column,
    /// `None` for the base networks' own chart.
    pub n: Option<usize>,
    pub runs: Vec<&'a RunRecord>,
    /// The bases of the same split and target, drawn behind.
    pub bases: Vec<&'a RunRecord>,
}

impl Cell<'_> {
    pub(crate) fn title(&self) -> String {
        match self.n {
            Some(n) => format!("{} n={n}", self.column.label()),
            None => self.column.label().to_string(),
        }
    }
}

/// The cells of every split, in the table's order: per split the bases, then each
/// column of the paper by n.
pub(crate) fn cells(records: &[RunRecord]) -> Vec<Cell<'_>> {
    let mut keys: Vec<(String, Column, Option<usize>)> = records
        .iter()
        .map(|r| (r.split.clone(), Column::classify(&r.treatment, &r.target_half), r.n))
        .filter(|(_, c, _)| *c != Column::Other)
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(split, column, n)| {
            let runs: Vec<&RunRecord> = records
                .iter()
                .filter(|r| r.split == split && r.n == n && Column::classify(&r.treatment, &r.target_half) == column)
                .collect();
            let targets: Vec<&str> = runs.iter().map(|r| r.target_half.as_str()).collect();
            let bases = records
                .iter()
                .filter(|r| {
                    column != Column::Base
                        && r.split == split
                        && targets.contains(&r.target_half.as_str())
                        && Column::classify(&r.treatment, &r.target_half) == Column::Base
                })
                .collect();
            Cell { split, column, n, runs, bases }
        })
        .collect()
}

/// The shared axes of a grid: epochs and a value range holding every curve.
pub(crate) fn axes(records: &[RunRecord], metric: Metric) -> (usize, Range<f64>) {
    let series: Vec<Vec<f64>> = records.iter().map(|r| metric.series(r)).collect();
    let epochs = series.iter().map(Vec::len).max().unwrap_or(0).max(2);
    let hi = series.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let top = match metric {
        Metric::Accuracy => ((hi / 10.0).ceil() * 10.0).clamp(10.0, 100.0),
        Metric::Loss => (hi * 1.05).max(0.1),
    };
    (epochs, 0.0..top)
}

/// One cell as an SVG of `size` pixels; `chance` (percent) draws the chance level on
/// accuracy charts.
pub(crate) fn svg(
    cell: &Cell<'_>,
    metric: Metric,
    axes: &(usize, Range<f64>),
    chance: Option<f64>,
    size: (u32, u32),
) -> Result<String, ReportError> {
    font::ensure_registered()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        draw(&root, cell, metric, axes, chance).and_then(|()| root.present()).map_err(|e| ReportError::Figure {
            path: format!("learning curves of {} {}", cell.split, cell.title()).into(),
            source: Box::new(e),
        })?;
    }
    Ok(out)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    cell: &Cell<'_>,
    metric: Metric,
    (epochs, y): &(usize, Range<f64>),
    chance: Option<f64>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x = 1.0..(*epochs as f64);
    let mut chart = ChartBuilder::on(root)
        .margin(6)
        .margin_right(12)
        .x_label_area_size(24)
        .y_label_area_size(38)
        .build_cartesian_2d(x, y.clone())?;
    let decimals = if metric == Metric::Loss && y.end < 3.0 { 1 } else { 0 };
    let y_label = |v: &f64| format!("{v:.decimals$}");
    let x_label = |v: &f64| format!("{v:.0}");
    chart
        .configure_mesh()
        .x_labels(4)
        .y_labels(5)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(font::text(14))
        .bold_line_style(RGBColor(230, 230, 230))
        .light_line_style(TRANSPARENT)
        .draw()?;
    if let (Metric::Accuracy, Some(c)) = (metric, chance) {
        let line = [(1.0, c), (*epochs as f64, c)];
        chart.draw_series(DashedLineSeries::new(line, 6, 4, RGBColor(90, 90, 90).stroke_width(1)))?;
    }
    let points = |r: &RunRecord| -> Vec<(f64, f64)> {
        metric.series(r).into_iter().enumerate().map(|(e, v)| ((e + 1) as f64, v)).collect()
    };
    for base in &cell.bases {
        chart.draw_series(LineSeries::new(points(base), RGBColor(185, 185, 185).stroke_width(3)))?;
    }
    for run in &cell.runs {
        chart.draw_series(LineSeries::new(points(run), RGBColor(20, 20, 20).stroke_width(2)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_records::paper_records;

    #[test]
    fn every_network_is_in_one_cell_with_its_bases_behind() {
        let records: Vec<RunRecord> = paper_records(2)
            .into_iter()
            .map(|mut r| {
                r.curve = vec![0.2, 0.4, r.top1];
                r.loss_curve = vec![2.0, 1.5, 1.0];
                r
            })
            .collect();
        let cells = cells(&records);
        let counted: usize = cells.iter().map(|c| c.runs.len()).sum();
        let classified = records.iter().filter(|r| Column::classify(&r.treatment, &r.target_half) != Column::Other);
        assert_eq!(counted, classified.count());
        let transfer = cells.iter().find(|c| c.column == Column::Transfer && c.n == Some(3)).unwrap();
        assert!(
            !transfer.bases.is_empty() && transfer.bases.iter().all(|b| b.target_half == transfer.runs[0].target_half)
        );
        let base = cells.iter().find(|c| c.column == Column::Base).unwrap();
        assert!(base.bases.is_empty());
        let axes = axes(&records, Metric::Accuracy);
        assert_eq!(axes.0, 3);
        let svg = svg(transfer, Metric::Accuracy, &axes, Some(50.0), (220, 150)).unwrap();
        // One black line per network, one light grey line per base behind them.
        assert_eq!(svg.matches(r##"stroke="#141414" stroke-width="2""##).count(), transfer.runs.len(), "{svg}");
        assert_eq!(svg.matches(r##"stroke="#B9B9B9" stroke-width="3""##).count(), transfer.bases.len(), "{svg}");
    }
}
