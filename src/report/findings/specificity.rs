//! Finding 3, specificity: AnB falls below BnB as n grows, sharply at the top.
//!
//! The gap AnB - BnB measures how specific layer n is to its own task. Reproduced when
//! the gap at the deepest common n is below -2 x noise (clearly negative: two noisy
//! means are compared) and more than the noise below the gap at the shallowest n.

use super::super::column::Column::{Base, Selffer, Transfer};
use super::super::finding::Finding;
use super::{Context, common_ns, finding, not_measurable, ns_text, signed};

pub(super) const ID: u8 = 3;
const NAME: &str = "specificity";

pub(super) fn evaluate(cx: &Context) -> Finding {
    let panel = match cx.require(&[Selffer, Transfer]) {
        Ok(panel) => panel,
        Err(why) => return not_measurable(ID, NAME, why),
    };
    let ns = common_ns(panel, Transfer, Selffer);
    let (Some(&first), Some(&top)) = (ns.first(), ns.last()) else {
        return not_measurable(ID, NAME, "needs AnB and BnB at the same n (none in common)".to_owned());
    };
    if first == top {
        return not_measurable(ID, NAME, format!("needs AnB and BnB at 2 or more common n (have {})", ns_text(&ns)));
    }
    let gap = |n: usize| panel.mean(Transfer, n).expect("common") - panel.mean(Selffer, n).expect("common");
    let (g_first, g_top) = (gap(first), gap(top));
    let reproduced = g_top < -2.0 * cx.noise && g_top < g_first - cx.noise;
    let versus_base = match panel.mean(Base, 0) {
        Some(base) => {
            format!("; AnB - base at n={top} is {}", signed(panel.mean(Transfer, top).expect("common") - base))
        }
        None => String::new(),
    };
    let detail = format!(
        "AnB - BnB goes from {} at n={first} to {} at n={top}{versus_base} (needs below {:.1} at the top and a \
         fall of more than {:.1}; paper: +0.15 to -8.1, AnB - base -8.3 at n=7)",
        signed(g_first),
        signed(g_top),
        -2.0 * cx.noise,
        cx.noise
    );
    finding(ID, NAME, reproduced, detail)
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use crate::report::finding::Verdict;
    use crate::report::findings::judge;
    use crate::report::test_records::series;

    fn verdict(anb: &[f64]) -> Verdict {
        let mut records = series("random", "BnB", &[60.0, 60.0, 60.0]);
        records.extend(series("random", "AnB", anb));
        judge(&records, evaluate).verdict
    }

    #[test]
    fn gap_opens_at_the_top_or_not() {
        assert_eq!(verdict(&[60.2, 59.0, 55.0]), Verdict::Reproduced);
        assert_eq!(verdict(&[60.2, 59.8, 59.0]), Verdict::NotReproduced);
        // Negative everywhere but not falling: a worse source, not specificity.
        assert_eq!(verdict(&[55.0, 55.0, 55.0]), Verdict::NotReproduced);
    }

    #[test]
    fn missing_anb_is_not_measurable() {
        let f = judge(&series("random", "BnB", &[60.0, 60.0]), evaluate);
        assert_eq!(f.verdict, Verdict::NotMeasurable);
        assert!(f.detail.contains("missing: AnB"), "{}", f.detail);
    }
}
