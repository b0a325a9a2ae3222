//! The report value and how it is built from run records: pure, no IO.

use serde::Serialize;

use super::finding::Finding;
use super::findings;
use super::noise::Noise;
use super::panel::{self, Panel};
use super::record::RunRecord;
use super::row::{self, Row};
use super::sanity::{self, BaseCheck};

/// Everything `pipe` reports about a set of runs. Serializes (for `--json`) as the
/// long table, the noise and the findings; the per-run points stay internal.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub noise: Noise,
    pub findings: Vec<Finding>,
    /// Each base network checked against chance and its learning curve.
    pub bases: Vec<BaseCheck>,
    #[serde(skip)]
    pub(crate) panels: Vec<Panel>,
    /// The records, by stage name: the page's learning curves and network list.
    #[serde(skip)]
    pub(crate) records: Vec<RunRecord>,
}

/// Summarises the records; the order of `records` does not matter.
pub fn build(records: &[RunRecord]) -> Report {
    let panels = panel::panels(records);
    let noise = Noise::of(&panels);
    let findings = findings::evaluate(&panels, noise.points);
    let bases = sanity::check(records, noise.points);
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| a.stage.cmp(&b.stage));
    Report { rows: row::long_table(records), noise, findings, bases, panels, records: sorted }
}

impl Report {
    /// The findings and the noise behind them, as `--json` prints them.
    pub fn findings_json(&self) -> serde_json::Value {
        serde_json::json!({ "noise": self.noise, "findings": self.findings })
    }
}

#[cfg(test)]
mod tests {
    use super::build;
    use crate::report::test_records::paper_records;

    #[test]
    fn order_of_records_does_not_matter_and_json_has_rows_and_findings() {
        let records = paper_records(2);
        let mut reversed = records.clone();
        reversed.reverse();
        let (a, b) = (build(&records), build(&reversed));
        assert_eq!(a.rows, b.rows);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["rows"].as_array().unwrap().len(), 1 + 5 * 7);
        assert_eq!(json["rows"][0]["treatment"], "baseB");
        assert_eq!(json["rows"][0]["n"], serde_json::Value::Null);
        assert_eq!(json["findings"][0]["verdict"], "reproduced");
        assert_eq!(a.findings_json()["findings"].as_array().unwrap().len(), 6);
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::build;
    use crate::report::test_records::{dissimilar_records, paper_records};

    /// What `pipe run` and `pipe show` print, for the paper's own numbers (three runs
    /// per cell) with a dissimilar split beside them.
    #[test]
    fn printed_table_and_findings() {
        let mut records = paper_records(3);
        records.extend(dissimilar_records(3));
        let report = build(&records);
        insta::assert_snapshot!(format!("{}\n{}", report.render_table(), report.render_findings()));
    }
}
