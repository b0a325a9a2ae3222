//! A finding of the paper, judged on this run's numbers.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    /// The treatments the finding compares were not run.
    NotMeasurable,
}

impl Verdict {
    /// The marker word in text output: ASCII, and distinct at a glance.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "NOT reproduced",
            Verdict::NotMeasurable => "not measurable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// 1..6, in the paper's order (see `findings.rs`).
    pub id: u8,
    pub name: &'static str,
    pub verdict: Verdict,
    /// The numbers behind the verdict, the paper's beside them; for `NotMeasurable`,
    /// what is missing.
    pub detail: String,
}
