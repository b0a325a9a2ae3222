//! Dataset files fetched from a URL and checked against a published checksum, kept in
//! the cache's `downloads/` folder so that no run downloads the same files twice.
//!
//! A download set (one or more files) lands in `downloads/<id>/`, where `<id>` is a
//! hash of the files' names and checksums, never of their URLs: a mirror serving the
//! same bytes is the same download. The folder is built under a temporary name and
//! renamed into place once every file is there, verified and unpacked, so a folder
//! with the final name is always complete; a killed download leaves only a `.part-*`
//! folder, which the next attempt ignores and `pipe cache gc` removes. Tar archives
//! (`.tar`, `.tar.gz`, `.tgz`) are unpacked into the folder; other files (IDX `.gz`
//! files among them) are kept as they are, for the loaders to read.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A published checksum of one file, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    Sha256(String),
    Md5(String),
}

impl Checksum {
    /// `hex` for the algorithm `algo` (`sha256` or `md5`), or why it is not one.
    pub fn parse(algo: &str, hex: &str) -> Result<Checksum, String> {
        let hex = hex.trim().to_ascii_lowercase();
        let (len, article, make): (usize, &str, fn(String) -> Checksum) = match algo {
            "sha256" => (64, "a", Checksum::Sha256),
            "md5" => (32, "an", Checksum::Md5),
            _ => return Err(format!("unknown checksum `{algo}`; use sha256 or md5")),
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{article} {algo} checksum is {len} hexadecimal digits, not `{hex}`"));
        }
        Ok(make(hex))
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Md5(_) => "md5",
        }
    }

    pub fn hex(&self) -> &str {
        match self {
            Checksum::Sha256(h) | Checksum::Md5(h) => h,
        }
    }

    fn hasher(&self) -> Hasher {
        match self {
            Checksum::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Checksum::Md5(_) => Hasher::Md5(Md5::new()),
        }
    }
}

enum Hasher {
    Sha256(Sha256),
    Md5(Md5),
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
        }
    }

    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `http://`, `https://` or `file://`.
    pub url: String,
    pub checksum: Checksum,
}

impl Remote {
    /// The file name the download is kept under: the URL's last path segment.
    pub fn file_name(&self) -> String {
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.is_empty() || last == "." || last == ".." { "download".to_string() } else { last.to_string() }
    }

    fn is_archive(&self) -> bool {
        let name = self.file_name();
        [".tar", ".tar.gz", ".tgz"].iter().any(|ext| name.ends_with(ext))
    }
}

/// The folder name of a download set: the same files with the same checksums, in any
/// order and from any mirror, share it.
pub fn download_id(remotes: &[Remote]) -> String {
    let mut parts: Vec<String> =
        remotes.iter().map(|r| format!("{}\n{}:{}", r.file_name(), r.checksum.algorithm(), r.checksum.hex())).collect();
    parts.sort();
    blake3::hash(parts.join("\n").as_bytes()).to_hex()[..32].to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot download {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error(
        "{url}: {algorithm} checksum is {found}, expected {expected}; the file changed or the checksum is wrong, and nothing was kept"
    )]
    Checksum { url: String, algorithm: &'static str, expected: String, found: String },
    #[error("{url}: cannot unpack the archive: {source}")]
    Unpack {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("two files of one download are both named {name}")]
    SameName { name: String },
    #[error("cancelled")]
    Cancelled,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io { path: path.to_path_buf(), source }
}

/// The folder holding `remotes` under `downloads`: returned at once when an earlier
/// run completed it, otherwise fetched, verified and unpacked first. `progress` gets a
/// short line now and then; `cancel` stops the download between chunks.
pub fn fetch(
    remotes: &[Remote],
    downloads: &Path,
    progress: &dyn Fn(String),
    cancel: &AtomicBool,
) -> Result<PathBuf, DownloadError> {
    let id = download_id(remotes);
    let dest = downloads.join(&id);
    if dest.is_dir() {
        return Ok(dest);
    }
    fs::create_dir_all(downloads).map_err(io_at(downloads))?;
    // Two runs that need the same files: one downloads, the other waits and finds them.
    let lock_path = downloads.join(format!(".{id}.lock"));
    let _lock = crate::durable::lock(&lock_path).map_err(io_at(&lock_path))?;
    if dest.is_dir() {
        return Ok(dest);
    }
    let mut names: Vec<String> = remotes.iter().map(Remote::file_name).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(DownloadError::SameName { name: w[0].clone() });
    }
    let part =
        tempfile::Builder::new().prefix(&format!(".part-{id}-")).tempdir_in(downloads).map_err(io_at(downloads))?;
    let mut sources = Vec::new();
    for remote in remotes {
        let name = remote.file_name();
        let file = part.path().join(&name);
        let bytes = fetch_one(remote, &file, progress, cancel)?;
        if remote.is_archive() {
            progress(format!("unpacking {name}"));
            unpack(&file, part.path()).map_err(|source| DownloadError::Unpack { url: remote.url.clone(), source })?;
            fs::remove_file(&file).map_err(io_at(&file))?;
        }
        sources.push(serde_json::json!({
            "url": remote.url, "file": name, remote.checksum.algorithm(): remote.checksum.hex(),
            "bytes": bytes, "unpacked": remote.is_archive(),
        }));
    }
    let record = part.path().join(SOURCES_FILE);
    let text = serde_json::to_string_pretty(&sources).expect("JSON values serialize") + "\n";
    fs::write(&record, text).map_err(io_at(&record))?;
    let done = part.keep();
    // A temporary folder is private; a download is for everyone sharing the cache.
    crate::durable::set_mode(&done, 0o777).map_err(io_at(&done))?;
    fs::rename(&done, &dest).map_err(io_at(&dest))?;
    File::open(downloads).and_then(|d| d.sync_all()).map_err(io_at(downloads))?;
    Ok(dest)
}

/// Written beside the files: where each came from and its checksum, for people.
pub const SOURCES_FILE: &str = "SOURCES.json";
/// Streams `remote` into `file`, hashing as it goes; returns the byte count once the
/// checksum matches, and removes the file when it does not.
fn fetch_one(
    remote: &Remote,
    file: &Path,
    progress: &dyn Fn(String),
    cancel: &AtomicBool,
) -> Result<u64, DownloadError> {
    let url = &remote.url;
    let (mut body, total) = open(url)?;
    let name = remote.file_name();
    let mut out = File::create(file).map_err(io_at(file))?;
    let mut hasher = remote.checksum.hasher();
    let mut buf = vec![0u8; 1 << 16];
    let (mut done, mut shown) = (0u64, Instant::now());
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(DownloadError::Cancelled);
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DownloadError::Fetch { url: url.clone(), reason: e.to_string() }),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_at(file))?;
        done += n as u64;
        if shown.elapsed() > Duration::from_millis(250) {
            shown = Instant::now();
            progress(match total {
                Some(t) => format!("downloading {name} {} / {}", mib(done), mib(t)),
                None => format!("downloading {name} {}", mib(done)),
            });
        }
    }
    if let Some(t) = total.filter(|&t| t != done) {
        return Err(DownloadError::Fetch { url: url.clone(), reason: format!("got {done} of {t} bytes") });
    }
    let found = hasher.hex();
    if found != remote.checksum.hex() {
        drop(out);
        let _ = fs::remove_file(file);
        return Err(DownloadError::Checksum {
            url: url.clone(),
            algorithm: remote.checksum.algorithm(),
            expected: remote.checksum.hex().to_string(),
            found,
        });
    }
    out.sync_all().map_err(io_at(file))?;
    Ok(done)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A reader over the body of `url` and its length when known.
fn open(url: &str) -> Result<(Box<dyn Read>, Option<u64>), DownloadError> {
    let fail = |reason: String| DownloadError::Fetch { url: url.to_string(), reason };
    if let Some(path) = url.strip_prefix("file://") {
        let file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let len = file.metadata().ok().map(|m| m.len());
        return Ok((Box::new(file), len));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail("only http://, https:// and file:// URLs are supported".to_string()));
    }
    http_get(url).map_err(fail)
}

#[cfg(feature = "download")]
fn http_get(url: &str) -> Result<(Box<dyn Read>, Option<u64>), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(None)
        .user_agent(concat!("pipe/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        e => format!("{e} (no internet here? download the file by hand and give its folder as `path:`)"),
    })?;
    let len = response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    Ok((Box::new(response.into_body().into_reader()), len))
}

#[cfg(not(feature = "download"))]
fn http_get(_url: &str) -> Result<(Box<dyn Read>, Option<u64>), String> {
    Err("this build of pipe has no HTTP support (cargo feature `download`); \
         download the file by hand and give its folder as `path:`"
        .to_string())
}

/// Unpacks the tar (optionally gzipped) `archive` into `into`; entries that would land
/// outside `into` are refused by the tar reader.
fn unpack(archive: &Path, into: &Path) -> io::Result<()> {
    let mut file = File::open(archive)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let file = File::open(archive)?;
    let reader: Box<dyn Read> =
        if gz { Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file))) } else { Box::new(file) };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(false);
    tar.set_overwrite(false);
    tar.unpack(into)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A one-thread HTTP/1.1 server on 127.0.0.1 serving `files` by path (`/name`) and
    /// 404 for anything else; counts the requests it answered.
    pub(crate) struct Server {
        pub base: String,
        pub hits: Arc<AtomicUsize>,
    }

    pub(crate) fn serve(files: Vec<(String, Vec<u8>)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let target = line.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or_default().trim_start_matches('/').to_string();
                let reply = match files.iter().find(|(name, _)| *name == path) {
                    Some((_, body)) => {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                                .into_bytes();
                        r.extend_from_slice(body);
                        r
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&reply);
            }
        });
        Server { base, hits }
    }

    pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn quiet(_: String) {}

    #[test]
    #[cfg_attr(not(feature = "download"), ignore = "HTTP needs the `download` feature")]
    fn downloads_verifies_unpacks_and_reuses() {
        let archive = tar_gz(&[("top/a.bin", b"alpha"), ("top/sub/b.bin", b"beta")]);
        let plain = b"plain bytes".to_vec();
        let server = serve(vec![("d/data.tar.gz".into(), archive.clone()), ("x.gz".into(), plain.clone())]);
        let cache = tempfile::tempdir().unwrap();
        let downloads = cache.path().join("downloads");
        let remotes = vec![
            Remote {
                url: format!("{}/d/data.tar.gz?raw=1", server.base),
                checksum: Checksum::Sha256(sha256_hex(&archive)),
            },
            Remote {
                url: format!("{}/x.gz", server.base),
                checksum: Checksum::Md5(Md5::digest(&plain).iter().map(|b| format!("{b:02x}")).collect()),
            },
        ];
        let cancel = AtomicBool::new(false);
        let dir = fetch(&remotes, &downloads, &quiet, &cancel).unwrap();
        assert_eq!(fs::read(dir.join("top/a.bin")).unwrap(), b"alpha");
        assert_eq!(fs::read(dir.join("top/sub/b.bin")).unwrap(), b"beta");
        assert_eq!(fs::read(dir.join("x.gz")).unwrap(), plain);
        assert!(!dir.join("data.tar.gz").exists(), "the archive is unpacked, not kept");
        let sources: serde_json::Value = serde_json::from_slice(&fs::read(dir.join(SOURCES_FILE)).unwrap()).unwrap();
        assert_eq!(sources[1]["bytes"], plain.len());
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);

        // Same files in another order, from another host: no request at all.
        let mirrored: Vec<Remote> = remotes
            .iter()
            .rev()
            .map(|r| Remote { url: r.url.replace("127.0.0.1", "mirror.invalid"), ..r.clone() })
            .collect();
        assert_eq!(fetch(&mirrored, &downloads, &quiet, &cancel).unwrap(), dir);
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    #[cfg_attr(not(feature = "download"), ignore = "HTTP needs the `download` feature")]
    fn a_wrong_checksum_keeps_nothing() {
        let server = serve(vec![("f.bin".into(), b"these bytes".to_vec())]);
        let cache = tempfile::tempdir().unwrap();
        let downloads = cache.path().join("downloads");
        let expected = sha256_hex(b"other bytes");
        let remotes =
            vec![Remote { url: format!("{}/f.bin", server.base), checksum: Checksum::Sha256(expected.clone()) }];
        let e = fetch(&remotes, &downloads, &quiet, &AtomicBool::new(false)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/f.bin: sha256 checksum is ") && msg.contains(&format!("expected {expected}")), "{msg}");
        let left: Vec<_> =
            fs::read_dir(&downloads).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert!(left.iter().all(|n| n.ends_with(".lock")), "{left:?}");
    }

    #[test]
    #[cfg_attr(not(feature = "download"), ignore = "HTTP needs the `download` feature")]
    fn fetch_errors_name_the_url() {
        let server = serve(Vec::new());
        let cache = tempfile::tempdir().unwrap();
        let remote = |url: String| vec![Remote { url, checksum: Checksum::Md5("0".repeat(32)) }];
        let cancel = AtomicBool::new(false);
        let e = fetch(&remote(format!("{}/missing.tar", server.base)), cache.path(), &quiet, &cancel).unwrap_err();
        assert_eq!(e.to_string(), format!("cannot download {}/missing.tar: the server answered HTTP 404", server.base));
        let e = fetch(&remote("ftp://example.org/x".into()), cache.path(), &quiet, &cancel).unwrap_err();
        assert!(e.to_string().contains("only http://, https:// and file:// URLs"), "{e}");
        cancel.store(true, Ordering::SeqCst);
        let local = cache.path().join("local.bin");
        fs::write(&local, b"x").unwrap();
        let e = fetch(&remote(format!("file://{}", local.display())), cache.path(), &quiet, &cancel).unwrap_err();
        assert!(matches!(e, DownloadError::Cancelled));
    }

    #[test]
    fn checksums_and_names() {
        assert_eq!(
            Checksum::parse("md5", " C32A1D4AB5D03F1284B67883E8D87530").unwrap().hex(),
            "c32a1d4ab5d03f1284b67883e8d87530"
        );
        assert_eq!(
            Checksum::parse("sha256", "abc").unwrap_err(),
            "a sha256 checksum is 64 hexadecimal digits, not `abc`"
        );
        assert!(Checksum::parse("sha1", "00").is_err());
        let r = |url: &str| Remote { url: url.into(), checksum: Checksum::Md5("0".repeat(32)) };
        assert_eq!(r("https://h/x/cifar-10-binary.tar.gz").file_name(), "cifar-10-binary.tar.gz");
        assert_eq!(r("https://h/").file_name(), "download");
        assert!(r("https://h/a.tgz").is_archive() && !r("https://h/a.gz").is_archive());
        assert_ne!(download_id(&[r("https://h/a")]), download_id(&[r("https://h/b")]));
        assert_eq!(download_id(&[r("https://h/a")]), download_id(&[r("file:///mirror/a")]));
    }
}
