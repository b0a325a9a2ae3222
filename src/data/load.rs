//! One entry point for every source format: detect (or take) the format, load, then
//! apply the caller's channel count, class names and groups.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::channels::convert_channels;
use super::files::find_parquet;
use super::{DataError, Dataset, cifar, folder, idx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// MNIST / Fashion-MNIST IDX files, raw or .gz.
    Idx,
    Cifar10,
    Cifar100,
    /// `train/<class>/*` (+ `test/<class>/*`) or `<class>/*` images.
    Folder,
    /// Hugging Face image datasets as parquet (needs the `parquet` cargo feature).
    Parquet,
    /// The decoded form written by `Dataset::write`.
    Stored,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// None: detect from the folder's contents.
    pub format: Option<Format>,
    /// 1 or 3; None keeps the source's (for folders: the majority's).
    pub channels: Option<usize>,
    /// Replaces the class names, e.g. Fashion-MNIST's; must match the class count.
    pub class_names: Option<Vec<String>>,
    /// `{group: [classes]}`, replacing any groups the source has (names as loaded,
    /// after `class_names`).
    pub groups: Option<BTreeMap<String, Vec<String>>>,
}

/// The format of the folder `path`, from the files it holds.
pub fn detect(path: &Path) -> Result<Format, DataError> {
    if path.is_file() && path.extension().is_some_and(|e| e == "parquet") {
        return Ok(Format::Parquet);
    }
    if !path.is_dir() {
        return Err(DataError::Missing { path: path.to_path_buf(), what: "a dataset is a folder" });
    }
    Ok(if path.join(super::HEADER_FILE).is_file() {
        Format::Stored
    } else if idx::is_idx(path) {
        Format::Idx
    } else if cifar::is_cifar10(path) {
        Format::Cifar10
    } else if cifar::is_cifar100(path) {
        Format::Cifar100
    } else if !find_parquet(path).is_empty() {
        Format::Parquet
    } else {
        Format::Folder
    })
}

pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let format = match opts.format {
        Some(f) => f,
        None => detect(path)?,
    };
    let mut ds = match format {
        Format::Idx => idx::read_idx(path)?,
        Format::Cifar10 => cifar::read_cifar10(path)?,
        Format::Cifar100 => cifar::read_cifar100(path)?,
        Format::Folder => folder::read_folder(path, opts.channels)?,
        Format::Stored => Dataset::read(path)?,
        Format::Parquet => super::parquet::read_parquet(path, opts.channels)?,
    };
    if let Some(c) = opts.channels {
        ds = convert_channels(ds, c)?;
    }
    if let Some(names) = &opts.class_names {
        if names.len() != ds.classes.len() {
            return Err(DataError::ClassNames { found: names.len(), classes: ds.classes.len() });
        }
        ds.classes = names.clone();
    }
    if let Some(groups) = &opts.groups {
        ds = ds.with_groups(groups)?;
    }
    ds.check()?;
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn detects_and_loads_each_format() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        idx::tests::write_idx(d, "train", 6, 4, 4, true);
        assert_eq!(detect(d).unwrap(), Format::Idx);
        let names: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
        let groups = BTreeMap::from([
            ("g".to_string(), vec!["x".to_string(), "y".to_string()]),
            ("h".to_string(), vec!["z".to_string()]),
        ]);
        let opts = LoadOptions {
            channels: Some(3),
            class_names: Some(names.clone()),
            groups: Some(groups),
            ..LoadOptions::default()
        };
        let ds = load(d, &opts).unwrap();
        assert_eq!((ds.shape, &ds.classes), ([3, 4, 4], &names));
        assert_eq!(ds.groups.as_ref().unwrap(), &["g", "g", "h"]);

        let stored = d.join("stored");
        ds.write(&stored).unwrap();
        assert_eq!(detect(&stored).unwrap(), Format::Stored);
        assert_eq!(load(&stored, &LoadOptions::default()).unwrap(), ds);

        let e = load(d, &LoadOptions { class_names: Some(vec!["a".into()]), ..LoadOptions::default() });
        assert_eq!(e.unwrap_err().to_string(), "1 class names given for 3 classes");

        let c10 = d.join("c10");
        fs::create_dir(&c10).unwrap();
        fs::write(c10.join("data_batch_1.bin"), [0u8; 3073]).unwrap();
        assert_eq!(detect(&c10).unwrap(), Format::Cifar10);
        let c100 = d.join("c100/cifar-100-binary");
        fs::create_dir_all(&c100).unwrap();
        fs::write(c100.join("train.bin"), [0u8; 3074]).unwrap();
        assert_eq!(detect(&d.join("c100")).unwrap(), Format::Cifar100);
        assert_eq!(detect(&d.join("stored/..")).unwrap(), Format::Idx);
        assert!(matches!(detect(&d.join("nope")), Err(DataError::Missing { .. })));

        let pq = d.join("hub/data");
        fs::create_dir_all(&pq).unwrap();
        fs::write(pq.join("train-00000-of-00001.parquet"), b"").unwrap();
        assert_eq!(detect(&d.join("hub")).unwrap(), Format::Parquet);
        assert_eq!(detect(&pq.join("train-00000-of-00001.parquet")).unwrap(), Format::Parquet);
    }
}
