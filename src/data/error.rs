//! Everything that can go wrong while loading, checking, splitting or storing a
//! dataset. Variants carry the file and the facts; the binary renders them.

use std::path::PathBuf;

use super::ImageOrigin;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: missing; {what}")]
    Missing { path: PathBuf, what: &'static str },
    #[error("{path}: bad header")]
    Header {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: format version {found}, this build reads version {expected}")]
    Version { path: PathBuf, found: u32, expected: u32 },
    #[error("{path}: holds a {found}, expected a {expected}")]
    Kind { path: PathBuf, found: String, expected: &'static str },
    #[error("{path}: {found} bytes, expected {expected} ({what})")]
    Size { path: PathBuf, found: u64, expected: u64, what: String },
    #[error("{path}: {found} bytes is not a whole number of {record}-byte records")]
    Records { path: PathBuf, found: u64, record: usize },
    #[error("{path}: wrong magic number {found:#010x}, expected {expected:#010x}")]
    Magic { path: PathBuf, found: u32, expected: u32 },
    #[error("{path}: {found} records, but {other} has {expected}")]
    CountMismatch { path: PathBuf, found: usize, other: PathBuf, expected: usize },
    #[error("{path}: record {index} has label {label}, but there are only {classes} classes")]
    FileLabel { path: PathBuf, index: usize, label: i64, classes: usize },
    #[error("{path}: fine class {fine} is in coarse group {first} and also in {second}")]
    CoarseConflict { path: PathBuf, fine: String, first: String, second: String },
    #[error("{path}: column {column}: {problem}")]
    Column { path: PathBuf, column: String, problem: String },
    #[error("{path}: cannot read parquet")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{origin}: cannot decode image")]
    Decode {
        origin: ImageOrigin,
        #[source]
        source: Box<image::ImageError>,
    },
    #[error(
        "{origin}: image is {}x{}, but {first} is {}x{}; all images must have one size",
        found[0], found[1], expected[0], expected[1]
    )]
    ImageSize {
        origin: ImageOrigin,
        /// Width, height.
        found: [u32; 2],
        first: ImageOrigin,
        expected: [u32; 2],
    },
    #[error("{path}: class has no images")]
    EmptyClassDir { path: PathBuf },
    #[error("{path}: no class folders with images")]
    NoClasses { path: PathBuf },
    #[error("{path}: class {class} is not among the training classes")]
    UnknownTestClass { path: PathBuf, class: String },
    #[error("{path}: cannot tell the dataset format; {hint}")]
    UnknownFormat { path: PathBuf, hint: &'static str },
    #[error("{part} images: {found} pixel bytes, expected {expected} for {count} labels")]
    PixelCount { part: &'static str, found: usize, expected: usize, count: usize },
    #[error("{part} image {index} has label {label}, but there are only {classes} classes")]
    LabelRange { part: &'static str, index: usize, label: u16, classes: usize },
    #[error("class {class} has no {part} images")]
    EmptyClass { part: &'static str, class: String },
    #[error("{found} group entries for {classes} classes")]
    GroupCount { found: usize, classes: usize },
    #[error("class name {name:?} appears twice")]
    DuplicateClass { name: String },
    #[error("image shape {shape:?} has a zero dimension")]
    ZeroShape { shape: [usize; 3] },
    #[error("{classes} classes do not fit in 16-bit labels")]
    TooManyClasses { classes: usize },
    #[error("unknown class {name:?}{}", suggest(.known))]
    UnknownClass { name: String, known: Vec<String> },
    #[error("unknown group {name:?}{}", suggest(.known))]
    UnknownGroup { name: String, known: Vec<String> },
    #[error("class {class} is in no group")]
    Ungrouped { class: String },
    #[error("{found} class names given for {classes} classes")]
    ClassNames { found: usize, classes: usize },
    #[error("the dataset has no groups, so it cannot be split by group")]
    NoGroups,
    #[error("class {class} is in both halves")]
    BothHalves { class: String },
    #[error("half {half} has no classes")]
    EmptyHalf { half: String },
    #[error("cannot split {classes} classes into two halves")]
    TooFewClasses { classes: usize },
    #[error("holdout {holdout} must be in (0, 1) when the dataset has no test images")]
    Holdout { holdout: f64 },
    #[error("per-class subsample of 0 images")]
    ZeroPerClass,
    #[error("synthetic parameter {field} = {value}: {rule}")]
    BadParam { field: &'static str, value: String, rule: &'static str },
    #[error("{channels} channels requested; only 1 (grayscale) and 3 (rgb) are supported")]
    Channels { channels: usize },
}

/// " (known: a, b, c)" for short lists, so a typo shows what was meant.
fn suggest(known: &[String]) -> String {
    if known.is_empty() || known.len() > 20 { String::new() } else { format!(" (known: {})", known.join(", ")) }
}
