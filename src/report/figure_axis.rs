//! The figure's x axis: continuous (markers are jittered off the integers) but with
//! a tick at every cut n and "base" at 0, whatever plotters would call "nice".

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;

pub(crate) struct CutAxis {
    inner: RangedCoordf64,
    max_n: usize,
}

impl CutAxis {
    /// From a little left of base (x = 0) to a little right of the deepest cut.
    pub fn new(max_n: usize) -> CutAxis {
        CutAxis { inner: (-0.6..max_n as f64 + 0.6).into(), max_n }
    }
}

impl Ranged for CutAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..=self.max_n).map(|n| n as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for CutAxis {
    fn format(value: &f64) -> String {
        if *value < 0.5 { "base".to_owned() } else { format!("{value:.0}") }
    }
}
