//! Finding 4, the generalisation boost: AnB+ beats base even after full fine-tuning.
//!
//! Reproduced when the mean of AnB+ - base over all n is at least 0. Averaging over
//! the cuts already divides the noise, so no margin is added; the detail prints the
//! mean over the top three cuts too (the paper's n=5..7), where the boost is largest.

use super::super::column::Column::{Base, TransferTuned};
use super::super::finding::Finding;
use super::{Context, finding, mean, not_measurable, ns_text, signed, upper};

pub(super) const ID: u8 = 4;
const NAME: &str = "generalisation boost";

pub(super) fn evaluate(cx: &Context) -> Finding {
    let panel = match cx.require(&[Base, TransferTuned]) {
        Ok(panel) => panel,
        Err(why) => return not_measurable(ID, NAME, why),
    };
    let base = panel.base().expect("required").mean;
    let ns = panel.ns(TransferTuned);
    let boost = |ns: &[usize]| mean(ns.iter().map(|&n| panel.mean(TransferTuned, n).expect("n from ns") - base));
    let (all, top) = (boost(&ns), boost(upper(&ns)));
    let detail = format!(
        "AnB+ - base is {} on average over {}, {} over {} (paper: +1.7 over n=1..7, +2.1 over n=5..7)",
        signed(all),
        ns_text(&ns),
        signed(top),
        ns_text(upper(&ns))
    );
    finding(ID, NAME, all >= 0.0, detail)
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use crate::report::finding::Verdict;
    use crate::report::findings::judge;
    use crate::report::test_records::{base, series};

    fn judge_tuned(anb_tuned: &[f64]) -> crate::report::finding::Finding {
        let mut records = vec![base("random", 60.0)];
        records.extend(series("random", "AnB+", anb_tuned));
        judge(&records, evaluate)
    }

    #[test]
    fn boost_or_loss() {
        let f = judge_tuned(&[60.0, 61.0, 62.0, 63.0]);
        assert_eq!(f.verdict, Verdict::Reproduced);
        assert!(f.detail.starts_with("AnB+ - base is +1.5 on average over n=1..4, +2.0 over n=2..4"), "{}", f.detail);
        assert_eq!(judge_tuned(&[59.0, 59.5, 60.2]).verdict, Verdict::NotReproduced);
    }

    #[test]
    fn missing_base_is_not_measurable() {
        let f = judge(&series("random", "AnB+", &[60.0]), evaluate);
        assert_eq!(f.verdict, Verdict::NotMeasurable);
        assert!(f.detail.contains("missing: base"), "{}", f.detail);
    }
}
