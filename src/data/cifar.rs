//! CIFAR-10 and CIFAR-100 in their binary releases.
//!
//! A record is the label byte(s) then 3072 pixel bytes, already channel-major (1024
//! red, 1024 green, 1024 blue), which is exactly `Part`'s layout. CIFAR-10 has one
//! label byte (`data_batch_1..5.bin`, `test_batch.bin`, names in `batches.meta.txt`);
//! CIFAR-100 has a coarse then a fine byte (`train.bin`, `test.bin`, names in
//! `fine_label_names.txt` and `coarse_label_names.txt`); its coarse labels become the
//! dataset's groups. Either folder may also be given as its parent (the folder the
//! tarball unpacks into, `cifar-10-batches-bin` / `cifar-100-binary`).

use std::path::{Path, PathBuf};

use super::files::{check_labels, read_maybe_gz, read_names};
use super::{DataError, Dataset, Part};

const SHAPE: [usize; 3] = [3, 32, 32];
const PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10's classes, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// `dir`, or its tarball subfolder when that is where `marker` lives.
fn resolve(dir: &Path, sub: &str, marker: &str) -> PathBuf {
    if !dir.join(marker).is_file() && dir.join(sub).join(marker).is_file() { dir.join(sub) } else { dir.to_path_buf() }
}

pub(crate) fn is_cifar10(dir: &Path) -> bool {
    resolve(dir, "cifar-10-batches-bin", "data_batch_1.bin").join("data_batch_1.bin").is_file()
}

pub(crate) fn is_cifar100(dir: &Path) -> bool {
    resolve(dir, "cifar-100-binary", "train.bin").join("train.bin").is_file()
}

/// Loads CIFAR-10: every `data_batch_N.bin` from 1 up, and `test_batch.bin` if present.
pub fn read_cifar10(dir: &Path) -> Result<Dataset, DataError> {
    let dir = resolve(dir, "cifar-10-batches-bin", "data_batch_1.bin");
    let meta = dir.join("batches.meta.txt");
    let classes = if meta.is_file() { read_names(&meta)? } else { CIFAR10_CLASSES.map(String::from).to_vec() };
    let mut train = Part::default();
    let mut n = 1;
    while let Some(path) = existing(dir.join(format!("data_batch_{n}.bin"))) {
        let labelled = read_records::<1>(&path)?;
        check_labels(&path, &labelled.labels[0], classes.len())?;
        train.pixels.extend_from_slice(&labelled.pixels);
        train.labels.extend_from_slice(&labelled.labels[0]);
        n += 1;
    }
    if n == 1 {
        return Err(DataError::Missing {
            path: dir.join("data_batch_1.bin"),
            what: "a CIFAR-10 folder needs data_batch_1.bin",
        });
    }
    let test = match existing(dir.join("test_batch.bin")) {
        Some(path) => {
            let labelled = read_records::<1>(&path)?;
            check_labels(&path, &labelled.labels[0], classes.len())?;
            let [labels] = labelled.labels;
            Some(Part { pixels: labelled.pixels, labels })
        }
        None => None,
    };
    let ds = Dataset { shape: SHAPE, classes, groups: None, train, test };
    ds.check()?;
    Ok(ds)
}

/// Loads CIFAR-100 with fine labels as classes and coarse labels as groups.
pub fn read_cifar100(dir: &Path) -> Result<Dataset, DataError> {
    let dir = resolve(dir, "cifar-100-binary", "train.bin");
    let names = |file: &str| {
        let path = dir.join(file);
        if path.is_file() {
            read_names(&path)
        } else {
            Err(DataError::Missing {
                path,
                what: "a CIFAR-100 folder needs fine_label_names.txt and coarse_label_names.txt",
            })
        }
    };
    let fine = names("fine_label_names.txt")?;
    let coarse = names("coarse_label_names.txt")?;
    let mut groups: Vec<Option<String>> = vec![None; fine.len()];
    let mut load = |path: PathBuf| -> Result<Part, DataError> {
        let labelled = read_records::<2>(&path)?;
        let [c, f] = labelled.labels;
        check_labels(&path, &c, coarse.len())?;
        check_labels(&path, &f, fine.len())?;
        for (&c, &f) in c.iter().zip(&f) {
            let g = &coarse[c as usize];
            match &groups[f as usize] {
                None => groups[f as usize] = Some(g.clone()),
                Some(first) if first != g => {
                    return Err(DataError::CoarseConflict {
                        path,
                        fine: fine[f as usize].clone(),
                        first: first.clone(),
                        second: g.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(Part { pixels: labelled.pixels, labels: f })
    };
    let train = load(dir.join("train.bin"))?;
    let test = existing(dir.join("test.bin")).map(&mut load).transpose()?;
    // A fine class without images has no coarse label; `check` reports it as empty.
    let groups = groups.into_iter().map(Option::unwrap_or_default).collect();
    let ds = Dataset { shape: SHAPE, classes: fine, groups: Some(groups), train, test };
    ds.check()?;
    Ok(ds)
}

fn existing(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}

/// Pixels of all records, and per label byte its labels.
struct Records<const L: usize> {
    pixels: Vec<u8>,
    labels: [Vec<u16>; L],
}

fn read_records<const L: usize>(path: &Path) -> Result<Records<L>, DataError> {
    let bytes = read_maybe_gz(path)?;
    let record = L + PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(DataError::Records { path: path.to_path_buf(), found: bytes.len() as u64, record });
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels: [Vec<u16>; L] = std::array::from_fn(|_| Vec::with_capacity(n));
    for rec in bytes.chunks_exact(record) {
        for (l, list) in labels.iter_mut().enumerate() {
            list.push(rec[l] as u16);
        }
        pixels.extend_from_slice(&rec[L..]);
    }
    Ok(Records { pixels, labels })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// `n` records whose label bytes are `labels(i)` and pixels start with `i`.
    fn records(n: usize, labels: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(labels(i));
            out.extend((0..PIXELS).map(|j| ((i + j) % 256) as u8));
        }
        out
    }

    #[test]
    fn cifar10_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cifar-10-batches-bin");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("data_batch_1.bin"), records(4, |i| vec![(i % 2) as u8])).unwrap();
        fs::write(dir.join("data_batch_2.bin"), records(2, |i| vec![(i % 2) as u8])).unwrap();
        fs::write(dir.join("test_batch.bin"), records(2, |i| vec![(i % 2) as u8])).unwrap();
        fs::write(dir.join("batches.meta.txt"), "cat\ndog\n\n").unwrap();
        let ds = read_cifar10(root.path()).unwrap();
        assert_eq!(ds.classes, ["cat", "dog"]);
        assert_eq!(ds.train.labels, [0, 1, 0, 1, 0, 1]);
        assert_eq!(ds.train.image(5, ds.shape)[..2], [1, 2]);
        assert_eq!(ds.test.as_ref().unwrap().len(), 2);

        // Without the names file the standard names apply, and label 1 is fine.
        fs::remove_file(dir.join("batches.meta.txt")).unwrap();
        let e = read_cifar10(&dir).unwrap_err().to_string();
        assert_eq!(e, "class bird has no train images");
    }

    #[test]
    fn cifar10_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let batch = dir.path().join("data_batch_1.bin");
        let mut bytes = records(3, |_| vec![0]);
        bytes.pop();
        fs::write(&batch, &bytes).unwrap();
        let e = read_cifar10(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("{}: 9218 bytes is not a whole number of 3073-byte records", batch.display()));
        fs::write(&batch, records(3, |i| vec![i as u8 * 6])).unwrap();
        let e = read_cifar10(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("{}: record 2 has label 12, but there are only 10 classes", batch.display()));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(read_cifar10(empty.path()), Err(DataError::Missing { .. })));
    }

    #[test]
    fn cifar100_groups_from_coarse_labels() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // fine 0,1 -> coarse 1 ("vehicles"); fine 2 -> coarse 0 ("fish").
        let labels = |i: usize| {
            let f = (i % 3) as u8;
            vec![if f == 2 { 0 } else { 1 }, f]
        };
        fs::write(d.join("train.bin"), records(6, labels)).unwrap();
        fs::write(d.join("test.bin"), records(3, labels)).unwrap();
        fs::write(d.join("fine_label_names.txt"), "bus\ntrain\ntrout\n").unwrap();
        fs::write(d.join("coarse_label_names.txt"), "fish\nvehicles\n").unwrap();
        let ds = read_cifar100(d).unwrap();
        assert_eq!(ds.classes, ["bus", "train", "trout"]);
        assert_eq!(ds.groups.as_ref().unwrap(), &["vehicles", "vehicles", "fish"]);
        assert_eq!(ds.train.labels, [0, 1, 2, 0, 1, 2]);

        fs::write(d.join("test.bin"), records(3, |i| vec![0, (i % 3) as u8])).unwrap();
        let e = read_cifar100(d).unwrap_err().to_string();
        assert!(e.ends_with("fine class bus is in coarse group vehicles and also in fish"), "{e}");

        fs::remove_file(d.join("coarse_label_names.txt")).unwrap();
        assert!(matches!(read_cifar100(d), Err(DataError::Missing { .. })));
    }
}
