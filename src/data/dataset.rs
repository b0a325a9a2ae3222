//! The in-memory dataset: decoded u8 pixels and u16 labels, plus class and group names.
//! Every loader produces one; `check` is the one place that states what "valid" means.

use std::collections::{BTreeMap, BTreeSet};

use super::DataError;

/// Images of one part (train or test): `pixels` holds N images of C*H*W bytes each,
/// channel-major (CHW) like CIFAR's binary form, so a tensor view needs no transpose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
}

impl Part {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The CHW bytes of image `i`.
    pub fn image(&self, i: usize, shape: [usize; 3]) -> &[u8] {
        let n = shape.iter().product::<usize>();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Images per label, for labels 0..classes.
    pub fn counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The images at `indices`, in that order.
    pub(crate) fn select(&self, indices: &[usize], shape: [usize; 3]) -> Part {
        let n = shape.iter().product::<usize>();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i, shape));
            labels.push(self.labels[i]);
        }
        Part { pixels, labels }
    }

    /// Sizes agree and every label is below `classes`.
    pub(crate) fn check(&self, part: &'static str, shape: [usize; 3], classes: usize) -> Result<(), DataError> {
        let expected = self.labels.len() * shape.iter().product::<usize>();
        if self.pixels.len() != expected {
            return Err(DataError::PixelCount { part, found: self.pixels.len(), expected, count: self.labels.len() });
        }
        if let Some((index, &label)) = self.labels.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
            return Err(DataError::LabelRange { part, index, label, classes });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Channels, height, width.
    pub shape: [usize; 3],
    /// Class names; label `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// Per class, the coarse group it belongs to (CIFAR-100's superclasses, the
    /// synthetic dataset's groups); a split by group gives dissimilar halves.
    pub groups: Option<Vec<String>>,
    pub train: Part,
    /// Absent when the source has no separate test images; `split` then holds out part
    /// of train.
    pub test: Option<Part>,
}

impl Dataset {
    /// Shape, labels and names are consistent and no class is empty in any part.
    pub fn check(&self) -> Result<(), DataError> {
        if self.shape.contains(&0) {
            return Err(DataError::ZeroShape { shape: self.shape });
        }
        let k = self.classes.len();
        if k > u16::MAX as usize + 1 {
            return Err(DataError::TooManyClasses { classes: k });
        }
        let mut seen = BTreeSet::new();
        for name in &self.classes {
            if !seen.insert(name) {
                return Err(DataError::DuplicateClass { name: name.clone() });
            }
        }
        if let Some(groups) = &self.groups
            && groups.len() != k
        {
            return Err(DataError::GroupCount { found: groups.len(), classes: k });
        }
        let parts = [("train", Some(&self.train)), ("test", self.test.as_ref())];
        for (name, part) in parts {
            let Some(part) = part else { continue };
            part.check(name, self.shape, k)?;
            if let Some(empty) = part.counts(k).iter().position(|&c| c == 0) {
                return Err(DataError::EmptyClass { part: name, class: self.classes[empty].clone() });
            }
        }
        Ok(())
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The group names in order of first appearance over the classes.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for g in self.groups.iter().flatten() {
            if !names.contains(g) {
                names.push(g.clone());
            }
        }
        names
    }

    /// Sets `groups` from a caller's `{group: [classes]}` mapping (e.g. CIFAR-10's
    /// man-made vs natural). Every class must be in exactly one group, and every named
    /// class must exist, so a typo cannot silently shrink a half.
    pub fn with_groups(mut self, map: &BTreeMap<String, Vec<String>>) -> Result<Dataset, DataError> {
        let mut groups: Vec<Option<String>> = vec![None; self.classes.len()];
        for (group, members) in map {
            for class in members {
                let Some(i) = self.classes.iter().position(|c| c == class) else {
                    return Err(DataError::UnknownClass { name: class.clone(), known: self.classes.clone() });
                };
                if groups[i].is_some() {
                    return Err(DataError::DuplicateClass { name: class.clone() });
                }
                groups[i] = Some(group.clone());
            }
        }
        let groups = groups
            .into_iter()
            .zip(&self.classes)
            .map(|(g, class)| g.ok_or_else(|| DataError::Ungrouped { class: class.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        self.groups = Some(groups);
        Ok(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny dataset whose pixels encode (part, index) so reordering bugs show.
    pub(crate) fn tiny(classes: usize, per_class: usize, test: bool) -> Dataset {
        let shape = [1, 2, 3];
        let part = |salt: u8| {
            let mut p = Part::default();
            for i in 0..classes * per_class {
                p.labels.push((i % classes) as u16);
                p.pixels.extend((0..6).map(|j| (i as u8).wrapping_mul(7).wrapping_add(j + salt)));
            }
            p
        };
        Dataset {
            shape,
            classes: (0..classes).map(|i| format!("c{i:02}")).collect(),
            groups: Some((0..classes).map(|i| format!("g{}", i % 2)).collect()),
            train: part(0),
            test: test.then(|| part(100)),
        }
    }

    #[test]
    fn check_accepts_consistent_data() {
        tiny(4, 3, true).check().unwrap();
        tiny(4, 3, false).check().unwrap();
    }

    #[test]
    fn check_names_what_is_wrong() {
        let mut ds = tiny(4, 3, true);
        ds.train.labels[5] = 9;
        let e = ds.check().unwrap_err().to_string();
        assert_eq!(e, "train image 5 has label 9, but there are only 4 classes");

        let mut ds = tiny(4, 3, true);
        ds.train.pixels.pop();
        assert!(matches!(ds.check(), Err(DataError::PixelCount { part: "train", .. })));

        let mut ds = tiny(4, 3, true);
        ds.classes.push("extra".into());
        ds.groups.as_mut().unwrap().push("g0".into());
        let e = ds.check().unwrap_err().to_string();
        assert_eq!(e, "class extra has no train images");

        let mut ds = tiny(4, 3, true);
        ds.classes[1] = "c00".into();
        assert!(matches!(ds.check(), Err(DataError::DuplicateClass { .. })));
    }

    #[test]
    fn with_groups_requires_every_class_once() {
        let ds = tiny(3, 1, false);
        let map = |pairs: &[(&str, &[&str])]| {
            pairs
                .iter()
                .map(|(g, cs)| (g.to_string(), cs.iter().map(|c| c.to_string()).collect()))
                .collect::<BTreeMap<_, _>>()
        };
        let ok = ds.clone().with_groups(&map(&[("x", &["c00", "c02"]), ("y", &["c01"])])).unwrap();
        assert_eq!(ok.groups.unwrap(), ["x", "y", "x"]);
        let e = ds.clone().with_groups(&map(&[("x", &["c00", "c01"])])).unwrap_err();
        assert_eq!(e.to_string(), "class c02 is in no group");
        let e = ds.with_groups(&map(&[("x", &["c00", "c01", "c2"])])).unwrap_err();
        assert_eq!(e.to_string(), "unknown class \"c2\" (known: c00, c01, c02)");
    }
}
