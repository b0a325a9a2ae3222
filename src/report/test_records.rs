//! Hand-made records for the unit tests: a terse constructor and the paper's numbers.

use super::record::RunRecord;

/// A run targeting B; `base_half` is read off the treatment name.
pub(crate) fn run(split: &str, treatment: &str, n: Option<usize>, top1: f64) -> RunRecord {
    seeded(split, treatment, n, 0, top1)
}

pub(crate) fn seeded(split: &str, treatment: &str, n: Option<usize>, seed: u64, top1: f64) -> RunRecord {
    let base_half = match treatment {
        "random" => None,
        t if t.starts_with("base") => None,
        t => t.split('n').next().map(str::to_owned),
    };
    RunRecord {
        stage: format!("{treatment}[seed={seed},n={}]", n.map_or("-".to_owned(), |n| n.to_string())),
        treatment: treatment.parse().expect("a treatment"),
        n,
        split: split.to_owned(),
        split_seed: 0,
        seed,
        base_half,
        target_half: "B".to_owned(),
        top1,
        loss: 1.0,
        classes: None,
        test_images: None,
        curve: Vec::new(),
        loss_curve: Vec::new(),
    }
}

/// The paper's numbers behind its Figure 2 (random split, percent), n = 1..7.
pub(crate) const PAPER_BASE: f64 = 62.51;
pub(crate) const PAPER_BNB: [f64; 7] = [62.67, 62.35, 62.11, 60.48, 59.35, 61.88, 62.32];
pub(crate) const PAPER_ANB: [f64; 7] = [62.82, 62.39, 61.89, 59.98, 57.80, 58.06, 54.25];
pub(crate) const PAPER_BNB_TUNED: [f64; 7] = [61.77, 62.15, 63.13, 62.87, 63.01, 62.76, 62.66];
pub(crate) const PAPER_ANB_TUNED: [f64; 7] = [63.73, 63.58, 64.26, 63.98, 64.46, 64.60, 64.65];
/// Made up from the paper's prose (49.2% at n=1, 40.3% at n=2, near chance from n=3).
pub(crate) const PAPER_RANDOM: [f64; 7] = [49.2, 40.3, 6.0, 2.1, 1.3, 1.0, 0.9];

/// Records whose cell means are exactly the given table (percent): `seeds` runs per
/// cell spread symmetrically around the mean by a fixed, cell-dependent amount.
pub(crate) fn table_records(split: &str, base: f64, columns: &[(&str, &[f64])], seeds: u64) -> Vec<RunRecord> {
    let spread = |i: usize, seed: u64| -> f64 {
        let d = 0.3 + 0.1 * ((i * 7 + 3) % 6) as f64;
        if seeds < 2 { 0.0 } else { d * (2.0 * seed as f64 / (seeds - 1) as f64 - 1.0) }
    };
    let mut out = Vec::new();
    for seed in 0..seeds {
        out.push(seeded(split, "baseB", None, seed, (base + spread(99, seed)) / 100.0));
        for (c, (treatment, values)) in columns.iter().enumerate() {
            for (i, v) in values.iter().enumerate() {
                let top1 = (v + spread(c * 10 + i, seed)) / 100.0;
                out.push(seeded(split, treatment, Some(i + 1), seed, top1));
            }
        }
    }
    out
}

/// The paper's random split with a made-up random baseline, `seeds` runs per cell.
pub(crate) fn paper_records(seeds: u64) -> Vec<RunRecord> {
    table_records(
        "random",
        PAPER_BASE,
        &[
            ("BnB", &PAPER_BNB),
            ("BnB+", &PAPER_BNB_TUNED),
            ("AnB", &PAPER_ANB),
            ("AnB+", &PAPER_ANB_TUNED),
            ("random", &PAPER_RANDOM),
        ],
        seeds,
    )
}

/// A made-up dissimilar split in the paper's shape: AnB ends 25 points below base.
pub(crate) fn dissimilar_records(seeds: u64) -> Vec<RunRecord> {
    table_records(
        "by_group",
        60.0,
        &[
            ("BnB", &[60.2, 59.9, 59.5, 57.9, 57.0, 59.1, 59.8]),
            ("AnB", &[59.6, 58.4, 56.0, 51.2, 46.5, 41.0, 35.0]),
            ("AnB+", &[60.9, 60.8, 61.0, 60.7, 60.9, 61.1, 61.0]),
        ],
        seeds,
    )
}

/// One run per n = 1.. of a treatment, values in percent.
pub(crate) fn series(split: &str, treatment: &str, percent: &[f64]) -> Vec<RunRecord> {
    percent.iter().enumerate().map(|(i, v)| run(split, treatment, Some(i + 1), v / 100.0)).collect()
}

/// A base run, in percent.
pub(crate) fn base(split: &str, percent: f64) -> RunRecord {
    run(split, "baseB", None, percent / 100.0)
}
