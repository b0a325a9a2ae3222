//! Summary statistics of the runs that share one cell.

use serde::Serialize;

/// Mean, sample standard deviation, range and count of a non-empty set of values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); 0 for a single run, so a
    /// lone run does not pretend to know its spread.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Stats {
    /// `None` for no values: a cell without runs is missing, not zero.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let runs = values.len();
        let mean = values.iter().sum::<f64>() / runs as f64;
        let std = if runs > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (runs - 1) as f64).sqrt()
        } else {
            0.0
        };
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Stats { mean, std, min, max, runs })
    }
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn sample_std_and_range() {
        let s = Stats::of(&[1.0, 2.0, 3.0, 6.0]).unwrap();
        assert_eq!(s.mean, 3.0);
        assert!((s.std - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.runs), (1.0, 6.0, 4));
    }

    #[test]
    fn one_run_has_zero_spread_and_none_is_missing() {
        assert_eq!(Stats::of(&[0.5]).unwrap().std, 0.0);
        assert_eq!(Stats::of(&[]), None);
    }
}
