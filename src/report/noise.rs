//! How far apart runs of the same cell fall: the yardstick the findings measure
//! effects against.

use serde::Serialize;

use super::panel::Panel;

/// The paper's run-to-run variation at the same n, in points: the noise floor used
/// when no cell was run more than once.
pub const PAPER_NOISE_POINTS: f64 = 1.0;

/// The spread over seeds, in percentage points.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Noise {
    /// Pooled sample std over every cell with more than one run
    /// (sqrt of sum((k-1) s^2) / sum(k-1)); `None` when every cell has one run.
    pub pooled_std: Option<f64>,
    pub cells_with_repeats: usize,
    /// The value the findings use: `pooled_std`, or the paper's 1 point without repeats.
    pub points: f64,
}

impl Noise {
    pub(crate) fn of(panels: &[Panel]) -> Noise {
        let (mut sum, mut dof, mut cells) = (0.0, 0usize, 0usize);
        for s in panels.iter().flat_map(|p| p.cells.values()).filter(|s| s.runs > 1) {
            sum += (s.runs - 1) as f64 * s.std * s.std;
            dof += s.runs - 1;
            cells += 1;
        }
        let pooled_std = (dof > 0).then(|| (sum / dof as f64).sqrt());
        Noise { pooled_std, cells_with_repeats: cells, points: pooled_std.unwrap_or(PAPER_NOISE_POINTS) }
    }

    /// One line for the findings' printout.
    pub fn describe(&self) -> String {
        match self.pooled_std {
            Some(std) => format!(
                "noise: spread over seeds {std:.2} points (pooled std of {} cells with repeated runs)",
                self.cells_with_repeats
            ),
            None => format!(
                "noise: one run per cell, so no spread over seeds; using {:.1} point (the paper's \
                 run-to-run variation) as the noise floor",
                self.points
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Noise;
    use crate::report::panel::panels;
    use crate::report::test_records::{run, seeded};

    #[test]
    fn pools_cells_with_repeats() {
        let records = [
            seeded("random", "BnB", Some(1), 0, 0.60),
            seeded("random", "BnB", Some(1), 1, 0.62),
            seeded("random", "AnB", Some(1), 0, 0.50),
            seeded("random", "AnB", Some(1), 1, 0.50),
            run("random", "baseB", None, 0.6),
        ];
        let noise = Noise::of(&panels(&records));
        // Cells: std sqrt(2) and 0, one degree of freedom each: pooled sqrt(2/2) = 1.
        assert!((noise.points - 1.0).abs() < 1e-9, "{noise:?}");
        assert_eq!(noise.cells_with_repeats, 2);
    }

    #[test]
    fn falls_back_to_the_papers_floor() {
        let noise = Noise::of(&panels(&[run("random", "BnB", Some(1), 0.6)]));
        assert_eq!((noise.pooled_std, noise.points), (None, 1.0));
        assert!(noise.describe().contains("one run per cell"));
    }
}
