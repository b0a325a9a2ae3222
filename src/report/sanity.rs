//! Before the findings: did each base network learn anything, and had it stopped
//! learning when its training ended? A finding read off bases that learned nothing is
//! noise (the findings then say "not measurable"); a base still improving explains a
//! fine-tuned transfer beating it (it trained for a second budget).

use serde::Serialize;

use super::column::Column;
use super::panel::Chance;
use super::record::RunRecord;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaseCheck {
    pub stage: String,
    pub split: String,
    /// Top-1 on its test images, in percent.
    pub top1: f64,
    /// Chance level, and the score a guesser reaches by luck (three binomial standard
    /// deviations above it), in percent; `None` where the classes are unknown.
    pub chance: Option<f64>,
    pub luck: Option<f64>,
    /// Held-out accuracy over its last `late_epochs` epochs minus the `late_epochs`
    /// before them, in points; `None` when the curve is too short or unknown.
    pub late_gain: Option<f64>,
    pub late_epochs: usize,
    pub verdict: BaseVerdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseVerdict {
    Learned,
    /// Not clearly above chance level.
    AtChance,
    /// Still improving at the end of training by more than the noise: not converged.
    NotConverged,
}

/// Every base network of `records`, checked against chance and its own learning curve;
/// `noise` (points) is how much a late gain must exceed to count.
pub(crate) fn check(records: &[RunRecord], noise: f64) -> Vec<BaseCheck> {
    let mut out: Vec<BaseCheck> = records
        .iter()
        .filter(|r| Column::classify(&r.treatment, &r.target_half) == Column::Base)
        .map(|r| {
            let top1 = 100.0 * r.top1;
            let chance = Chance::of(&[r]);
            let luck = chance.map(|c| c.percent + c.margin.max(2.0 * noise));
            let late_epochs = (r.curve.len() / 5).max(2);
            let late_gain = (r.curve.len() >= 2 * late_epochs).then(|| {
                let mean = |s: &[f64]| 100.0 * s.iter().sum::<f64>() / s.len() as f64;
                let n = r.curve.len();
                mean(&r.curve[n - late_epochs..]) - mean(&r.curve[n - 2 * late_epochs..n - late_epochs])
            });
            let verdict = if luck.is_some_and(|l| top1 <= l) {
                BaseVerdict::AtChance
            } else if late_gain.is_some_and(|g| g > noise) {
                BaseVerdict::NotConverged
            } else {
                BaseVerdict::Learned
            };
            BaseCheck {
                stage: r.stage.clone(),
                split: r.split.clone(),
                top1,
                chance: chance.map(|c| c.percent),
                luck,
                late_gain,
                late_epochs,
                verdict,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.split, &a.stage).cmp(&(&b.split, &b.stage)));
    out
}

/// The checks as text: nothing when nothing is known of the bases, else one line for
/// the bases that are fine and one per base that is not.
pub(crate) fn render(checks: &[BaseCheck]) -> String {
    let known: Vec<&BaseCheck> = checks.iter().filter(|c| c.chance.is_some() || c.late_gain.is_some()).collect();
    if known.is_empty() {
        return String::new();
    }
    let fine: Vec<&&BaseCheck> = known.iter().filter(|c| c.verdict == BaseVerdict::Learned).collect();
    let mut out = String::new();
    if !fine.is_empty() {
        let (lo, hi) = fine.iter().fold((f64::MAX, f64::MIN), |(lo, hi), c| (lo.min(c.top1), hi.max(c.top1)));
        let range = if hi - lo < 0.05 { format!("{lo:.1}%") } else { format!("{lo:.1}-{hi:.1}%") };
        let chance = fine.iter().filter_map(|c| c.chance).fold(f64::MIN, f64::max);
        let chance = if chance > f64::MIN { format!("; chance {chance:.1}%") } else { String::new() };
        out.push_str(&format!(
            "bases: {} of {} learned and had plateaued ({range}{chance})\n",
            fine.len(),
            known.len()
        ));
    }
    for c in known.iter().filter(|c| c.verdict != BaseVerdict::Learned) {
        let why = match c.verdict {
            BaseVerdict::AtChance => format!(
                "not clearly above chance: {:.1}%, where guessing scores {:.1}% and up to {:.1}% by luck",
                c.top1,
                c.chance.unwrap_or_default(),
                c.luck.unwrap_or_default()
            ),
            _ => format!(
                "still improving: held-out accuracy rose {:+.1} points over its last {} epochs ({:.1}% at the end); \
                 train it longer",
                c.late_gain.unwrap_or_default(),
                c.late_epochs,
                c.top1
            ),
        };
        out.push_str(&format!("base {}: {why}\n", c.stage));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_records::run;

    fn base(top1: f64, curve: &[f64]) -> RunRecord {
        let mut r = run("random", "baseB", None, top1);
        r.classes = Some(10);
        r.test_images = Some(1000);
        r.curve = curve.to_vec();
        r
    }

    #[test]
    fn chance_and_late_gains_are_told_apart() {
        let flat = [0.5, 0.7, 0.8, 0.81, 0.8, 0.81, 0.8, 0.81, 0.8, 0.8];
        let rising = [0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.78, 0.8];
        let checks = check(&[base(0.8, &flat), base(0.8, &rising), base(0.11, &flat)], 1.0);
        let verdicts: Vec<BaseVerdict> = checks.iter().map(|c| c.verdict).collect();
        assert_eq!(verdicts, [BaseVerdict::Learned, BaseVerdict::NotConverged, BaseVerdict::AtChance]);
        assert_eq!(checks[1].late_epochs, 2);
        assert!((checks[1].late_gain.unwrap() - 6.5).abs() < 1e-9);
        let text = render(&checks);
        assert!(text.starts_with("bases: 1 of 3 learned and had plateaued (80.0%; chance 10.0%)\n"), "{text}");
        assert!(text.contains("still improving: held-out accuracy rose +6.5 points over its last 2 epochs"));
        assert!(text.contains("not clearly above chance: 11.0%, where guessing scores 10.0% and up to 12.8% by luck"));
        // Records that know neither classes nor curves say nothing.
        assert_eq!(render(&check(&[run("random", "baseB", None, 0.8)], 1.0)), "");
    }
}
