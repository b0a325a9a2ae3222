//! `report.html`: the whole experiment on one self-contained page. The findings with
//! their verdicts and the paper's numbers, the paper's figure, the table, every
//! network's learning curves as small multiples, where the time went, and where each
//! network's files are. Inline SVG and CSS only: no script, no external reference, so
//! it opens anywhere, offline, and prints in grey.
//!
//! The `report` stage writes it from its inputs alone (the same bytes on every run);
//! `pipe run` and `pipe show --html` add what only the cache knows: each network's key
//! and checkpoint path, and every stage's compute time.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::build::Report;
use super::column::Column;
use super::curves::{self, Metric};
use super::error::ReportError;
use super::finding::Verdict;
use super::font;
use super::panel::Chance;
use super::sanity::BaseVerdict;

/// What the cache knows beyond the report's inputs.
#[derive(Debug, Default)]
pub struct PageContext {
    /// The pipeline file, as the commands on the page name it.
    pub pipeline: Option<String>,
    /// Per network stage: its key and where its checkpoint is.
    pub networks: std::collections::BTreeMap<String, Place>,
    /// Every stage of the pipeline, in its order, with its compute time.
    pub timeline: Vec<StageTime>,
}

#[derive(Debug, Clone)]
pub struct Place {
    pub key: String,
    /// The checkpoint file in the cache.
    pub checkpoint: String,
}

#[derive(Debug, Clone)]
pub struct StageTime {
    pub name: String,
    pub kind: String,
    /// Compute time from the stage's manifest; `None` when it is not in the cache.
    pub seconds: Option<f64>,
    pub how: Computed,
    /// The cluster job that computed it, when one did.
    pub job: Option<JobUse>,
}

/// A cluster job, as its stage's manifest records it, in words.
#[derive(Debug, Clone)]
pub struct JobUse {
    /// `slurm job 42`.
    pub job: String,
    pub node: Option<String>,
    /// `4 CPUs / 16G / 1:00:00`.
    pub asked: String,
    /// `1.0 CPUs / 310M / 12.3 s`.
    pub used: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// Computed by this run.
    Now,
    /// Taken from the cache (computed earlier, by this pipeline or another).
    Cached,
    /// Not in the cache.
    Missing,
}

impl Report {
    pub fn write_html(&self, path: &Path, title: &str, ctx: &PageContext) -> Result<(), ReportError> {
        super::atomic::write_bytes(path, self.html(title, ctx)?.as_bytes())
    }

    /// The page as text.
    pub fn html(&self, title: &str, ctx: &PageContext) -> Result<String, ReportError> {
        let mut out = String::with_capacity(1 << 20);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            esc(title),
            esc(title)
        );
        let _ = writeln!(
            out,
            "<p class=\"lead\">{} trained networks. How transferable are features in deep neural networks? \
             (Yosinski et al. 2014), run again: the paper's figure and table for this run, its six findings \
             judged against the noise of this run, and every network's learning curves.</p>",
            self.records.len()
        );
        out.push_str(
            "<nav><a href=\"#findings\">Findings</a> · <a href=\"#figure\">Figure</a> · <a href=\"#table\">Table</a> · \
             <a href=\"#curves\">Learning curves</a> · ",
        );
        if !ctx.timeline.is_empty() {
            out.push_str("<a href=\"#time\">Where the time went</a> · ");
        }
        out.push_str("<a href=\"#networks\">Networks</a></nav>\n");
        self.findings_section(&mut out);
        let _ = writeln!(out, "<section id=\"figure\">\n<h2>Figure</h2>");
        out.push_str(
            "<p>Top-1 accuracy against the layer n at which the network is chopped, as the paper's Figure 2: ",
        );
        out.push_str("every run a marker, means as lines, the base as a dashed line.</p>\n<div class=\"figure\">");
        out.push_str(&self.svg(Path::new("report.html"))?);
        out.push_str("</div>\n</section>\n");
        self.table_section(&mut out);
        self.curves_section(&mut out)?;
        if !ctx.timeline.is_empty() {
            time_section(&mut out, &ctx.timeline)?;
        }
        self.networks_section(&mut out, ctx);
        // The stage's own page names no version: its bytes depend on its inputs alone.
        let by = match ctx.pipeline {
            Some(_) => format!("pipe {}", env!("CARGO_PKG_VERSION")),
            None => "pipe".to_string(),
        };
        let _ = writeln!(
            out,
            "<footer>Written by {by}. Everything on this page is in this file.</footer>\n</body>\n</html>"
        );
        Ok(out)
    }

    fn findings_section(&self, out: &mut String) {
        out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
        let _ = writeln!(out, "<p class=\"noise\">{}</p>", esc(&self.noise.describe()));
        if !self.bases.is_empty() {
            out.push_str("<h3>The bases first</h3>\n<ul class=\"bases\">\n");
            for b in &self.bases {
                let (word, class) = match b.verdict {
                    BaseVerdict::Learned => ("learned", "ok"),
                    BaseVerdict::AtChance => ("at chance", "bad"),
                    BaseVerdict::NotConverged => ("not converged", "warn"),
                };
                let chance = b.chance.map(|c| format!(", chance {c:.1}%")).unwrap_or_default();
                let gain = b
                    .late_gain
                    .map(|g| format!(", {g:+.1} points over its last {} epochs", b.late_epochs))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "<li class=\"base\"><span class=\"verdict {class}\">{word}</span> <code>{}</code>: {:.1}%{chance}{gain}</li>",
                    esc(&b.stage),
                    b.top1
                );
            }
            out.push_str("</ul>\n");
        }
        out.push_str("<ol class=\"findings\">\n");
        for f in &self.findings {
            let class = match f.verdict {
                Verdict::Reproduced => "ok",
                Verdict::NotReproduced => "bad",
                Verdict::NotMeasurable => "warn",
            };
            let _ = writeln!(
                out,
                "<li class=\"finding\" value=\"{}\"><span class=\"verdict {class}\">{}</span> <b>{}</b><br>{}</li>",
                f.id,
                esc(f.verdict.word()),
                esc(f.name),
                esc(&f.detail)
            );
        }
        out.push_str("</ol>\n</section>\n");
    }

    fn table_section(&self, out: &mut String) {
        out.push_str("<section id=\"table\">\n<h2>Table</h2>\n");
        out.push_str(
            "<table class=\"numbers\">\n<thead><tr><th>split</th><th>treatment</th><th>n</th><th>mean top-1</th>\
             <th>std</th><th>min</th><th>max</th><th>runs</th></tr></thead>\n<tbody>\n",
        );
        for r in &self.rows {
            let n = r.n.map(|n| n.to_string()).unwrap_or_default();
            let pct = |v: f64| format!("{:.2}%", 100.0 * v);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{n}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.split),
                esc(&r.treatment),
                pct(r.mean_top1),
                100.0 * r.std_top1,
                pct(r.min_top1),
                pct(r.max_top1),
                r.runs
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn curves_section(&self, out: &mut String) -> Result<(), ReportError> {
        out.push_str("<section id=\"curves\">\n<h2>Learning curves</h2>\n");
        out.push_str(
            "<p>One chart per treatment and cut n, on the same axes: each network in black, the base networks of \
             the same target in light grey behind, chance level dashed.</p>\n",
        );
        let cells = curves::cells(&self.records);
        if cells.iter().all(|c| c.runs.iter().all(|r| r.curve.is_empty() && r.loss_curve.is_empty())) {
            out.push_str("<p>The networks' logs have no per-epoch values.</p>\n</section>\n");
            return Ok(());
        }
        let chance = Chance::of(&self.records.iter().collect::<Vec<_>>()).map(|c| c.percent);
        for metric in [Metric::Accuracy, Metric::Loss] {
            let axes = curves::axes(&self.records, metric);
            let mut splits: Vec<&str> = cells.iter().map(|c| c.split.as_str()).collect();
            splits.dedup();
            for split in splits {
                let _ =
                    writeln!(out, "<h3>{}: {}</h3>\n<table class=\"grid\">", esc(&split_name(split)), metric.title());
                let mine: Vec<&curves::Cell<'_>> = cells.iter().filter(|c| c.split == split).collect();
                let max_n = mine.iter().filter_map(|c| c.n).max().unwrap_or(0);
                let mut columns: Vec<Column> = mine.iter().map(|c| c.column).collect();
                columns.dedup();
                for column in columns {
                    let _ = write!(out, "<tr><th>{}</th>", column.label());
                    let row: Vec<&&curves::Cell<'_>> = mine.iter().filter(|c| c.column == column).collect();
                    let slots: Vec<Option<usize>> =
                        if column == Column::Base { vec![None] } else { (1..=max_n).map(Some).collect() };
                    for slot in slots {
                        match row.iter().find(|c| c.n == slot) {
                            Some(cell) => {
                                let svg = curves::svg(cell, metric, &axes, chance, (230, 160))?;
                                let _ = write!(
                                    out,
                                    "<td><figure class=\"cell\" data-metric=\"{}\" data-networks=\"{}\">\
                                     <figcaption>{} ({} network{})</figcaption>{svg}</figure></td>",
                                    if metric == Metric::Accuracy { "accuracy" } else { "loss" },
                                    cell.runs.len(),
                                    esc(&cell.title()),
                                    cell.runs.len(),
                                    if cell.runs.len() == 1 { "" } else { "s" }
                                );
                            }
                            None => out.push_str("<td></td>"),
                        }
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
        }
        out.push_str("</section>\n");
        Ok(())
    }

    fn networks_section(&self, out: &mut String, ctx: &PageContext) {
        out.push_str("<section id=\"networks\">\n<h2>Networks</h2>\n");
        let file = ctx.pipeline.as_deref().unwrap_or("PIPELINE.yaml");
        let _ = writeln!(
            out,
            "<p><code>pipe show {} STAGE</code> prints where a stage's files are; <code>--export DIR</code> copies them.</p>",
            esc(file)
        );
        out.push_str(
            "<table class=\"numbers networks\">\n<thead><tr><th>stage</th><th>treatment</th><th>split</th><th>seed</th>\
             <th>top-1</th><th>epochs</th><th>key</th><th>checkpoint</th></tr></thead>\n<tbody>\n",
        );
        for r in &self.records {
            let place = ctx.networks.get(&r.stage);
            let key = place.map(|p| format!("<code>{}</code>", esc(&p.key[..p.key.len().min(16)]))).unwrap_or_default();
            let checkpoint = match place {
                Some(p) => format!("<code class=\"path\">{}</code>", esc(&p.checkpoint)),
                None => format!("<code>pipe show {} {}</code>", esc(file), esc(&shell_word(&r.stage))),
            };
            let _ = writeln!(
                out,
                "<tr class=\"network\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td>\
                 <td>{}</td><td>{key}</td><td>{checkpoint}</td></tr>",
                esc(&r.stage),
                esc(&r.treatment.to_string()),
                esc(&r.split),
                r.seed,
                100.0 * r.top1,
                r.curve.len().max(r.loss_curve.len()),
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
}

/// A split's name as the figure titles it.
fn split_name(split: &str) -> String {
    match split {
        "random" => "similar halves (random split)".to_string(),
        "by_group" => "dissimilar halves (split by group)".to_string(),
        other => format!("split {other}"),
    }
}

/// Every stage's compute time as horizontal bars in pipeline order: computed by this
/// run dark, taken from the cache light, not cached as an empty row.
fn time_section(out: &mut String, stages: &[StageTime]) -> Result<(), ReportError> {
    // Folded from +0.0: an empty f64 sum is -0.0, which prints as "-0.00 s".
    let total = stages.iter().filter_map(|s| s.seconds).fold(0.0, |a, s| a + s);
    let now = stages.iter().filter(|s| s.how == Computed::Now).filter_map(|s| s.seconds).fold(0.0, |a, s| a + s);
    let count = |h: Computed| stages.iter().filter(|s| s.how == h).count();
    out.push_str("<section id=\"time\">\n<h2>Where the time went</h2>\n");
    let _ = writeln!(
        out,
        "<p>{} stages, {total:.2} s of compute in all (from their cache entries). Computed by the run that \
         wrote this page: {} ({now:.2} s); taken from the cache: {}{}. Dark bars: computed by that run; light: \
         from the cache.</p>",
        stages.len(),
        count(Computed::Now),
        count(Computed::Cached),
        match count(Computed::Missing) {
            0 => String::new(),
            k => format!("; not in the cache: {k}"),
        }
    );
    font::ensure_registered()?;
    let height = 60 + 22 * stages.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, height)).into_drawing_area();
        draw_time(&root, stages)
            .and_then(|()| root.present())
            .map_err(|e| ReportError::Figure { path: "report.html (time chart)".into(), source: Box::new(e) })?;
    }
    let _ = writeln!(out, "<div class=\"figure\">{svg}</div>");
    let jobs: Vec<(&str, &JobUse)> = stages.iter().filter_map(|s| Some((s.name.as_str(), s.job.as_ref()?))).collect();
    if !jobs.is_empty() {
        let _ = writeln!(
            out,
            "<p>Stages computed as cluster jobs: what each asked for, and what it used as the job measured \
             itself (CPUs kept busy on average, peak memory, wall time).</p>\n<table class=\"numbers jobs\">\n\
             <thead><tr><th>stage</th><th>job</th><th>node</th><th>asked</th><th>used</th></tr></thead>\n<tbody>"
        );
        for (name, j) in jobs {
            let _ = writeln!(
                out,
                "<tr class=\"job\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                esc(&j.job),
                esc(j.node.as_deref().unwrap_or("?")),
                esc(&j.asked),
                esc(&j.used)
            );
        }
        let _ = writeln!(out, "</tbody>\n</table>");
    }
    let _ = writeln!(out, "</section>");
    Ok(())
}

fn draw_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    stages: &[StageTime],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    root.fill(&WHITE)?;
    let longest = stages.iter().filter_map(|s| s.seconds).fold(0.0, f64::max).max(0.001) * 1.15;
    let n = stages.len();
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..longest, 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|x| seconds(*x, longest))
        .x_desc("compute time")
        .label_style(font::text(15))
        .axis_desc_style(font::text(16))
        .bold_line_style(RGBColor(230, 230, 230))
        .light_line_style(TRANSPARENT)
        .draw()?;
    let name_style = font::text(15).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, s) in stages.iter().enumerate() {
        // Top to bottom in the pipeline's order.
        let y = (n - 1 - i) as f64;
        let (px, py) = chart.backend_coord(&(0.0, y + 0.5));
        root.draw(&Text::new(s.name.clone(), (px - 8, py), name_style.clone()))?;
        let Some(sec) = s.seconds else { continue };
        let fill = match s.how {
            Computed::Now => RGBColor(40, 40, 40).filled(),
            _ => RGBColor(175, 175, 175).filled(),
        };
        chart.draw_series(std::iter::once(Rectangle::new([(0.0, y + 0.15), (sec, y + 0.85)], fill)))?;
        let label = match s.how {
            Computed::Now => seconds(sec, longest),
            _ => format!("{}, cached", seconds(sec, longest)),
        };
        let (lx, ly) = chart.backend_coord(&(sec, y + 0.5));
        root.draw(&Text::new(label, (lx + 6, ly), font::text(14).pos(Pos::new(HPos::Left, VPos::Center))))?;
    }
    Ok(())
}

/// Seconds with as many decimals as ticks on a scale up to `longest` need.
fn seconds(s: f64, longest: f64) -> String {
    let step = longest / 10.0;
    let decimals = if step >= 1.0 { 0 } else { (-step.log10()).ceil().clamp(0.0, 4.0) as usize };
    format!("{s:.decimals$} s")
}

/// A word as a POSIX shell reads it back: single-quoted, its own quotes escaped.
fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One look for the page: black on white, verdicts told apart by border and weight as
/// well as by shade, so the page reads the same printed in grey.
const STYLE: &str = "\
body{font-family:sans-serif;max-width:1500px;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}\
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #111;padding-bottom:.2em;margin-top:2em}\
nav{margin:1em 0;color:#555}nav a{color:#111}\
.lead{color:#333}.noise{color:#444}\
svg{max-width:100%;height:auto}\
.figure{overflow-x:auto}\
.verdict{display:inline-block;min-width:9em;padding:0 .4em;margin-right:.4em;border:1px solid #111;font-size:.9em}\
.verdict.ok{font-weight:bold}.verdict.bad{background:#111;color:#fff;font-weight:bold}.verdict.warn{border-style:dashed}\
ol.findings li,ul.bases li{margin:.5em 0}\
table.numbers{border-collapse:collapse;font-variant-numeric:tabular-nums}\
table.numbers th,table.numbers td{border-bottom:1px solid #ccc;padding:.2em .6em;text-align:left}\
table.grid{border-collapse:collapse}table.grid th{text-align:right;padding-right:.5em;vertical-align:middle}\
table.grid td{padding:2px;vertical-align:top}\
figure.cell{margin:0}figure.cell figcaption{font-size:.8em;color:#333}\
code.path{font-size:.8em;word-break:break-all}\
footer{margin-top:3em;color:#666;font-size:.9em}\
@media print{nav{display:none}body{max-width:none}}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::build::build;
    use crate::report::record::RunRecord;
    use crate::report::test_records::{dissimilar_records, paper_records};

    fn with_curves(records: Vec<RunRecord>) -> Vec<RunRecord> {
        records
            .into_iter()
            .map(|mut r| {
                r.curve = (1..=6).map(|e| r.top1 * e as f64 / 6.0).collect();
                r.loss_curve = (1..=6).map(|e| 2.3 / e as f64).collect();
                r.classes = Some(10);
                r.test_images = Some(500);
                r
            })
            .collect()
    }

    #[test]
    fn the_page_holds_every_part_and_nothing_from_outside() {
        let mut records = with_curves(paper_records(2));
        records.extend(with_curves(dissimilar_records(2)));
        let report = build(&records);
        let timeline = vec![
            StageTime {
                name: "data".into(),
                kind: "dataset".into(),
                seconds: Some(1.5),
                how: Computed::Cached,
                job: None,
            },
            StageTime {
                name: "base[half=A]".into(),
                kind: "train".into(),
                seconds: Some(30.0),
                how: Computed::Now,
                job: Some(JobUse {
                    job: "slurm job 42".into(),
                    node: Some("n2".into()),
                    asked: "4 CPUs / 16G".into(),
                    used: "1.0 CPUs / 310M / 29.5 s".into(),
                }),
            },
            StageTime {
                name: "report".into(),
                kind: "report".into(),
                seconds: None,
                how: Computed::Missing,
                job: None,
            },
        ];
        let ctx = PageContext { pipeline: Some("p.yaml".into()), networks: Default::default(), timeline };
        let page = report.html("transfer <test>", &ctx).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
        assert!(page.contains("<title>transfer &lt;test&gt;</title>"));
        for id in ["findings", "figure", "table", "curves", "time", "networks"] {
            assert!(page.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert_eq!(page.matches("class=\"finding\"").count(), report.findings.len());
        assert_eq!(page.matches("<tr class=\"job\">").count(), 1);
        assert!(
            page.contains("<td>slurm job 42</td><td>n2</td><td>4 CPUs / 16G</td><td>1.0 CPUs / 310M / 29.5 s</td>")
        );
        assert_eq!(page.matches("<tr class=\"network\">").count(), records.len());
        let networks: usize = page
            .match_indices("data-metric=\"accuracy\" data-networks=\"")
            .map(|(at, m)| page[at + m.len()..].split('"').next().unwrap().parse::<usize>().unwrap())
            .sum();
        let classified = records.iter().filter(|r| Column::classify(&r.treatment, &r.target_half) != Column::Other);
        assert_eq!(networks, classified.count());
        assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("src="));
        for (at, _) in page.match_indices("href=\"") {
            assert!(page[at + 6..].starts_with('#'), "{}", &page[at..at + 40]);
        }
        // Same records, same bytes.
        assert_eq!(page, build(&records).html("transfer <test>", &ctx).unwrap());
    }
}
