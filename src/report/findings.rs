//! Judges the paper's six findings (Yosinski et al. 2014, section 4) on a run's panels.
//!
//! Every criterion compares cell means against `noise`, the spread over seeds (or the
//! paper's 1 point when each cell ran once). Means of k runs are less noisy than one
//! run, so using the per-run spread is deliberately conservative: a verdict of
//! "reproduced" should survive a rerun with other seeds. Findings 1-4 and 6 are judged
//! on the similar (`random`) split, as in the paper, or on the first split when that
//! one was not run; finding 5 compares the similar with the dissimilar split.

mod boost;
mod dip;
mod distance;
mod random_worse;
mod specificity;
mod tracks_base;

use super::column::Column;
use super::finding::{Finding, Verdict};
use super::panel::Panel;

/// What the findings read: the panels, the one judged for findings 1-4 and 6, noise.
pub(crate) struct Context<'a> {
    pub panels: &'a [Panel],
    pub primary: Option<&'a Panel>,
    pub noise: f64,
}

impl<'a> Context<'a> {
    /// The primary panel, if it has runs in all of `columns`; otherwise why not.
    fn require(&self, columns: &[Column]) -> Result<&'a Panel, String> {
        let names = columns.iter().map(|c| c.label()).collect::<Vec<_>>().join(" and ");
        let Some(panel) = self.primary else {
            return Err(format!("needs {names} runs (no runs at all)"));
        };
        let missing: Vec<&str> = columns.iter().filter(|c| !panel.has(**c)).map(|c| c.label()).collect();
        if missing.is_empty() {
            Ok(panel)
        } else {
            Err(format!("needs {names} runs (missing: {})", missing.join(", ")))
        }
    }
}

/// Evaluates the six findings, in the paper's order.
pub(crate) fn evaluate(panels: &[Panel], noise: f64) -> Vec<Finding> {
    // Panels come sorted with the similar split first.
    let cx = Context { panels, primary: panels.first(), noise };
    let mut findings = vec![
        tracks_base::evaluate(&cx),
        dip::evaluate(&cx),
        specificity::evaluate(&cx),
        boost::evaluate(&cx),
        distance::evaluate(&cx),
        random_worse::evaluate(&cx),
    ];
    // Differences between networks built on bases that learned nothing are noise, not
    // findings: say so instead of judging them.
    if let Some(why) = cx.primary.and_then(|p| at_chance(p, noise)) {
        for f in findings.iter_mut().filter(|f| f.id != distance::ID) {
            *f = not_measurable(f.id, f.name, why.clone());
        }
    }
    if let Some(why) = panels.iter().find_map(|p| at_chance(p, noise)) {
        for f in findings.iter_mut().filter(|f| f.id == distance::ID) {
            *f = not_measurable(f.id, f.name, why.clone());
        }
    }
    if let Some(p) = cx.primary.filter(|p| p.split != "random") {
        for f in findings.iter_mut().filter(|f| f.id != distance::ID && f.verdict != Verdict::NotMeasurable) {
            f.detail.push_str(&format!(" [judged on the {} split]", p.split));
        }
    }
    findings
}

/// Why a panel's findings cannot be judged, when its base networks are not clearly
/// above chance level: within three binomial standard deviations of a guesser's score
/// on their test set (and at least twice the noise).
fn at_chance(panel: &Panel, noise: f64) -> Option<String> {
    let chance = panel.chance?;
    let base = panel.base()?.mean;
    let margin = chance.margin.max(2.0 * noise);
    (base <= chance.percent + margin).then(|| {
        format!(
            "the base networks of the {} split are not clearly above chance level: {base:.1}% on {} classes, \
             where guessing scores {:.1}% and a guesser reaches {:.1}% by luck; differences between networks \
             built on them are not evidence (train longer, or use more data)",
            panel.split,
            chance.classes,
            chance.percent,
            chance.percent + margin
        )
    })
}

fn finding(id: u8, name: &'static str, reproduced: bool, detail: String) -> Finding {
    let verdict = if reproduced { Verdict::Reproduced } else { Verdict::NotReproduced };
    Finding { id, name, verdict, detail }
}

fn not_measurable(id: u8, name: &'static str, detail: String) -> Finding {
    Finding { id, name, verdict: Verdict::NotMeasurable, detail }
}

/// A difference in points with its sign, never `-0.0`.
fn signed(x: f64) -> String {
    let s = format!("{x:+.1}");
    if s == "-0.0" { "+0.0".to_owned() } else { s }
}

/// `n=1..7` for a run of consecutive cuts, `n=1,3,5` otherwise.
fn ns_text(ns: &[usize]) -> String {
    match ns {
        [] => "no n".to_owned(),
        [one] => format!("n={one}"),
        [first, .., last] if last - first + 1 == ns.len() => format!("n={first}..{last}"),
        _ => format!("n={}", ns.iter().map(usize::to_string).collect::<Vec<_>>().join(",")),
    }
}

/// The cuts where both columns have runs.
fn common_ns(panel: &Panel, a: Column, b: Column) -> Vec<usize> {
    let other = panel.ns(b);
    panel.ns(a).into_iter().filter(|n| other.contains(n)).collect()
}

/// The top three cuts: the paper's "upper layers" n=5..7 of its seven.
fn upper(ns: &[usize]) -> &[usize] {
    &ns[ns.len().saturating_sub(3)..]
}

fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, count) = values.into_iter().fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count as f64
}

/// Judges one finding on hand-made records, with 1 point of noise.
#[cfg(test)]
pub(crate) fn judge(records: &[super::record::RunRecord], evaluate: fn(&Context) -> Finding) -> Finding {
    let panels = super::panel::panels(records);
    evaluate(&Context { panels: &panels, primary: panels.first(), noise: 1.0 })
}

#[cfg(test)]
mod tests {
    use super::{evaluate, ns_text, signed};
    use crate::report::finding::Verdict;
    use crate::report::noise::Noise;
    use crate::report::panel::panels;
    use crate::report::test_records::{dissimilar_records, paper_records};

    #[test]
    fn the_papers_numbers_reproduce_every_finding() {
        let mut records = paper_records(1);
        records.extend(dissimilar_records(1));
        let p = panels(&records);
        let findings = evaluate(&p, Noise::of(&p).points);
        for f in &findings {
            assert_eq!(f.verdict, Verdict::Reproduced, "{f:?}");
        }
        assert_eq!(findings.iter().map(|f| f.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bases_at_chance_make_every_finding_not_measurable() {
        let with_classes = |records: Vec<crate::report::record::RunRecord>, classes, images| {
            records
                .into_iter()
                .map(|mut r| {
                    r.classes = Some(classes);
                    r.test_images = Some(images);
                    r
                })
                .collect::<Vec<_>>()
        };
        // The paper's numbers on 2-class halves tested on 50 images: a base at 62.5% is
        // within three standard deviations of guessing (50% + 21.2).
        let mut records = with_classes(paper_records(1), 2, 50);
        records.extend(with_classes(dissimilar_records(1), 2, 50));
        let p = panels(&records);
        let findings = evaluate(&p, Noise::of(&p).points);
        for f in &findings {
            assert_eq!(f.verdict, Verdict::NotMeasurable, "{f:?}");
            assert!(f.detail.contains("above chance level: 62.5% on 2 classes, where guessing scores 50.0%"), "{f:?}");
        }
        // On the paper's 500 classes the same numbers are far above chance.
        let mut records = with_classes(paper_records(1), 500, 500);
        records.extend(with_classes(dissimilar_records(1), 500, 500));
        let p = panels(&records);
        assert!(evaluate(&p, Noise::of(&p).points).iter().all(|f| f.verdict == Verdict::Reproduced));
    }

    #[test]
    fn nothing_is_measurable_without_runs() {
        assert!(evaluate(&[], 1.0).iter().all(|f| f.verdict == Verdict::NotMeasurable));
    }

    #[test]
    fn number_helpers() {
        assert_eq!((signed(-0.01), signed(1.66), signed(-8.26)), ("+0.0".into(), "+1.7".into(), "-8.3".into()));
        assert_eq!(
            (ns_text(&[1, 2, 3]), ns_text(&[1, 3]), ns_text(&[4])),
            ("n=1..3".into(), "n=1,3".into(), "n=4".into())
        );
    }
}
