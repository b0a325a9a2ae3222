//! The cache on disk: content-addressed objects, stage manifests by key, locks.
//!
//! ```text
//! cache/
//!   objects/ab/cdef...      file contents by blake3 digest, stored once, read-only
//!   entries/ab/<key>.json   one manifest per stage key: the entry counts only once this exists
//!   locks/<key>.lock        held while a process computes that key
//!   records/<file>.json     per pipeline file: the last key of each stage name (for `status`)
//!   stat/<workspace>.json   digests of workspace files by size and mtime
//!   tmp/                    work in progress; never read as an entry
//! ```

mod atomic;
mod cache;
mod manifest;
mod records;

pub use atomic::write_atomic;
pub use cache::{Store, StoreError, VerifyReport};
pub use manifest::{MANIFEST_FORMAT, Manifest, Output};
pub use records::{Record, Records};
