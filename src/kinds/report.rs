//! `report`: the paper's table and figure from the networks of a pipeline, with its
//! findings checked on this run.
//!
//! ```yaml
//! stages:
//!   report:
//!     report: {of: [base, transfer, random]}     # stages or matrix groups that trained networks
//! ```
//!
//! Outputs: `table.csv`, `table.parquet` (load in pandas or polars), `table.md`,
//! `figure.svg`, `figure.png`, `report.json` (rows and findings), `report.html` (all of it
//! on one page, with learning curves) and `summary.txt` (what `pipe run` and `pipe show`
//! print).

use std::path::Path;

use super::train::NetInfo;
use crate::config::params::{Located, Params};
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};
use crate::nn::Metrics;
use crate::report::{Report, RunRecord, build};

pub struct ReportKind;

impl Kind for ReportKind {
    fn name(&self) -> &'static str {
        "report"
    }

    /// 2: finding 1 is one-sided (BnB+ recovers base accuracy).
    /// 3: bases at chance level make the findings not measurable.
    /// 4: `report.html`.
    fn version(&self) -> u32 {
        4
    }

    fn makes_report(&self) -> bool {
        true
    }

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        let ReportInput { of } = p.read()?;
        if of.is_empty() {
            p.problem("of", "a report needs at least one stage that trains networks");
        }
        Some(Box::new(ReportTask { of }))
    }
}

/// A `report` stage as written: the stages whose networks it reports on.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportInput {
    of: Vec<Located<String>>,
}

#[derive(Debug)]
struct ReportTask {
    of: Vec<Located<String>>,
}

#[derive(serde::Serialize)]
struct ReportParams {}

pub const SUMMARY: &str = "summary.txt";

/// The title of the page the stage writes (it does not know the pipeline's name).
pub const PAGE_TITLE: &str = "Transfer experiment report";

/// Where `pipe run` writes the page of report stage `stage` of the pipeline file
/// `file` (in `folder`): beside the file, named after both (`transfer.report.html`).
pub fn page_path(file: &Path, folder: &Path, stage: &str) -> std::path::PathBuf {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline".into());
    let stage: String =
        stage.chars().map(|c| if c.is_ascii_alphanumeric() || "-_=,".contains(c) { c } else { '_' }).collect();
    let stage = match stage.trim_matches('_') {
        "" => "report",
        s => s,
    };
    folder.join(format!("{stem}.{stage}.html"))
}

/// The title of the page of pipeline `name`.
pub fn page_title(name: &str) -> String {
    format!("{name}: transfer experiment report")
}

impl Task for ReportTask {
    /// A report has no parameters: it depends only on its inputs' content (and the
    /// kind's version, bumped when the findings' rules change).
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&ReportParams {})
    }

    fn inputs(&self) -> Vec<Input> {
        self.of.iter().map(|r| Input::stage(format!("run/{}", r.value), r, "of")).collect()
    }

    fn outputs(&self) -> Vec<String> {
        ["table.csv", "table.parquet", "table.md", "figure.svg", "figure.png", "report.json", "report.html", SUMMARY]
            .map(String::from)
            .to_vec()
    }

    fn light(&self) -> bool {
        true
    }

    /// A network's description, metrics and training log; never its checkpoint.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&["info.json", "metrics.json", "log.json"])
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        let mut records = Vec::new();
        for (role, dir) in ctx.inputs {
            let stage = role.rsplit('/').next().unwrap_or(role);
            records.push(record(stage, dir)?);
        }
        let report = build(&records);
        write_all(&report, ctx.out_dir)?;
        Ok(())
    }
}

/// The part of a network's `log.json` the report reads: training loss and held-out
/// accuracy per epoch.
#[derive(serde::Deserialize)]
struct EpochEntry {
    loss: Option<f64>,
    val_acc: Option<f64>,
}

/// One network's result, from the `info.json`, `metrics.json` and `log.json` of its
/// stage, read as their types.
pub fn record(stage: &str, dir: &Path) -> Result<RunRecord, StageFailure> {
    let info: NetInfo = super::read_typed(&dir.join("info.json"))?;
    let metrics: Metrics = super::read_typed(&dir.join("metrics.json"))?;
    let log: Vec<EpochEntry> = super::read_typed(&dir.join("log.json"))?;
    Ok(RunRecord {
        stage: stage.to_string(),
        treatment: info.treatment,
        n: info.n,
        split: info.split,
        split_seed: info.split_seed,
        seed: info.seed,
        base_half: info.base_half,
        target_half: info.target_half,
        top1: metrics.top1,
        loss: metrics.loss,
        classes: Some(metrics.per_class_n.len()),
        test_images: Some(metrics.n),
        curve: log.iter().filter_map(|e| e.val_acc).collect(),
        loss_curve: log.iter().filter_map(|e| e.loss).collect(),
    })
}

pub fn write_all(report: &Report, dir: &Path) -> Result<(), crate::report::ReportError> {
    report.write_csv(&dir.join("table.csv"))?;
    report.write_parquet(&dir.join("table.parquet"))?;
    report.write_markdown(&dir.join("table.md"))?;
    report.write_svg(&dir.join("figure.svg"))?;
    report.write_png(&dir.join("figure.png"))?;
    report.write_html(&dir.join("report.html"), PAGE_TITLE, &crate::report::PageContext::default())?;
    let mut j = serde_json::to_string_pretty(report).expect("a report is plain data");
    j.push('\n');
    crate::durable::write_bytes(&dir.join("report.json"), j.as_bytes(), false)
        .map_err(|source| crate::report::ReportError::Io { path: dir.join("report.json"), source })?;
    crate::durable::write_bytes(&dir.join(SUMMARY), summary(report).as_bytes(), false)
        .map_err(|source| crate::report::ReportError::Io { path: dir.join(SUMMARY), source })
}

/// The table and the findings, as printed after a run.
pub fn summary(report: &Report) -> String {
    format!("{}\n{}", report.render_table().trim_end(), report.render_findings())
}
