//! Reading source files whole, gzip-compressed or not, with errors that name them.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::DataError;

/// The bytes of `path`; a name ending in `.gz` is decompressed.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let err = |source| DataError::Read { path: path.to_path_buf(), source };
    let raw = fs::read(path).map_err(err)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(err)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The first of `names` (each also tried with `.gz`) that exists in `dir`.
pub(crate) fn find(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().flat_map(|n| [dir.join(n), dir.join(format!("{n}.gz"))]).find(|p| p.is_file())
}

/// Non-empty, trimmed lines of a names file such as CIFAR's `batches.meta.txt`.
pub(crate) fn read_names(path: &Path) -> Result<Vec<String>, DataError> {
    let text = fs::read_to_string(path).map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// Fails with the record index if any label is not below `classes`.
pub(crate) fn check_labels(path: &Path, labels: &[u16], classes: usize) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(index) => {
            Err(DataError::FileLabel { path: path.to_path_buf(), index, label: labels[index] as i64, classes })
        }
        None => Ok(()),
    }
}

/// `*.parquet` at `root` (a file) or up to three folders below it, sorted.
pub(crate) fn find_parquet(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() && depth > 0 {
                walk(&p, depth - 1, out);
            } else if p.extension().is_some_and(|x| x == "parquet") && p.is_file() {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if root.is_file() {
        if root.extension().is_some_and(|x| x == "parquet") {
            out.push(root.to_path_buf());
        }
    } else {
        walk(root, 3, &mut out);
    }
    out.sort();
    out
}
