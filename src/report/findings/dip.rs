//! Finding 2, the co-adaptation dip: BnB drops at middle layers and recovers at the top.
//!
//! Reproduced when, over the middle cuts (every n but the first and the last), BnB's
//! lowest mean is more than the noise below base, and BnB at the last n is more than
//! the noise above that lowest mean. Needs BnB at three or more n.

use super::super::column::Column::{Base, Selffer};
use super::super::finding::Finding;
use super::{Context, finding, not_measurable, ns_text};

pub(super) const ID: u8 = 2;
const NAME: &str = "co-adaptation dip";

pub(super) fn evaluate(cx: &Context) -> Finding {
    let panel = match cx.require(&[Base, Selffer]) {
        Ok(panel) => panel,
        Err(why) => return not_measurable(ID, NAME, why),
    };
    let ns = panel.ns(Selffer);
    if ns.len() < 3 {
        let why = format!("needs BnB at 3 or more n to have a middle (have {})", ns_text(&ns));
        return not_measurable(ID, NAME, why);
    }
    let base = panel.base().expect("required").mean;
    let bnb = |n: usize| panel.mean(Selffer, n).expect("n from ns");
    let low = ns[1..ns.len() - 1].iter().copied().min_by(|a, b| bnb(*a).total_cmp(&bnb(*b))).expect("a middle");
    let top = *ns.last().expect("3 or more");
    let dip = base - bnb(low);
    let recovery = bnb(top) - bnb(low);
    let reproduced = dip > cx.noise && recovery > cx.noise;
    let detail = format!(
        "BnB at n={low} is {dip:.1} below base and {recovery:.1} back up at n={top} (noise {:.1}; \
         paper: 3.2 below at n=5, 2.0 at n=4, 3.0 back up at n=7)",
        cx.noise
    );
    finding(ID, NAME, reproduced, detail)
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use crate::report::finding::Verdict;
    use crate::report::findings::judge;
    use crate::report::test_records::{base, series};

    fn judge_bnb(bnb: &[f64]) -> crate::report::finding::Finding {
        let mut records = vec![base("random", 60.0)];
        records.extend(series("random", "BnB", bnb));
        judge(&records, evaluate)
    }

    #[test]
    fn dip_and_recovery() {
        let f = judge_bnb(&[60.0, 57.5, 58.0, 59.8]);
        assert_eq!(f.verdict, Verdict::Reproduced, "{}", f.detail);
        assert!(f.detail.starts_with("BnB at n=2 is 2.5 below base and 2.3 back up at n=4"), "{}", f.detail);
    }

    #[test]
    fn no_recovery_or_no_dip_is_not_reproduced() {
        assert_eq!(judge_bnb(&[60.0, 57.5, 57.0, 56.8]).verdict, Verdict::NotReproduced);
        assert_eq!(judge_bnb(&[60.0, 59.5, 59.6, 60.0]).verdict, Verdict::NotReproduced);
    }

    #[test]
    fn too_few_cuts_is_not_measurable() {
        assert_eq!(judge_bnb(&[60.0, 57.0]).verdict, Verdict::NotMeasurable);
    }
}
