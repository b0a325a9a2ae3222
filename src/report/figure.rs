//! The paper's Figure 2 for this run: top-1 accuracy against the cut n, one panel per
//! split (similar | dissimilar), every run a jittered marker, means as lines, base
//! as a dashed reference. When the random-filter baseline was run, it gets its own
//! full-scale chart below the panel: drawn on the same axis it would squeeze the
//! 1-2 point effects of the other columns into a few pixels.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::atomic;
use super::build::Report;
use super::column::Column;
use super::error::ReportError;
use super::figure_axis::CutAxis;
use super::figure_legend::Legend;
use super::figure_marker::draw_marker;
use super::figure_style::look;
use super::font;
use super::panel::Panel;
use super::table_text::split_title;

const X_DESC: &str = "Layer n at which network is chopped and retrained";
const Y_DESC: &str = "Top-1 accuracy (%)";

impl Report {
    pub fn write_svg(&self, path: &Path) -> Result<(), ReportError> {
        atomic::write_bytes(path, self.svg(path)?.as_bytes())
    }

    /// The figure as SVG text; `path` names it in errors.
    pub(crate) fn svg(&self, path: &Path) -> Result<String, ReportError> {
        font::ensure_registered()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size(&self.panels)).into_drawing_area();
            draw(&root, &self.panels).and_then(|()| root.present()).map_err(|e| figure_error(path, e))?;
        }
        Ok(svg)
    }

    /// Always PNG, whatever the extension of `path`.
    pub fn write_png(&self, path: &Path) -> Result<(), ReportError> {
        font::ensure_registered()?;
        atomic::write_with(path, "png", |tmp| {
            let root = BitMapBackend::new(tmp, size(&self.panels)).into_drawing_area();
            draw(&root, &self.panels).and_then(|()| root.present()).map_err(|e| figure_error(path, e))
        })
    }
}

fn figure_error<E: std::error::Error + Send + Sync + 'static>(path: &Path, e: DrawingAreaErrorKind<E>) -> ReportError {
    ReportError::Figure { path: path.to_owned(), source: Box::new(e) }
}

/// 1200 px wide per panel up to two panels side by side; taller when the random
/// baseline adds its chart below.
fn size(panels: &[Panel]) -> (u32, u32) {
    let width = match panels.len() {
        0 | 1 => 1200,
        k => 1000 * k as u32,
    };
    let height = if panels.iter().any(|p| p.has(Column::Random)) { 960 } else { 720 };
    (width, height)
}

/// What one chart shows: which columns, on which y range, with which labels.
struct View {
    columns: Vec<Column>,
    y: Range<f64>,
    caption: Option<(String, u32)>,
    x_desc: bool,
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let present: Vec<Column> = Column::TABLE.into_iter().filter(|c| panels.iter().any(|p| p.has(*c))).collect();
    let legend = Legend::layout(root, &present)?;
    let (w, h) = root.dim_in_pixel();
    let (body, legend_area) = root.split_vertically(h - legend.height());
    legend.draw(&legend_area)?;
    if panels.is_empty() {
        let style = font::text(24).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
        return body.draw(&Text::new("no runs to plot", (w as i32 / 2, h as i32 / 2), style));
    }
    // Panels share their y ranges and their layout, so that the eye compares them
    // fairly: the dissimilar split's larger AnB drop must look larger.
    let stacked = panels.iter().any(|p| p.has(Column::Random));
    let zoom_y = y_range(panels, |c| c != Column::Random, false);
    let full_y = y_range(panels, |c| FULL_SCALE.contains(&c), true);
    for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
        let columns = |keep: &dyn Fn(Column) -> bool| -> Vec<Column> {
            Column::TABLE.into_iter().filter(|c| keep(*c) && panel.has(*c)).collect()
        };
        let zoom = View {
            columns: columns(&|c| c != Column::Random),
            y: zoom_y.clone(),
            caption: Some((split_title(panel), 28)),
            x_desc: !stacked,
        };
        if stacked {
            let full_caption =
                if panel.has(Column::Random) { "random filters against AnB, full scale" } else { "AnB, full scale" };
            let (top, bottom) = area.split_vertically(area.dim_in_pixel().1 * 60 / 100);
            chart(&top, panel, &zoom)?;
            let full = View {
                columns: columns(&|c| FULL_SCALE.contains(&c)),
                y: full_y.clone(),
                caption: Some((full_caption.to_owned(), 22)),
                x_desc: true,
            };
            chart(&bottom, panel, &full)?;
        } else {
            chart(area, panel, &zoom)?;
        }
    }
    Ok(())
}

/// The columns of the full-scale chart below each panel.
const FULL_SCALE: [Column; 3] = [Column::Base, Column::Transfer, Column::Random];

/// A y range (percent) holding every run of the kept columns in every panel: from 0
/// for the full-scale chart, else fitted with a margin and rounded to whole points.
fn y_range(panels: &[Panel], keep: impl Fn(Column) -> bool, from_zero: bool) -> Range<f64> {
    let values = panels.iter().flat_map(|p| &p.points).filter(|p| keep(p.column)).map(|p| p.top1);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return 0.0..100.0;
    }
    if from_zero {
        return 0.0..(((hi + 3.0) / 10.0).ceil() * 10.0).min(100.0);
    }
    let pad = f64::max(0.06 * (hi - lo), 0.6);
    (lo - pad).floor().max(0.0)..(hi + pad).ceil().min(100.0)
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    view: &View,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let max_n = panel.max_n().max(1);
    let x_end = max_n as f64 + 0.6;
    let x = CutAxis::new(max_n);
    let mut builder = ChartBuilder::on(area);
    builder.margin(12).margin_right(30).x_label_area_size(if view.x_desc { 62 } else { 40 }).y_label_area_size(90);
    if let Some((caption, size)) = &view.caption {
        builder.caption(caption, font::text(*size));
    }
    let mut chart = builder.build_cartesian_2d(x, view.y.clone())?;

    let decimals = if view.y.end - view.y.start < 5.0 { 1 } else { 0 };
    let y_label = |y: &f64| format!("{y:.decimals$}");
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .y_label_formatter(&y_label)
        .label_style(font::text(20))
        .axis_desc_style(font::text(22))
        .y_desc(Y_DESC)
        .bold_line_style(RGBColor(222, 222, 222))
        .light_line_style(TRANSPARENT);
    if view.x_desc {
        mesh.x_desc(X_DESC);
    }
    mesh.draw()?;

    if let Some(base) = panel.base().filter(|_| view.columns.contains(&Column::Base)) {
        let line = [(-0.6, base.mean), (x_end, base.mean)];
        chart.draw_series(DashedLineSeries::new(line, 12, 8, look(Column::Base).color.stroke_width(2)))?;
    }
    // Lines first, then every marker above them; random first, so it stays behind.
    let order: Vec<Column> = view.columns.iter().rev().copied().filter(|c| *c != Column::Base).collect();
    for &column in &order {
        let means = panel.ns(column).into_iter().filter_map(|n| panel.mean(column, n).map(|m| (n as f64, m)));
        chart.draw_series(LineSeries::new(means, look(column).color.stroke_width(3)))?;
    }
    let plot = chart.plotting_area();
    for column in order.into_iter().chain(view.columns.contains(&Column::Base).then_some(Column::Base)) {
        let look = look(column);
        for p in panel.points.iter().filter(|p| p.column == column) {
            draw_marker(plot, (p.n as f64 + look.jitter, p.top1), &look)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::report::build::build;
    use crate::report::test_records::{dissimilar_records, paper_records};

    /// Writes both formats for one and for two splits; with PIPE_REPORT_EXAMPLE_DIR
    /// set, also leaves them there to look at.
    #[test]
    fn svg_and_png_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::env::var_os("PIPE_REPORT_EXAMPLE_DIR").map(std::path::PathBuf::from);
        let mut both = paper_records(3);
        both.extend(dissimilar_records(3));
        for (name, records) in [("report-example", paper_records(3)), ("report-example-2", both)] {
            let report = build(&records);
            for target in std::iter::once(dir.path()).chain(out.as_deref()) {
                let (png, svg) = (target.join(format!("{name}.png")), target.join(format!("{name}.svg")));
                report.write_png(&png).unwrap();
                report.write_svg(&svg).unwrap();
                let png = std::fs::read(&png).unwrap();
                assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "{} bytes", png.len());
                let svg = std::fs::read_to_string(&svg).unwrap();
                assert!(svg.starts_with("<svg") && svg.contains("Top-1 accuracy (%)") && svg.len() > 20_000);
            }
            // The tables too, for checking them with other readers (pandas, polars).
            if let Some(out) = &out {
                report.write_csv(&out.join(format!("{name}.csv"))).unwrap();
                report.write_parquet(&out.join(format!("{name}.parquet"))).unwrap();
                report.write_markdown(&out.join(format!("{name}.md"))).unwrap();
                let text = format!("{}\n{}", report.render_table(), report.render_findings());
                std::fs::write(out.join(format!("{name}.txt")), text).unwrap();
            }
        }
    }
}
