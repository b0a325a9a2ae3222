//! The calls a remote cache makes, blocking, on `object_store` (with the `remote`
//! feature; without it, opening a remote says how to get it).

#[cfg(feature = "remote")]
pub use real::Backend;
#[cfg(not(feature = "remote"))]
pub use stub::Backend;

#[cfg(feature = "remote")]
mod real {
    use std::io::Write as _;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::StreamExt as _;
    use object_store::aws::AmazonS3Builder;
    use object_store::local::LocalFileSystem;
    use object_store::path::Path as ObjectPath;
    use object_store::{ClientOptions, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, RetryConfig};

    use crate::remote::{Location, RemoteError};

    pub struct Backend {
        url: String,
        store: Arc<dyn ObjectStore>,
        prefix: String,
        rt: tokio::runtime::Runtime,
    }

    impl Backend {
        pub fn open(url: &str, location: &Location, create: bool) -> Result<Backend, RemoteError> {
            let fail = |what: &str, e: Box<dyn std::error::Error + Send + Sync>| RemoteError::Request {
                url: url.to_string(),
                what: what.to_string(),
                source: e,
            };
            let mut no_keys = false;
            let (store, prefix): (Arc<dyn ObjectStore>, String) = match location {
                Location::S3 { bucket, prefix, endpoint, region } => {
                    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                    let keyed;
                    (b, keyed) = with_profile(b);
                    if !keyed {
                        no_keys = true;
                    }
                    if let Some(r) = region {
                        b = b.with_region(r);
                    }
                    let mut client = ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(300));
                    if let Some(e) = endpoint {
                        b = b.with_endpoint(e);
                        client = client.with_allow_http(e.starts_with("http://"));
                    }
                    // Fail in seconds, not minutes, when the server is down.
                    let retry = RetryConfig {
                        max_retries: 2,
                        retry_timeout: Duration::from_secs(10),
                        ..RetryConfig::default()
                    };
                    let store = b
                        .with_retry(retry)
                        .with_client_options(client)
                        .build()
                        .map_err(|e| fail("cannot configure the S3 client", Box::new(e)))?;
                    (Arc::new(store), prefix.clone())
                }
                Location::Folder { path } => {
                    if create {
                        std::fs::create_dir_all(path)
                            .map_err(|e| fail("cannot create the remote folder", Box::new(e)))?;
                    } else if !path.exists() {
                        let why = "no remote cache there yet (`pipe push` creates it)";
                        return Err(fail("cannot open the remote folder", why.into()));
                    }
                    let store = LocalFileSystem::new_with_prefix(path)
                        .map_err(|e| fail("cannot open the remote folder", Box::new(e)))?;
                    (Arc::new(store), String::new())
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| fail("cannot start the network runtime", Box::new(e)))?;
            let backend = Backend { url: url.to_string(), store, prefix, rt };
            // One listing: the server answers, the credentials are accepted, the bucket
            // exists.
            let probe = backend.path("entries/");
            backend.rt.block_on(backend.store.list_with_delimiter(Some(&probe))).map_err(|e| {
                let what = if no_keys {
                    "cannot list the remote cache (no AWS credentials: AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY are unset and ~/.aws/credentials has none, so the \
                         machine's instance credentials were tried)"
                } else {
                    "cannot list the remote cache"
                };
                backend.error(what, e)
            })?;
            Ok(backend)
        }

        fn path(&self, name: &str) -> ObjectPath {
            if self.prefix.is_empty() {
                ObjectPath::from(name)
            } else {
                ObjectPath::from(format!("{}/{name}", self.prefix))
            }
        }

        fn error(&self, what: impl Into<String>, e: object_store::Error) -> RemoteError {
            let mut what = what.into();
            if let Some(why) = reason(&crate::causes::chain_text(&e)) {
                what = format!("{what}: {why}");
            }
            RemoteError::Request { url: self.url.clone(), what, source: Box::new(e) }
        }

        /// The bytes of `name`, `None` when the remote has no such object.
        pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, RemoteError> {
            let path = self.path(name);
            let got = self.rt.block_on(async {
                let r = self.store.get(&path).await?;
                r.bytes().await
            });
            match got {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.error(format!("cannot read {name}"), e)),
            }
        }

        /// Stream `name` into the file `dest` while hashing it: its blake3 digest and
        /// size, or `None` when the remote has no such object.
        pub fn get_to_file(&self, name: &str, dest: &Path) -> Result<Option<(String, u64)>, RemoteError> {
            let path = self.path(name);
            let io = |e: std::io::Error| RemoteError::Request {
                url: self.url.clone(),
                what: format!("cannot write {} while fetching {name}", dest.display()),
                source: Box::new(e),
            };
            let mut file = std::fs::File::create(dest).map_err(io)?;
            let fetched = self.rt.block_on(async {
                let mut stream = self.store.get(&path).await?.into_stream();
                let mut hasher = blake3::Hasher::new();
                let mut size = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    file.write_all(&chunk)
                        .map_err(|e| object_store::Error::Generic { store: "local", source: Box::new(e) })?;
                }
                Ok::<_, object_store::Error>((hasher.finalize().to_hex().to_string(), size))
            });
            match fetched {
                Ok(d) => {
                    file.sync_all().map_err(io)?;
                    Ok(Some(d))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.error(format!("cannot read {name}"), e)),
            }
        }

        /// Whether the remote has `name`.
        pub fn exists(&self, name: &str) -> Result<bool, RemoteError> {
            match self.rt.block_on(self.store.head(&self.path(name))) {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.error(format!("cannot look up {name}"), e)),
            }
        }

        /// Write `name` unless it exists (where the store can tell in the same request;
        /// elsewhere it is written again, with the same bytes).
        pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
            let path = self.path(name);
            let payload = PutPayload::from(bytes);
            let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            let done = self.rt.block_on(self.store.put_opts(&path, payload.clone(), create));
            let done = match done {
                Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }) => {
                    self.rt.block_on(self.store.put(&path, payload)).map(drop)
                }
                other => other.map(drop),
            };
            match done {
                Ok(()) | Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                    Ok(())
                }
                Err(e) => Err(self.error(format!("cannot write {name}"), e)),
            }
        }

        /// The names under `dir/` (relative to the remote's root), with their sizes and
        /// how long ago each was written. The root is taken off by path segments, not
        /// by length: a prefix may be stored percent-encoded.
        pub fn list(&self, dir: &str) -> Result<Vec<(String, u64, Option<Duration>)>, RemoteError> {
            let path = self.path(dir);
            let root = ObjectPath::from(self.prefix.as_str());
            let listed: Result<Vec<_>, _> =
                self.rt.block_on(self.store.list(Some(&path)).collect::<Vec<_>>()).into_iter().collect();
            let listed = listed.map_err(|e| self.error(format!("cannot list {dir}"), e))?;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            let age = |t: i64| u64::try_from(now - t).ok().map(Duration::from_secs);
            Ok(listed
                .into_iter()
                .filter_map(|m| {
                    let parts: Vec<String> =
                        m.location.prefix_match(&root)?.map(|part| part.as_ref().to_string()).collect();
                    Some((parts.join("/"), m.size, age(m.last_modified.timestamp())))
                })
                .collect())
        }

        pub fn delete(&self, name: &str) -> Result<(), RemoteError> {
            match self.rt.block_on(self.store.delete(&self.path(name))) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.error(format!("cannot delete {name}"), e)),
            }
        }
    }

    /// What an S3 error means, in words, from the server's error code (or the
    /// connection's failure), when it is one a user can act on.
    pub(super) fn reason(text: &str) -> Option<String> {
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let start = text.find(&open)? + open.len();
            let end = text[start..].find(&format!("</{name}>"))? + start;
            Some(text[start..end].to_string())
        };
        if let Some(code) = tag("Code") {
            let said = tag("Message").unwrap_or_default();
            return Some(match code.as_str() {
                "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidClientTokenId" | "ExpiredToken" => {
                    format!("the server refused the credentials ({code}: {said})")
                }
                "NoSuchBucket" => format!("the bucket does not exist ({code})"),
                "AccessDenied" => format!("access denied ({code}: {said})"),
                _ => format!("the server said {code}: {said}"),
            });
        }
        if text.contains("Connection refused") || text.contains("tcp connect error") || text.contains("dns error") {
            return Some("cannot connect to the server".into());
        }
        None
    }

    /// Keys from the AWS shared credentials file (profile `AWS_PROFILE`, else
    /// `default`) and the region from the AWS config file, where the environment does
    /// not set them, as the AWS command-line tools do.
    /// Also says whether any keys were found.
    fn with_profile(mut b: AmazonS3Builder) -> (AmazonS3Builder, bool) {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = var("HOME").unwrap_or_default();
        let mut keyed = var("AWS_ACCESS_KEY_ID").is_some();
        if !keyed {
            let file = var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| format!("{home}/.aws/credentials"));
            let keys = ini_section(&std::fs::read_to_string(file).unwrap_or_default(), &profile);
            for (name, value) in keys {
                b = match name.as_str() {
                    "aws_access_key_id" => {
                        keyed = true;
                        b.with_access_key_id(value)
                    }
                    "aws_secret_access_key" => b.with_secret_access_key(value),
                    "aws_session_token" => b.with_token(value),
                    _ => b,
                };
            }
        }
        if var("AWS_REGION").is_none() && var("AWS_DEFAULT_REGION").is_none() {
            let file = var("AWS_CONFIG_FILE").unwrap_or_else(|| format!("{home}/.aws/config"));
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let section = if profile == "default" { profile.clone() } else { format!("profile {profile}") };
            if let Some((_, region)) = ini_section(&text, &section).into_iter().find(|(k, _)| k == "region") {
                b = b.with_region(region);
            }
        }
        (b, keyed)
    }

    /// The `key = value` lines of `[section]` in an INI file.
    pub(super) fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
        let mut inside = false;
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inside = name.trim() == section;
            } else if inside && let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn server_errors_are_said_in_words() {
            let xml = "403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message></Error>";
            assert_eq!(
                super::reason(xml).unwrap(),
                "the server refused the credentials (SignatureDoesNotMatch: bad sig)"
            );
            assert_eq!(super::reason("<Code>NoSuchBucket</Code>").unwrap(), "the bucket does not exist (NoSuchBucket)");
            assert_eq!(super::reason("tcp connect error: Connection refused").unwrap(), "cannot connect to the server");
            assert_eq!(super::reason("something else"), None);
        }

        #[test]
        fn profiles_are_read_from_their_section() {
            let text =
                "[default]\naws_access_key_id = A\n\n[profile lab]\nregion = eu-west-1\n[lab]\naws_access_key_id=B\n";
            assert_eq!(super::ini_section(text, "default"), [("aws_access_key_id".to_string(), "A".to_string())]);
            assert_eq!(super::ini_section(text, "lab"), [("aws_access_key_id".to_string(), "B".to_string())]);
            assert_eq!(super::ini_section(text, "profile lab")[0].1, "eu-west-1");
        }
    }
}

#[cfg(not(feature = "remote"))]
mod stub {
    use std::path::Path;

    use crate::remote::{Location, RemoteError};

    pub struct Backend;

    impl Backend {
        pub fn open(_: &str, _: &Location, _: bool) -> Result<Backend, RemoteError> {
            Err(RemoteError::Unsupported)
        }

        pub fn get(&self, _: &str) -> Result<Option<Vec<u8>>, RemoteError> {
            Err(RemoteError::Unsupported)
        }

        pub fn get_to_file(&self, _: &str, _: &Path) -> Result<Option<(String, u64)>, RemoteError> {
            Err(RemoteError::Unsupported)
        }

        pub fn exists(&self, _: &str) -> Result<bool, RemoteError> {
            Err(RemoteError::Unsupported)
        }

        pub fn put(&self, _: &str, _: Vec<u8>) -> Result<(), RemoteError> {
            Err(RemoteError::Unsupported)
        }

        pub fn list(&self, _: &str) -> Result<Vec<(String, u64, Option<std::time::Duration>)>, RemoteError> {
            Err(RemoteError::Unsupported)
        }

        pub fn delete(&self, _: &str) -> Result<(), RemoteError> {
            Err(RemoteError::Unsupported)
        }
    }
}
