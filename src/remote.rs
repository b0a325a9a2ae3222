//! A remote cache: the same objects and manifests as the local cache, in an
//! S3-compatible bucket or a shared folder, so a stage computed on one machine is never
//! computed again on another.
//!
//! Layout under the remote's prefix, as in the local cache: `objects/ab/cdef...` (named
//! by the blake3 digest of their bytes) and `entries/ab/KEY.json` (manifests). An entry
//! is written only after every object it names is there, so a remote entry never
//! points at missing bytes; every object is verified against its digest before it
//! enters a local cache. Writes are create-if-absent where the store supports it, and
//! harmless where it does not: two writers of one name write the same bytes (objects)
//! or equally valid manifests of one key.
//!
//! The client is the Apache Arrow project's `object_store` (S3 and local folders behind
//! one interface), driven from plain threads: each transfer is one blocking call into a
//! shared runtime, run on a bounded pool of workers.

mod backend;
pub mod sync;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use backend::Backend;
pub use sync::{Moved, Transfer};

use crate::store::StoreError;

/// How many transfers run at once.
pub const CONNECTIONS: usize = 16;

/// Where a remote is: a bucket (with its prefix) or a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String, endpoint: Option<String>, region: Option<String> },
    Folder { path: PathBuf },
}

impl Location {
    /// `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`, or a plain path.
    pub fn parse(url: &str) -> Result<Location, RemoteError> {
        let bad = |why: &str| RemoteError::BadUrl { url: url.to_string(), why: why.to_string() };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name (write s3://BUCKET/PREFIX)"));
            }
            let (mut endpoint, mut region) = (None, None);
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("endpoint", v)) if !v.is_empty() => endpoint = Some(v.to_string()),
                    Some(("region", v)) if !v.is_empty() => region = Some(v.to_string()),
                    _ => return Err(bad(&format!("unknown setting `{pair}` (known: endpoint=URL, region=NAME)"))),
                }
            }
            let prefix = prefix.trim_matches('/').to_string();
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix, endpoint, region });
        }
        let path = match url.strip_prefix("file://") {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            Some(_) => return Err(bad("a file URL names an absolute path: file:///path/to/folder")),
            None if url.contains("://") => {
                return Err(bad("only s3:// and file:// remotes (or a plain folder path) are supported"));
            }
            None if url.is_empty() => return Err(bad("empty")),
            None => PathBuf::from(url),
        };
        Ok(Location::Folder { path: std::path::absolute(&path).unwrap_or(path) })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("remote `{url}` is not a remote URL: {why}")]
    BadUrl { url: String, why: String },
    /// A request failed: the remote, what was being done, and the client's error
    /// (unreachable, refused credentials, no such bucket) as the cause.
    #[error("remote {url}: {what}")]
    Request {
        url: String,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("remote {url}: object {digest} is damaged: its bytes hash to {got}; nothing of it was stored locally")]
    Corrupt { url: String, digest: String, got: String },
    #[error("remote {url}: object {digest} is missing, though an entry there names it")]
    MissingObject { url: String, digest: String },
    #[error("remote {url}: the manifest of entry {key} is not one this pipe can use ({why})")]
    BadManifest { url: String, key: String, why: String },
    #[error("this pipe was built without remote caches; build it with `cargo build --release --features remote`")]
    Unsupported,
    #[error(transparent)]
    Local(#[from] StoreError),
}

impl RemoteError {
    /// Whether the remote's bytes are at fault (damaged or missing), rather than the
    /// way to them: computing the entry here repairs it.
    pub fn is_damage(&self) -> bool {
        matches!(self, RemoteError::Corrupt { .. } | RemoteError::MissingObject { .. })
    }
}

/// What a run or a command moved between the caches.
#[derive(Debug, Default)]
pub struct Counters {
    pub objects_fetched: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub manifests_fetched: AtomicU64,
}

/// An open remote cache.
pub struct Remote {
    pub url: String,
    backend: Backend,
    pub counters: Counters,
}

impl Remote {
    /// Open the remote at `url` and check it answers (one listing): an unreachable
    /// server, refused credentials or a missing bucket is reported here, before
    /// anything else happens. A folder remote is created when `create` is set.
    pub fn open(url: &str, create: bool) -> Result<Remote, RemoteError> {
        let location = Location::parse(url)?;
        let backend = Backend::open(url, &location, create)?;
        Ok(Remote { url: url.to_string(), backend, counters: Counters::default() })
    }

    fn object_name(digest: &str) -> String {
        format!("objects/{}/{}", &digest[..2], &digest[2..])
    }

    fn entry_name(key: &str) -> String {
        format!("entries/{}/{key}.json", &key[..2])
    }

    fn count_fetched(&self, bytes: u64) {
        self.counters.objects_fetched.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The remote's manifest for `key`, checked to be for that key.
    pub fn manifest(&self, key: &str) -> Result<Option<crate::store::Manifest>, RemoteError> {
        let Some(bytes) = self.backend.get(&Self::entry_name(key))? else { return Ok(None) };
        self.counters.manifests_fetched.fetch_add(1, Ordering::Relaxed);
        let bad = |why: String| RemoteError::BadManifest { url: self.url.clone(), key: key.to_string(), why };
        let m: crate::store::Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if m.format != crate::store::MANIFEST_FORMAT {
            // Written by another version of pipe: not an entry this build can use.
            return Ok(None);
        }
        if m.key != key || m.key_struct.digest() != key {
            return Err(bad("it names another key".into()));
        }
        // Only digests and relative paths inside their own folder: a manifest from
        // elsewhere must not make pipe read or write outside the cache and workspace.
        let hex = |d: &str| d.len() == 64 && d.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let inside = |p: &str| !p.starts_with('/') && !p.split('/').any(|s| s == ".." || s == ".");
        for (name, content) in
            m.outputs.iter().map(|(n, o)| (n.as_str(), &o.content)).chain(m.log.iter().map(|l| ("log", l)))
        {
            if name.is_empty() || !inside(name) || !hex(&content.digest) {
                return Err(bad(format!("output `{name}` has a bad name or digest")));
            }
            if let Some(f) = content.files.iter().find(|f| !hex(&f.digest) || !inside(&f.path)) {
                return Err(bad(format!("output `{name}` names a bad file `{}`", f.path)));
            }
        }
        Ok(Some(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_with_its_settings_or_a_folder() {
        assert_eq!(
            Location::parse("s3://lab/pipe/cache/?endpoint=http://127.0.0.1:9000&region=eu-west-1").unwrap(),
            Location::S3 {
                bucket: "lab".into(),
                prefix: "pipe/cache".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
            }
        );
        assert_eq!(
            Location::parse("s3://lab").unwrap(),
            Location::S3 { bucket: "lab".into(), prefix: String::new(), endpoint: None, region: None }
        );
        assert_eq!(Location::parse("file:///mnt/c").unwrap(), Location::Folder { path: "/mnt/c".into() });
        assert!(matches!(Location::parse("rel/dir").unwrap(), Location::Folder { path } if path.is_absolute()));
        for bad in ["s3://", "s3://b?x=1", "gs://b/p", "file://rel", ""] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
