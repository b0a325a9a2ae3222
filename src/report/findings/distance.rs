//! Finding 5, distance hurts: transferring between dissimilar halves costs more.
//!
//! Compares how far AnB falls below its own split's base at the deepest n that both
//! splits ran, for the similar (`random`) and the dissimilar (`by_group`) split.
//! Reproduced when the dissimilar drop is larger by more than the noise.

use super::super::column::Column::{Base, Transfer};
use super::super::finding::Finding;
use super::super::panel::Panel;
use super::{Context, finding, not_measurable};

pub(super) const ID: u8 = 5;
const NAME: &str = "distance hurts";

pub(super) fn evaluate(cx: &Context) -> Finding {
    let find = |split: &str| cx.panels.iter().find(|p| p.split == split);
    let usable = |p: &&Panel| p.has(Base) && p.has(Transfer);
    let (similar, dissimilar) = (find("random"), find("by_group"));
    let (Some(similar), Some(dissimilar)) = (similar.filter(usable), dissimilar.filter(usable)) else {
        let missing: Vec<String> = [("random", similar), ("by_group", dissimilar)]
            .into_iter()
            .filter_map(|(name, p)| match p {
                None => Some(format!("{name} split")),
                Some(p) if !usable(&p) => Some(format!("base or AnB in the {name} split")),
                Some(_) => None,
            })
            .collect();
        let why =
            format!("needs a random and a by_group split, each with base and AnB (missing: {})", missing.join(", "));
        return not_measurable(ID, NAME, why);
    };
    let other = dissimilar.ns(Transfer);
    let Some(top) = similar.ns(Transfer).into_iter().filter(|n| other.contains(n)).max() else {
        return not_measurable(ID, NAME, "needs AnB at the same n in both splits (none in common)".to_owned());
    };
    let drop = |p: &Panel| p.base().expect("usable").mean - p.mean(Transfer, top).expect("common n");
    let (near, far) = (drop(similar), drop(dissimilar));
    let detail = format!(
        "at n={top} AnB is {far:.1} below base on the dissimilar (by_group) split vs {near:.1} on the random \
         split (needs a difference above {:.1}; paper: 25 vs 8.3 at n=7)",
        cx.noise
    );
    finding(ID, NAME, far - near > cx.noise, detail)
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use crate::report::finding::Verdict;
    use crate::report::findings::judge;
    use crate::report::test_records::{base, series};

    fn judge_drops(random_anb: f64, by_group_anb: f64) -> crate::report::finding::Finding {
        let mut records = vec![base("random", 60.0), base("by_group", 58.0)];
        records.extend(series("random", "AnB", &[60.0, random_anb]));
        records.extend(series("by_group", "AnB", &[58.0, by_group_anb]));
        judge(&records, evaluate)
    }

    #[test]
    fn larger_drop_for_the_dissimilar_split_or_not() {
        let f = judge_drops(55.0, 40.0);
        assert_eq!(f.verdict, Verdict::Reproduced);
        assert!(f.detail.starts_with("at n=2 AnB is 18.0 below base on the dissimilar (by_group) split vs 5.0"));
        assert_eq!(judge_drops(55.0, 53.5).verdict, Verdict::NotReproduced);
    }

    #[test]
    fn one_split_is_not_measurable() {
        let mut records = vec![base("random", 60.0)];
        records.extend(series("random", "AnB", &[60.0]));
        let f = judge(&records, evaluate);
        assert_eq!(f.verdict, Verdict::NotMeasurable);
        assert!(f.detail.ends_with("(missing: by_group split)"), "{}", f.detail);
    }
}
