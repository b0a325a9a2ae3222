//! The cache on disk: content-addressed objects, stage manifests by key, locks.
//!
//! ```text
//! cache/
//!   objects/ab/cdef...      file contents by blake3 digest, stored once, read-only
//!   entries/ab/<key>.json   one manifest per stage key: the entry counts only once this exists
//!   locks/<key>.lock        held while a process computes that key
//!   records/<file>.json     per pipeline file: the last key of each stage name (for `status`)
//!   records/<file>.memo     per pipeline file: the entries its last run found (see memo.rs)
//!   stat/<workspace>.stat   digests of workspace files by size, times and inode
//!   resume/<key>/           state a killed stage resumes from
//!   quarantine/<digest>     objects that failed verification when read
//!   tmp/<proc>/             a process's work in progress, while it holds tmp/<proc>.lock
//!   uses/<file>-<host>-<uid>.log  who ran, checked or showed which entries, when (see uses.rs)
//!   uses/sets/<digest>.keys the key lists those lines name, stored once
//! ```
//!
//! Every object is hashed again when a stage reads it or `show` prints from it; one
//! that no longer matches is quarantined and its entries look up as damaged, so the
//! stage is computed again and nothing is ever computed from damaged bytes.

mod cache;
mod gc;
mod manifest;
mod memo;
mod records;
mod retain;
mod uses;

pub use cache::{Damage, Lookup, Store, StoreError, VerifyReport};
pub use gc::{GcPreview, GcReport, Keep, tree_bytes};
pub use manifest::{Asked, JobRun, MANIFEST_FORMAT, Manifest, Output, Used, Verified};
pub use memo::Memo;
pub use records::{Record, Records};
pub use retain::{Decision, EntryFacts, Facts, Owner, Policy, Removed, Why, decide};
pub use uses::{UseKind, UseLine, Who, now_unix, parse_log, user_name};
