//! MNIST and Fashion-MNIST in their IDX files, raw or gzipped, from one folder.
//!
//! IDX is a big-endian magic number (two zero bytes, a type code, the number of
//! dimensions), one u32 per dimension, then the data. Both datasets use u8 data:
//! images are `0x00000803` (N x rows x cols), labels `0x00000801` (N).

use std::path::{Path, PathBuf};

use super::files::{check_labels, find, read_maybe_gz};
use super::{DataError, Dataset, ImageOrigin, Part};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Fashion-MNIST's class names, for callers that know that is what they loaded.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];

/// File names tried for a part, in order; some mirrors use a dot before "idx".
fn names(prefix: &str, what: &str, dims: u8) -> [String; 2] {
    [format!("{prefix}-{what}-idx{dims}-ubyte"), format!("{prefix}-{what}.idx{dims}-ubyte")]
}

fn find_part(dir: &Path, prefix: &str) -> Option<(PathBuf, PathBuf)> {
    let images = names(prefix, "images", 3);
    let labels = names(prefix, "labels", 1);
    let images = find(dir, &[&images[0], &images[1]])?;
    let labels = find(dir, &[&labels[0], &labels[1]])?;
    Some((images, labels))
}

/// True when `dir` holds the IDX training files.
pub(crate) fn is_idx(dir: &Path) -> bool {
    find_part(dir, "train").is_some()
}

/// Loads `train-*` (required) and `t10k-*` (optional). Classes are the digits
/// "0".."k-1" for the largest label k-1; rename them for Fashion-MNIST.
pub fn read_idx(dir: &Path) -> Result<Dataset, DataError> {
    let Some((images, labels)) = find_part(dir, "train") else {
        return Err(DataError::Missing {
            path: dir.join("train-images-idx3-ubyte"),
            what: "an IDX folder needs train-images-idx3-ubyte and train-labels-idx1-ubyte (or .gz)",
        });
    };
    let (shape, train) = read_pair(&images, &labels)?;
    let test = match find_part(dir, "t10k") {
        Some((images, labels)) => {
            let (test_shape, test) = read_pair(&images, &labels)?;
            if test_shape != shape {
                let origin = |path| ImageOrigin { path, row: None };
                return Err(DataError::ImageSize {
                    origin: origin(images),
                    found: [test_shape[2], test_shape[1]].map(|d| d as u32),
                    first: origin(dir.join("train-images-idx3-ubyte")),
                    expected: [shape[2], shape[1]].map(|d| d as u32),
                });
            }
            Some(test)
        }
        None => None,
    };
    let k = train.labels.iter().chain(test.iter().flat_map(|t| &t.labels)).max().map_or(1, |&m| m as usize + 1);
    let ds = Dataset { shape, classes: (0..k).map(|i| i.to_string()).collect(), groups: None, train, test };
    ds.check()?;
    Ok(ds)
}

fn read_pair(images: &Path, labels: &Path) -> Result<([usize; 3], Part), DataError> {
    let img = read_maybe_gz(images)?;
    let dims = header(images, &img, IMAGES_MAGIC)?;
    let [n, rows, cols] = [dims[0], dims[1], dims[2]];
    let start = 16;
    expect_len(images, &img, start + n * rows * cols, || format!("16-byte header + {n} images of {rows}x{cols}"))?;
    let lab = read_maybe_gz(labels)?;
    let dims = header(labels, &lab, LABELS_MAGIC)?;
    expect_len(labels, &lab, 8 + dims[0], || format!("8-byte header + {} labels", dims[0]))?;
    if dims[0] != n {
        return Err(DataError::CountMismatch {
            path: labels.to_path_buf(),
            found: dims[0],
            other: images.to_path_buf(),
            expected: n,
        });
    }
    let labels_v: Vec<u16> = lab[8..].iter().map(|&l| l as u16).collect();
    check_labels(labels, &labels_v, 256)?;
    let part = Part { pixels: img[start..].to_vec(), labels: labels_v };
    Ok(([1, rows, cols], part))
}

/// Checks the magic number and returns the dimensions.
fn header(path: &Path, bytes: &[u8], magic: u32) -> Result<Vec<usize>, DataError> {
    let ndims = (magic & 0xff) as usize;
    let head = 4 + 4 * ndims;
    expect_at_least(path, bytes, head, || format!("{head}-byte IDX header"))?;
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    if word(0) != magic {
        return Err(DataError::Magic { path: path.to_path_buf(), found: word(0), expected: magic });
    }
    Ok((0..ndims).map(|d| word(4 + 4 * d) as usize).collect())
}

fn expect_at_least(path: &Path, bytes: &[u8], len: usize, what: impl Fn() -> String) -> Result<(), DataError> {
    check_size(path, bytes, len, bytes.len() >= len, what)
}

fn expect_len(path: &Path, bytes: &[u8], len: usize, what: impl Fn() -> String) -> Result<(), DataError> {
    check_size(path, bytes, len, bytes.len() == len, what)
}

fn check_size(path: &Path, bytes: &[u8], len: usize, ok: bool, what: impl Fn() -> String) -> Result<(), DataError> {
    if ok {
        return Ok(());
    }
    Err(DataError::Size { path: path.to_path_buf(), found: bytes.len() as u64, expected: len as u64, what: what() })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;

    /// Writes an IDX pair: `n` images of `rows`x`cols` with pixel = index + position.
    pub(crate) fn write_idx(dir: &Path, prefix: &str, n: usize, rows: usize, cols: usize, gz: bool) {
        let mut img = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            img.extend((d as u32).to_be_bytes());
        }
        img.extend((0..n * rows * cols).map(|i| (i % 251) as u8));
        let mut lab = LABELS_MAGIC.to_be_bytes().to_vec();
        lab.extend((n as u32).to_be_bytes());
        lab.extend((0..n).map(|i| (i % 3) as u8));
        for (what, bytes) in [("images-idx3", img), ("labels-idx1", lab)] {
            let name = format!("{prefix}-{what}-ubyte");
            if gz {
                let f = fs::File::create(dir.join(format!("{name}.gz"))).unwrap();
                let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
                e.write_all(&bytes).unwrap();
                e.finish().unwrap();
            } else {
                fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    #[test]
    fn reads_raw_and_gz() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_idx(dir.path(), "train", 6, 4, 5, gz);
            write_idx(dir.path(), "t10k", 3, 4, 5, !gz);
            let ds = read_idx(dir.path()).unwrap();
            assert_eq!(ds.shape, [1, 4, 5]);
            assert_eq!(ds.classes, ["0", "1", "2"]);
            assert_eq!(ds.train.labels, [0, 1, 2, 0, 1, 2]);
            assert_eq!(ds.train.image(1, ds.shape)[0], 20);
            assert_eq!(ds.test.unwrap().len(), 3);
        }
    }

    #[test]
    fn test_part_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "train", 3, 2, 2, false);
        assert!(read_idx(dir.path()).unwrap().test.is_none());
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "train", 6, 4, 5, false);
        let images = dir.path().join("train-images-idx3-ubyte");
        let bytes = fs::read(&images).unwrap();

        fs::write(&images, &bytes[..bytes.len() - 3]).unwrap();
        let e = read_idx(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("{}: 133 bytes, expected 136 (16-byte header + 6 images of 4x5)", images.display()));

        let mut wrong = bytes.clone();
        wrong[3] = 1;
        fs::write(&images, &wrong).unwrap();
        let e = read_idx(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("wrong magic number 0x00000801, expected 0x00000803"), "{e}");

        fs::write(&images, &bytes).unwrap();
        let labels = dir.path().join("train-labels-idx1-ubyte");
        let mut lab = fs::read(&labels).unwrap();
        lab[7] = 5; // count 5, but 6 labels follow
        fs::write(&labels, &lab).unwrap();
        assert!(matches!(read_idx(dir.path()), Err(DataError::Size { .. })));
        lab[7] = 6;
        lab.truncate(8);
        lab.extend([0, 0, 0, 0, 0, 0]); // class 1 and 2 never appear... only 0
        fs::write(&labels, &lab).unwrap();
        assert_eq!(read_idx(dir.path()).unwrap().classes, ["0"]);

        fs::write(&labels, [0u8; 3]).unwrap();
        assert!(matches!(read_idx(dir.path()), Err(DataError::Size { .. })));

        let gz = dir.path().join("t10k-images-idx3-ubyte.gz");
        fs::write(&gz, b"not gzip").unwrap();
        write_idx(dir.path(), "train", 6, 4, 5, false);
        fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &lab).unwrap();
        let e = read_idx(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("cannot read {}", gz.display()));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(read_idx(empty.path()), Err(DataError::Missing { .. })));
    }
}
