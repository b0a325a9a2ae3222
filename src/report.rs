//! The report of a transfer experiment (Yosinski et al. 2014): what `pipe` prints and
//! writes once the networks are trained.
//!
//! [`build`] turns one [`RunRecord`] per trained network into a [`Report`], purely:
//! the long table (one [`Row`] per split, treatment and n), the paper's table per
//! split, the [`Noise`] (spread over seeds) and the six [`Finding`]s of the paper (its section 4), each
//! judged against that noise. Writers are the only IO: CSV, Parquet and Markdown for
//! the table, SVG and PNG for the paper's Figure 2, and `Serialize` for `--json`.
//!
//! Treatments are read by role ([`Column`]): `{T}n{T}` is a selffer and `{S}n{T}` a
//! transfer whatever the halves are called, so BnB and AnA pool into the paper's BnB
//! column while the long table keeps the literal names.

mod atomic;
mod build;
mod column;
mod csv;
mod curves;
mod error;
mod figure;
mod figure_axis;
mod figure_legend;
mod figure_marker;
mod figure_style;
mod finding;
mod findings;
mod findings_text;
mod font;
mod html;
mod markdown;
mod noise;
mod panel;
mod parquet;
mod record;
mod row;
mod sanity;
mod stats;
mod table_text;
#[cfg(test)]
mod test_records;
mod treatment;

pub use build::{Report, build};
pub use column::Column;
pub use error::ReportError;
pub use finding::{Finding, Verdict};
pub use html::{Computed, JobUse, PageContext, Place, StageTime};
pub use noise::Noise;
pub use record::RunRecord;
pub use row::Row;
pub use sanity::{BaseCheck, BaseVerdict};
pub use treatment::{BadTreatment, Treatment};
