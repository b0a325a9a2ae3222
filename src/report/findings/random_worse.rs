//! Finding 6, random features are worse than transferred ones.
//!
//! Reproduced when the random-filter baseline is below AnB at every n where both ran,
//! and far below over the top three common cuts: by more than max(5 points,
//! 5 x noise) on average. The paper's random networks are near chance from n=3, tens
//! of points below AnB, so 5 points is a low bar that a real collapse clears easily.

use super::super::column::Column::{Random, Transfer};
use super::super::finding::Finding;
use super::{Context, common_ns, finding, mean, not_measurable, ns_text, upper};

pub(super) const ID: u8 = 6;
const NAME: &str = "random features are worse";

pub(super) fn evaluate(cx: &Context) -> Finding {
    let panel = match cx.require(&[Transfer, Random]) {
        Ok(panel) => panel,
        Err(why) => return not_measurable(ID, NAME, why),
    };
    let ns = common_ns(panel, Transfer, Random);
    let Some(&first) = ns.first() else {
        return not_measurable(ID, NAME, "needs random and AnB at the same n (none in common)".to_owned());
    };
    let gap = |n: usize| panel.mean(Transfer, n).expect("common") - panel.mean(Random, n).expect("common");
    let above: Vec<usize> = ns.iter().copied().filter(|&n| gap(n) <= 0.0).collect();
    let top = upper(&ns);
    let top_gap = mean(top.iter().map(|&n| gap(n)));
    let far = f64::max(5.0, 5.0 * cx.noise);
    let where_below = if above.is_empty() {
        format!("below AnB at every n ({})", ns_text(&ns))
    } else {
        format!("not below AnB at {}", ns_text(&above))
    };
    let detail = format!(
        "random is {where_below}; AnB - random is {:.1} at n={first} and {top_gap:.1} on average over {} (needs \
         more than {far:.1}; paper: 49.2% vs 62.8% at n=1, 40.3% at n=2, near chance from n=3)",
        gap(first),
        ns_text(top)
    );
    finding(ID, NAME, above.is_empty() && top_gap > far, detail)
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use crate::report::finding::Verdict;
    use crate::report::findings::judge;
    use crate::report::test_records::series;

    fn verdict(random: &[f64]) -> Verdict {
        let mut records = series("random", "AnB", &[60.0, 59.0, 58.0, 57.0]);
        records.extend(series("random", "random", random));
        judge(&records, evaluate).verdict
    }

    #[test]
    fn collapse_or_not() {
        assert_eq!(verdict(&[50.0, 30.0, 5.0, 1.0]), Verdict::Reproduced);
        // Below everywhere, but only slightly.
        assert_eq!(verdict(&[59.0, 57.0, 56.0, 55.0]), Verdict::NotReproduced);
        // Far below at the top but above AnB at n=1.
        assert_eq!(verdict(&[61.0, 30.0, 5.0, 1.0]), Verdict::NotReproduced);
    }

    #[test]
    fn missing_random_is_not_measurable() {
        let f = judge(&series("random", "AnB", &[60.0]), evaluate);
        assert_eq!(f.verdict, Verdict::NotMeasurable);
        assert!(f.detail.contains("missing: random"), "{}", f.detail);
    }
}
