//! Learning-rate schedules, stepped once per epoch.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` epochs (the paper: x0.1 every 100k iterations).
    Step {
        every: usize,
        gamma: f64,
    },
    /// Cosine from the base rate at epoch 0 towards 0 at the end.
    Cosine,
}

impl Schedule {
    /// The learning rate of epoch `epoch` (0-based) of `epochs`.
    pub fn lr_at(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
            Schedule::Cosine => {
                let t = epoch as f64 / epochs.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(Schedule::Constant.lr_at(0.1, 7, 10), 0.1);
        let step = Schedule::Step { every: 2, gamma: 0.5 };
        let rates: Vec<f64> = (0..5).map(|e| step.lr_at(1.0, e, 5)).collect();
        assert_eq!(rates, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        assert_eq!(Schedule::Cosine.lr_at(1.0, 0, 4), 1.0);
        assert!((Schedule::Cosine.lr_at(1.0, 2, 4) - 0.5).abs() < 1e-12);
    }
}
