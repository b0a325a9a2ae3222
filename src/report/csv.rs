//! The long table as CSV (RFC 4180), accuracies as fractions like `metrics.json`.

use std::path::Path;

use super::atomic;
use super::build::Report;
use super::error::ReportError;
use super::row::Row;

pub(crate) const HEADER: [&str; 8] =
    ["split", "treatment", "n", "mean_top1", "std_top1", "min_top1", "max_top1", "runs"];

impl Report {
    /// Writes the long table; the same records always give the same bytes.
    pub fn write_csv(&self, path: &Path) -> Result<(), ReportError> {
        atomic::write_bytes(path, to_csv(&self.rows).as_bytes())
    }
}

/// Floats print in Rust's shortest round-trip form: exact, and stable across runs.
pub(crate) fn to_csv(rows: &[Row]) -> String {
    let mut out = HEADER.join(",");
    out.push('\n');
    for r in rows {
        let n = r.n.map(|n| n.to_string()).unwrap_or_default();
        let fields = [
            quote(&r.split),
            quote(&r.treatment),
            n,
            r.mean_top1.to_string(),
            r.std_top1.to_string(),
            r.min_top1.to_string(),
            r.max_top1.to_string(),
            r.runs.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use crate::report::build::build;
    use crate::report::test_records::{run, seeded};

    #[test]
    fn exact_content() {
        let records = [
            run("random", "baseB", None, 0.625),
            seeded("random", "AnB", Some(1), 0, 0.5),
            seeded("random", "AnB", Some(1), 1, 0.75),
            run("random, odd", "AnB", Some(1), 0.25),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.csv");
        build(&records).write_csv(&path).unwrap();
        let want = "\
split,treatment,n,mean_top1,std_top1,min_top1,max_top1,runs
random,baseB,,0.625,0,0.625,0.625,1
random,AnB,1,0.625,0.1767766952966369,0.5,0.75,2
\"random, odd\",AnB,1,0.25,0,0.25,0.25,1
";
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
    }
}
