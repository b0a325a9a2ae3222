//! Splitting a dataset's classes into the two halves A and B of the experiment.
//!
//! Which classes go where is the `SplitMethod`; how many images each class keeps is
//! decided per class from the class's *name* and the split seed, so a class holds out
//! the same test images and keeps the same subsample whichever half it lands in and
//! whatever the other classes are. Images keep their original order within a half.

use serde::{Deserialize, Serialize};

use super::{DataError, Dataset, Part};
use crate::rng::Rng;

/// How to divide the classes into A and B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitMethod {
    /// Similar halves: classes shuffled with `seed`, the first half (rounded up) is A.
    Random { seed: u64 },
    /// Dissimilar halves: the classes of the named groups form A, all others B. With
    /// `a` empty, the first half of the groups (rounded up, in order of first
    /// appearance) is A.
    ByGroup { a: Vec<String> },
    /// Explicit class lists; they must be disjoint but need not cover every class.
    Classes { a: Vec<String>, b: Vec<String> },
}

/// One half of a split, labelled 0..k-1 in its own order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Half {
    /// "A" or "B".
    pub name: String,
    /// Original class names, in new-label order.
    pub classes: Vec<String>,
    /// New label i -> label in the source dataset.
    pub original_labels: Vec<u16>,
    pub shape: [usize; 3],
    pub train: Part,
    pub test: Part,
}

impl Half {
    pub fn check(&self) -> Result<(), DataError> {
        let k = self.classes.len();
        if k == 0 {
            return Err(DataError::EmptyHalf { half: self.name.clone() });
        }
        if self.original_labels.len() != k {
            return Err(DataError::GroupCount { found: self.original_labels.len(), classes: k });
        }
        for (name, part) in [("train", &self.train), ("test", &self.test)] {
            part.check(name, self.shape, k)?;
            if let Some(empty) = part.counts(k).iter().position(|&c| c == 0) {
                return Err(DataError::EmptyClass { part: name, class: self.classes[empty].clone() });
            }
        }
        Ok(())
    }
}

/// Splits `ds` into halves A and B.
///
/// `per_class` caps the training images per class (a random subset, order kept);
/// `holdout` is the fraction of each class's training images held out as its test
/// images when `ds.test` is `None` (ignored otherwise); `seed` drives both.
pub fn split(
    ds: &Dataset,
    method: &SplitMethod,
    per_class: Option<usize>,
    holdout: f64,
    seed: u64,
) -> Result<(Half, Half), DataError> {
    ds.check()?;
    if per_class == Some(0) {
        return Err(DataError::ZeroPerClass);
    }
    if ds.test.is_none() && !(holdout > 0.0 && holdout < 1.0) {
        return Err(DataError::Holdout { holdout });
    }
    let (a, b) = assign(ds, method)?;

    // Per class, the indices (into ds.train / the test part) each class keeps.
    let k = ds.classes.len();
    let mut train_keep: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in ds.train.labels.iter().enumerate() {
        train_keep[l as usize].push(i);
    }
    let mut test_keep: Vec<Vec<usize>> = vec![Vec::new(); k];
    match &ds.test {
        Some(test) => {
            for (i, &l) in test.labels.iter().enumerate() {
                test_keep[l as usize].push(i);
            }
        }
        None => {
            for (c, name) in ds.classes.iter().enumerate() {
                let all = std::mem::take(&mut train_keep[c]);
                let n = all.len();
                let held = ((n as f64 * holdout).round() as usize).clamp(1, n.max(2) - 1);
                let mut rng = Rng::derive(seed, &format!("holdout/{name}"));
                let (test, train) = take_random(&all, held, &mut rng);
                test_keep[c] = test;
                train_keep[c] = train;
            }
        }
    }
    if let Some(cap) = per_class {
        for (c, name) in ds.classes.iter().enumerate() {
            if train_keep[c].len() > cap {
                let mut rng = Rng::derive(seed, &format!("subsample/{name}"));
                train_keep[c] = take_random(&train_keep[c], cap, &mut rng).0;
            }
        }
    }

    let test_part = ds.test.as_ref().unwrap_or(&ds.train);
    let make = |name: &str, members: &[usize]| {
        let half = Half {
            name: name.to_string(),
            classes: members.iter().map(|&c| ds.classes[c].clone()).collect(),
            original_labels: members.iter().map(|&c| c as u16).collect(),
            shape: ds.shape,
            train: gather(&ds.train, &train_keep, members, ds.shape),
            test: gather(test_part, &test_keep, members, ds.shape),
        };
        half.check()?;
        Ok(half)
    };
    Ok((make("A", &a)?, make("B", &b)?))
}

/// The original labels of A and B, each ascending.
fn assign(ds: &Dataset, method: &SplitMethod) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let k = ds.classes.len();
    let (mut a, mut b) = match method {
        SplitMethod::Random { seed } => {
            if k < 2 {
                return Err(DataError::TooFewClasses { classes: k });
            }
            let perm = Rng::derive(*seed, "split/random").permutation(k);
            let (a, b) = perm.split_at(k.div_ceil(2));
            (a.to_vec(), b.to_vec())
        }
        SplitMethod::ByGroup { a: names } => {
            let groups = ds.groups.as_ref().ok_or(DataError::NoGroups)?;
            let known = ds.group_names();
            let in_a: Vec<String> = if names.is_empty() {
                known[..known.len().div_ceil(2)].to_vec()
            } else {
                for name in names {
                    if !known.contains(name) {
                        return Err(DataError::UnknownGroup { name: name.clone(), known });
                    }
                }
                names.clone()
            };
            (0..k).partition(|&c| in_a.contains(&groups[c]))
        }
        SplitMethod::Classes { a, b } => {
            let a = resolve(ds, a)?;
            let b = resolve(ds, b)?;
            if let Some(&both) = a.iter().find(|c| b.contains(c)) {
                return Err(DataError::BothHalves { class: ds.classes[both].clone() });
            }
            (a, b)
        }
    };
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    if a.is_empty() {
        return Err(DataError::EmptyHalf { half: "A".into() });
    }
    if b.is_empty() {
        return Err(DataError::EmptyHalf { half: "B".into() });
    }
    Ok((a, b))
}

fn resolve(ds: &Dataset, names: &[String]) -> Result<Vec<usize>, DataError> {
    names
        .iter()
        .map(|name| {
            ds.classes
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| DataError::UnknownClass { name: name.clone(), known: ds.classes.clone() })
        })
        .collect()
}

/// Splits `items` into `n` chosen at random and the rest, both in their original order.
fn take_random(items: &[usize], n: usize, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let mut chosen = vec![false; items.len()];
    for &p in &rng.permutation(items.len())[..n.min(items.len())] {
        chosen[p] = true;
    }
    let (mut taken, mut rest) = (Vec::new(), Vec::new());
    for (&item, &c) in items.iter().zip(&chosen) {
        if c { taken.push(item) } else { rest.push(item) }
    }
    (taken, rest)
}

/// The kept images of `members` from `part`, in their original order, relabelled to
/// the member's position.
fn gather(part: &Part, keep: &[Vec<usize>], members: &[usize], shape: [usize; 3]) -> Part {
    let mut indices: Vec<usize> = members.iter().flat_map(|&c| keep[c].iter().copied()).collect();
    indices.sort_unstable();
    let mut out = part.select(&indices, shape);
    let mut new_label = vec![u16::MAX; keep.len()];
    for (new, &c) in members.iter().enumerate() {
        new_label[c] = new as u16;
    }
    for l in &mut out.labels {
        *l = new_label[*l as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::dataset::tests::tiny;
    use super::*;

    fn random(seed: u64) -> SplitMethod {
        SplitMethod::Random { seed }
    }

    #[test]
    fn random_halves_partition_the_classes() {
        let ds = tiny(7, 4, true);
        let (a, b) = split(&ds, &random(0), None, 0.0, 0).unwrap();
        assert_eq!((a.name.as_str(), b.name.as_str()), ("A", "B"));
        assert_eq!((a.classes.len(), b.classes.len()), (4, 3));
        let mut all: Vec<u16> = a.original_labels.iter().chain(&b.original_labels).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<u16>>());
        for half in [&a, &b] {
            half.check().unwrap();
            assert_eq!(half.train.len(), half.classes.len() * 4);
            assert_eq!(half.test.len(), half.classes.len() * 4);
            for (new, &orig) in half.original_labels.iter().enumerate() {
                assert_eq!(half.classes[new], ds.classes[orig as usize]);
            }
        }
    }

    #[test]
    fn images_keep_their_pixels_and_order() {
        let ds = tiny(4, 5, true);
        let (a, _) = split(&ds, &random(3), None, 0.0, 0).unwrap();
        let orig: Vec<usize> =
            (0..ds.train.len()).filter(|&i| a.original_labels.contains(&ds.train.labels[i])).collect();
        assert_eq!(a.train, {
            let mut p = ds.train.select(&orig, ds.shape);
            for l in &mut p.labels {
                *l = a.original_labels.iter().position(|o| o == l).unwrap() as u16;
            }
            p
        });
    }

    #[test]
    fn seeds_decide_the_split() {
        let ds = tiny(10, 2, true);
        let classes = |s| split(&ds, &random(s), None, 0.0, 0).unwrap().0.classes;
        assert_eq!(classes(1), classes(1));
        let distinct: std::collections::BTreeSet<_> = (0..6).map(classes).collect();
        assert!(distinct.len() >= 5, "{distinct:?}");
    }

    #[test]
    fn by_group_and_explicit_classes() {
        let ds = tiny(6, 2, true); // groups g0, g1, g0, g1, ...
        let by = SplitMethod::ByGroup { a: vec![] };
        let (a, b) = split(&ds, &by, None, 0.0, 0).unwrap();
        assert_eq!(a.classes, ["c00", "c02", "c04"]);
        assert_eq!(b.classes, ["c01", "c03", "c05"]);
        let by = SplitMethod::ByGroup { a: vec!["g1".into()] };
        assert_eq!(split(&ds, &by, None, 0.0, 0).unwrap().0.classes, ["c01", "c03", "c05"]);
        let by = SplitMethod::ByGroup { a: vec!["g7".into()] };
        let e = split(&ds, &by, None, 0.0, 0).unwrap_err().to_string();
        assert_eq!(e, "unknown group \"g7\" (known: g0, g1)");

        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cl = SplitMethod::Classes { a: names(&["c05", "c00"]), b: names(&["c01"]) };
        let (a, b) = split(&ds, &cl, None, 0.0, 0).unwrap();
        assert_eq!((a.original_labels, b.original_labels), (vec![0, 5], vec![1]));
        let cl = SplitMethod::Classes { a: names(&["c01"]), b: names(&["c01"]) };
        let e = split(&ds, &cl, None, 0.0, 0).unwrap_err().to_string();
        assert_eq!(e, "class c01 is in both halves");
    }

    #[test]
    fn per_class_subsampling_and_holdout() {
        let ds = tiny(4, 10, false);
        let (a, b) = split(&ds, &random(0), Some(3), 0.2, 9).unwrap();
        for half in [&a, &b] {
            assert!(half.train.counts(half.classes.len()).iter().all(|&c| c == 3));
            assert!(half.test.counts(half.classes.len()).iter().all(|&c| c == 2));
        }
        // A class holds out the same images whatever the class split.
        let (a2, _) = split(&ds, &random(5), Some(3), 0.2, 9).unwrap();
        let c = &a.classes[0];
        let test_of = |h: &Half| {
            let l = h.classes.iter().position(|x| x == c)? as u16;
            Some(
                (0..h.test.len())
                    .filter(|&i| h.test.labels[i] == l)
                    .map(|i| h.test.image(i, h.shape).to_vec())
                    .collect::<Vec<_>>(),
            )
        };
        if let Some(t2) = test_of(&a2) {
            assert_eq!(test_of(&a).unwrap(), t2);
        }
        assert!(matches!(split(&ds, &random(0), None, 0.0, 0), Err(DataError::Holdout { .. })));
        assert!(matches!(split(&ds, &random(0), Some(0), 0.2, 0), Err(DataError::ZeroPerClass)));
    }

    #[test]
    fn half_round_trips() {
        let ds = tiny(5, 3, true);
        let (a, _) = split(&ds, &random(2), None, 0.0, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        a.write(dir.path()).unwrap();
        assert_eq!(Half::read(dir.path()).unwrap(), a);
    }
}
