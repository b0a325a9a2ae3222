//! The decoded on-disk form of a `Dataset` or a `Half`: decode a source once, then
//! read it back at disk speed on every later run.
//!
//! A folder holds `header.json` (format version, kind, shape, names, counts) and per
//! part two raw files: `<part>.pixels.u8` (N*C*H*W bytes, CHW per image) and
//! `<part>.labels.u16le`. Raw files need no parsing, so reading 60,000 CIFAR images is
//! two `read` calls; the header is written with fixed field order, so the same dataset
//! always gives the same bytes and its digest can key a cache. Reading checks every
//! file's size against the header before trusting it, then runs `check`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{DataError, Dataset, Half, Part};

/// Bump when the layout of the files changes; readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;

pub const HEADER_FILE: &str = "header.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartHeader {
    count: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetHeader {
    format: u32,
    kind: String,
    shape: [usize; 3],
    classes: Vec<String>,
    groups: Option<Vec<String>>,
    train: PartHeader,
    test: Option<PartHeader>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HalfHeader {
    format: u32,
    kind: String,
    name: String,
    shape: [usize; 3],
    classes: Vec<String>,
    original_labels: Vec<u16>,
    train: PartHeader,
    test: PartHeader,
}

/// Just enough of any header to refuse a wrong version or kind with a clear message
/// before the full, strict parse.
#[derive(Deserialize)]
struct Preamble {
    format: u32,
    kind: String,
}

impl Dataset {
    /// Writes the decoded form into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        self.check()?;
        let header = DatasetHeader {
            format: FORMAT_VERSION,
            kind: "dataset".into(),
            shape: self.shape,
            classes: self.classes.clone(),
            groups: self.groups.clone(),
            train: PartHeader { count: self.train.len() },
            test: self.test.as_ref().map(|t| PartHeader { count: t.len() }),
        };
        create_dir(dir)?;
        write_part(dir, "train", &self.train)?;
        if let Some(test) = &self.test {
            write_part(dir, "test", test)?;
        }
        write_header(dir, &header)
    }

    pub fn read(dir: &Path) -> Result<Dataset, DataError> {
        let h: DatasetHeader = read_header(dir, "dataset")?;
        let image_len = h.shape.iter().product();
        let train = read_part(dir, "train", h.train.count, image_len)?;
        let test = match &h.test {
            Some(t) => Some(read_part(dir, "test", t.count, image_len)?),
            None => None,
        };
        let ds = Dataset { shape: h.shape, classes: h.classes, groups: h.groups, train, test };
        ds.check()?;
        Ok(ds)
    }
}

impl Half {
    /// Writes the half like a dataset, with its name and label mapping in the header.
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        self.check()?;
        let header = HalfHeader {
            format: FORMAT_VERSION,
            kind: "half".into(),
            name: self.name.clone(),
            shape: self.shape,
            classes: self.classes.clone(),
            original_labels: self.original_labels.clone(),
            train: PartHeader { count: self.train.len() },
            test: PartHeader { count: self.test.len() },
        };
        create_dir(dir)?;
        write_part(dir, "train", &self.train)?;
        write_part(dir, "test", &self.test)?;
        write_header(dir, &header)
    }

    pub fn read(dir: &Path) -> Result<Half, DataError> {
        let h: HalfHeader = read_header(dir, "half")?;
        let image_len = h.shape.iter().product();
        let half = Half {
            name: h.name,
            classes: h.classes,
            original_labels: h.original_labels,
            shape: h.shape,
            train: read_part(dir, "train", h.train.count, image_len)?,
            test: read_part(dir, "test", h.test.count, image_len)?,
        };
        half.check()?;
        Ok(half)
    }
}

fn create_dir(dir: &Path) -> Result<(), DataError> {
    fs::create_dir_all(dir).map_err(|source| DataError::Write { path: dir.to_path_buf(), source })
}

fn pixels_path(dir: &Path, part: &str) -> PathBuf {
    dir.join(format!("{part}.pixels.u8"))
}

fn labels_path(dir: &Path, part: &str) -> PathBuf {
    dir.join(format!("{part}.labels.u16le"))
}

fn write_file(path: PathBuf, bytes: &[u8]) -> Result<(), DataError> {
    fs::write(&path, bytes).map_err(|source| DataError::Write { path, source })
}

fn write_part(dir: &Path, name: &str, part: &Part) -> Result<(), DataError> {
    write_file(pixels_path(dir, name), &part.pixels)?;
    let labels: Vec<u8> = part.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    write_file(labels_path(dir, name), &labels)
}

/// The header goes last: a folder whose header exists has all its data files.
fn write_header(dir: &Path, header: &impl Serialize) -> Result<(), DataError> {
    let mut text = serde_json::to_string_pretty(header).expect("headers serialize");
    text.push('\n');
    write_file(dir.join(HEADER_FILE), text.as_bytes())
}

fn read_header<T: DeserializeOwned>(dir: &Path, kind: &'static str) -> Result<T, DataError> {
    let path = dir.join(HEADER_FILE);
    let text = fs::read(&path).map_err(|source| DataError::Read { path: path.clone(), source })?;
    let bad = |source| DataError::Header { path: path.clone(), source };
    let pre: Preamble = serde_json::from_slice(&text).map_err(bad)?;
    if pre.format != FORMAT_VERSION {
        return Err(DataError::Version { path, found: pre.format, expected: FORMAT_VERSION });
    }
    if pre.kind != kind {
        return Err(DataError::Kind { path, found: pre.kind, expected: kind });
    }
    serde_json::from_slice(&text).map_err(bad)
}

/// Reads a file whose size the header fixes; checks the size before reading so a
/// truncated file is named rather than misread.
fn read_exact_file(path: PathBuf, expected: u64, what: String) -> Result<Vec<u8>, DataError> {
    let read_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| DataError::Read { path, source }
    };
    let found = fs::metadata(&path).map_err(read_err(&path))?.len();
    if found != expected {
        return Err(DataError::Size { path, found, expected, what });
    }
    fs::read(&path).map_err(read_err(&path))
}

fn read_part(dir: &Path, name: &str, count: usize, image_len: usize) -> Result<Part, DataError> {
    let pixels = read_exact_file(
        pixels_path(dir, name),
        (count * image_len) as u64,
        format!("{count} images of {image_len} bytes"),
    )?;
    let raw = read_exact_file(labels_path(dir, name), (count * 2) as u64, format!("{count} u16 labels"))?;
    let labels = raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    Ok(Part { pixels, labels })
}

#[cfg(test)]
mod tests {
    use super::super::dataset::tests::tiny;
    use super::*;

    #[test]
    fn dataset_round_trips_with_and_without_test() {
        for with_test in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let ds = tiny(4, 3, with_test);
            ds.write(dir.path()).unwrap();
            assert_eq!(Dataset::read(dir.path()).unwrap(), ds);
        }
    }

    #[test]
    fn same_dataset_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        tiny(3, 2, true).write(a.path()).unwrap();
        tiny(3, 2, true).write(b.path()).unwrap();
        for f in [HEADER_FILE, "train.pixels.u8", "train.labels.u16le", "test.pixels.u8"] {
            assert_eq!(fs::read(a.path().join(f)).unwrap(), fs::read(b.path().join(f)).unwrap(), "{f}");
        }
    }

    #[test]
    fn truncated_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        tiny(3, 2, true).write(dir.path()).unwrap();
        let labels = dir.path().join("test.labels.u16le");
        let bytes = fs::read(&labels).unwrap();
        fs::write(&labels, &bytes[..bytes.len() - 1]).unwrap();
        let e = Dataset::read(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with(&labels.display().to_string()), "{e}");
        assert!(e.ends_with(": 11 bytes, expected 12 (6 u16 labels)"), "{e}");
    }

    #[test]
    fn wrong_version_and_kind_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        tiny(3, 2, true).write(dir.path()).unwrap();
        let header = dir.path().join(HEADER_FILE);
        let text = fs::read_to_string(&header).unwrap();
        fs::write(&header, text.replace("\"format\": 1", "\"format\": 99")).unwrap();
        let e = Dataset::read(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::Version { found: 99, .. }), "{e}");
        fs::write(&header, &text).unwrap();
        let e = Half::read(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("holds a dataset, expected a half"), "{e}");
    }

    #[test]
    fn corrupt_label_is_caught_on_read() {
        let dir = tempfile::tempdir().unwrap();
        tiny(3, 2, false).write(dir.path()).unwrap();
        let labels = dir.path().join("train.labels.u16le");
        let mut bytes = fs::read(&labels).unwrap();
        bytes[0] = 200;
        fs::write(&labels, &bytes).unwrap();
        let e = Dataset::read(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::LabelRange { label: 200, .. }), "{e}");
    }
}
