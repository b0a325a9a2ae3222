//! The role a treatment plays in the paper's table, whichever half is the target.
//!
//! The paper prints its columns for target B (BnB, AnB, ...), but a run may target A
//! (AnA, BnA). Classifying by role lets the table, the findings and the figure pool
//! both directions, as the paper does, while the long table keeps the literal names.

use serde::Serialize;

use super::treatment::Treatment;

/// A column of the paper's table. The derived order is the order of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// `base{T}`: trained from scratch on the target half.
    Base,
    /// `{T}n{T}`: selffer, copied layers frozen (printed BnB).
    Selffer,
    /// `{T}n{T}+`: selffer, fine-tuned (printed BnB+).
    SelfferTuned,
    /// `{S}n{T}` with S != T: transfer, copied layers frozen (printed AnB).
    Transfer,
    /// `{S}n{T}+`: transfer, fine-tuned (printed AnB+).
    TransferTuned,
    /// Layers 1..n left random and frozen.
    Random,
    /// Any treatment the report does not know; listed, never interpreted.
    Other,
}

impl Column {
    /// The six columns of the paper's table, in print order.
    pub const TABLE: [Column; 6] =
        [Column::Base, Column::Selffer, Column::SelfferTuned, Column::Transfer, Column::TransferTuned, Column::Random];

    /// The column of a treatment of a run whose target half is `target`: a selffer is
    /// a transfer whose source is the target, whatever the halves are called.
    pub fn classify(treatment: &Treatment, target: &str) -> Column {
        match treatment {
            Treatment::Random => Column::Random,
            Treatment::Base { half } if half == target => Column::Base,
            Treatment::Transfer { from, to, fine_tuned } if to == target => match (from == target, fine_tuned) {
                (true, false) => Column::Selffer,
                (true, true) => Column::SelfferTuned,
                (false, false) => Column::Transfer,
                (false, true) => Column::TransferTuned,
            },
            _ => Column::Other,
        }
    }

    /// The paper's printed name of the column.
    pub fn label(self) -> &'static str {
        match self {
            Column::Base => "base",
            Column::Selffer => "BnB",
            Column::SelfferTuned => "BnB+",
            Column::Transfer => "AnB",
            Column::TransferTuned => "AnB+",
            Column::Random => "random",
            Column::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Column::{self, *};

    #[test]
    fn classifies_the_papers_names_for_either_target() {
        let cases = [
            ("baseB", "B", Base),
            ("baseA", "B", Other),
            ("baseA", "A", Base),
            ("BnB", "B", Selffer),
            ("BnB+", "B", SelfferTuned),
            ("AnB", "B", Transfer),
            ("AnB+", "B", TransferTuned),
            ("BnA", "A", Transfer),
            ("AnA+", "A", SelfferTuned),
            ("random", "B", Random),
            ("AnB then fine-tuned", "B", Other),
            ("AnA", "B", Other),
        ];
        for (treatment, target, want) in cases {
            assert_eq!(Column::classify(&treatment.parse().unwrap(), target), want, "{treatment} -> {target}");
        }
    }
}
