//! Artifact repository over `object_store`: confined paths, streamed put/get, listing, delete.
//!
//! [`ArtifactPath::parse`] is the only way user input becomes an object key. Bytes are streamed
//! both ways; a whole artifact is never held in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use plumb_core::{Error, Result};

mod local;
mod location;
mod path;

pub use location::Location;
pub use path::ArtifactPath;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the listed store's root.
    pub path: String,
    pub is_dir: bool,
    /// Files only.
    pub size: Option<u64>,
}

/// A streamed download.
pub struct Download {
    pub size: u64,
    pub stream: BoxStream<'static, std::result::Result<Bytes, std::io::Error>>,
}

/// An artifact root: where bytes live (a local folder now; S3 comes with scale-out).
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    inner: Arc<dyn ObjectStore>,
    /// A local store's folder and its name mapping, for the checks done on the file system.
    local: Option<local::Local>,
}

/// An `object_store` failure as the client may see it: named by the artifact path the client
/// gave, never by a server folder.
fn store_err(e: object_store::Error, path: &ArtifactPath) -> Error {
    match e {
        object_store::Error::NotFound { .. } => {
            Error::not_found(format!("No such artifact: '{path}'"))
        }
        // A remote store that cannot be reached right now is a retryable condition.
        object_store::Error::Generic {
            store: "S3",
            source,
        } => Error::unavailable(format!(
            "the artifact store is unavailable, try again: {source}"
        )),
        other => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&other);
            while let Some(c) = cause {
                if let Some(io) = c.downcast_ref::<std::io::Error>() {
                    return local::io_err(io, path);
                }
                cause = c.source();
            }
            tracing::error!(%path, error = %other, "artifact store error");
            Error::internal(format!("artifact store error at '{path}'"))
        }
    }
}

/// The S3 endpoint override, as MLflow users set it (`MLFLOW_S3_ENDPOINT_URL`), else the AWS
/// SDK's own variable.
fn s3_endpoint() -> Option<String> {
    [
        "MLFLOW_S3_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

impl ArtifactStore {
    /// A store rooted at a local folder (created if missing).
    pub fn local(root: impl Into<PathBuf>) -> Result<Self> {
        let root: PathBuf = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", root.display())))?;
        let canonical = root
            .canonicalize()
            .map_err(|e| Error::internal(format!("cannot resolve {}: {e}", root.display())))?;
        let fs = Arc::new(
            LocalFileSystem::new_with_prefix(&canonical)
                .map_err(|e| Error::internal(format!("cannot open {}: {e}", canonical.display())))?
                .with_automatic_cleanup(true),
        );
        Ok(Self {
            inner: fs.clone(),
            local: Some(local::Local::new(canonical, fs)),
        })
    }

    /// A store for a destination URI: a local path, a `file://` URI, or `s3://bucket/prefix`.
    pub fn from_uri(uri: &str) -> Result<Self> {
        if let Some(rest) = uri.strip_prefix("file://") {
            return Self::local(rest);
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            return Self::s3(rest);
        }
        if uri.contains("://") {
            return Err(Error::invalid(format!(
                "unsupported artifact destination '{uri}': use a local path, a file:// URI or \
                 s3://bucket/prefix"
            )));
        }
        Self::local(uri)
    }

    /// An S3 (or S3-compatible) bucket, optionally under a key prefix. Credentials and region
    /// come from the usual AWS environment variables; `MLFLOW_S3_ENDPOINT_URL` points it at
    /// another S3-protocol server (path-style requests, plain HTTP allowed for it).
    pub fn s3(bucket_and_prefix: &str) -> Result<Self> {
        let (bucket, prefix) = bucket_and_prefix
            .split_once('/')
            .unwrap_or((bucket_and_prefix, ""));
        if bucket.is_empty() {
            return Err(Error::invalid("the S3 destination names no bucket"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        if let Some(endpoint) = s3_endpoint() {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::invalid(format!("cannot use S3 bucket '{bucket}': {e}")))?;
        let prefix = prefix.trim_matches('/');
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self::from_object_store(inner))
    }

    /// A store that keeps nothing beyond the process (for tools that never touch artifacts).
    pub fn memory() -> Self {
        Self::from_object_store(Arc::new(object_store::memory::InMemory::new()))
    }

    /// A store over any `object_store` backend (tests use the in-memory one).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner, local: None }
    }

    /// The canonical folder of a local store (`None` for S3 and in-memory stores).
    pub fn local_root(&self) -> Option<&Path> {
        self.local.as_ref().map(local::Local::root)
    }

    fn key(path: &ArtifactPath) -> StorePath {
        StorePath::from_iter(path.segments())
    }

    /// Refuses paths that resolve, through a symlink, outside a local root.
    fn confine(&self, path: &ArtifactPath) -> Result<()> {
        match &self.local {
            Some(local) => local.confine(path),
            None => Ok(()),
        }
    }

    /// A file standing where `path` needs a directory is the caller's conflict (400), not a
    /// server failure: found before writing, on local stores.
    fn check_parents_are_dirs(&self, path: &ArtifactPath) -> Result<()> {
        match &self.local {
            Some(local) => local.check_parents_are_dirs(path),
            None => Ok(()),
        }
    }

    /// True when `path` is an existing directory (local stores) or a non-empty prefix.
    pub async fn is_dir(&self, path: &ArtifactPath) -> Result<bool> {
        if let Some(local) = &self.local {
            return Ok(local.disk(path)?.is_dir());
        }
        let listed = self
            .inner
            .list_with_delimiter(Some(&Self::key(path)))
            .await
            .map_err(|e| store_err(e, path))?;
        Ok(!listed.objects.is_empty() || !listed.common_prefixes.is_empty())
    }

    /// Writes a stream to `path`, replacing what was there; memory stays bounded by one chunk.
    pub async fn put<S, E>(&self, path: &ArtifactPath, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if path.is_root() {
            return Err(Error::invalid(
                "Invalid path: an artifact needs a file name",
            ));
        }
        self.confine(path)?;
        if self.is_dir(path).await? {
            return Err(Error::invalid(format!(
                "Artifact path refers to a directory, not a file: '{path}'"
            )));
        }
        self.check_parents_are_dirs(path)?;
        let upload = self
            .inner
            .put_multipart(&Self::key(path))
            .await
            .map_err(|e| self.upload_err(e, path))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 * 1024 * 1024);
        let mut total = 0u64;
        futures::pin_mut!(body);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(Error::invalid(format!("upload interrupted: {e}")));
                }
            };
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| self.upload_err(e, path))?;
            total += chunk.len() as u64;
            writer.write(&chunk);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.upload_err(e, path))?;
        Ok(total)
    }

    /// A failed upload. On a local store, a folder that changed under the upload (a delete of
    /// it raced the upload) is the client's conflict (400), to be uploaded again; the server's
    /// own file-system failures stay 5xx.
    fn upload_err(&self, e: object_store::Error, path: &ArtifactPath) -> Error {
        if self.local.is_none() || !local::is_folder_race(&e) {
            return store_err(e, path);
        }
        tracing::debug!(%path, error = %e, "upload interrupted by a concurrent change");
        Error::invalid(format!(
            "The upload of '{path}' did not complete: its folder changed meanwhile (deleted \
             while uploading?); upload it again"
        ))
    }

    /// Opens `path` for a streamed read.
    pub async fn get(&self, path: &ArtifactPath) -> Result<Download> {
        self.confine(path)?;
        if path.is_root() || self.is_dir(path).await? {
            return Err(Error::invalid(format!(
                "Artifact path refers to a directory, not a file: '{path}'"
            )));
        }
        let got = self
            .inner
            .get(&Self::key(path))
            .await
            .map_err(|e| store_err(e, path))?;
        let size = got.meta.size;
        let stream = got.into_stream().map_err(std::io::Error::other).boxed();
        Ok(Download { size, stream })
    }

    /// Lists the direct children of `dir` (files with sizes, then directories), sorted by path.
    /// A missing directory, or a file, lists as empty. On a local store a symlink is listed
    /// only when it resolves inside the root (a loop or a dangling link is left out).
    pub async fn list(&self, dir: &ArtifactPath) -> Result<Vec<Entry>> {
        self.confine(dir)?;
        if let Some(local) = self.local.clone() {
            let dir = dir.clone();
            return tokio::task::spawn_blocking(move || local.list(&dir))
                .await
                .map_err(|e| Error::internal(format!("listing task failed: {e}")))?;
        }
        let prefix = Self::key(dir);
        let listed = self
            .inner
            .list_with_delimiter(if dir.is_root() { None } else { Some(&prefix) })
            .await
            .map_err(|e| store_err(e, dir))?;
        let mut out: Vec<Entry> = listed
            .objects
            .into_iter()
            .filter(|o| o.location != prefix)
            .map(|o| Entry {
                path: o.location.to_string(),
                is_dir: false,
                size: Some(o.size),
            })
            .chain(listed.common_prefixes.into_iter().map(|p| Entry {
                path: p.to_string(),
                is_dir: true,
                size: None,
            }))
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Deletes a file, or a directory recursively. On a local store no symlink is followed: a
    /// link on the way to `path` refuses the delete, a link inside it is removed itself, never
    /// what it points to.
    pub async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        if let Some(local) = self.local.clone() {
            let path = path.clone();
            return tokio::task::spawn_blocking(move || local.delete(&path))
                .await
                .map_err(|e| Error::internal(format!("delete task failed: {e}")))?;
        }
        let key = Self::key(path);
        let mut found = false;
        let mut listing = self
            .inner
            .list(if path.is_root() { None } else { Some(&key) });
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| store_err(e, path))?;
            self.inner
                .delete(&meta.location)
                .await
                .map_err(|e| store_err(e, path))?;
            found = true;
        }
        if !found && !path.is_root() {
            match self.inner.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err(e, path)),
            }
        }
        Ok(())
    }

    /// Removes the staging files an upload interrupted by `kill -9` left in a local store
    /// (`<name>#<n>`: `#` is refused in artifact paths, so no artifact has that shape). Answers
    /// how many were removed. Call at start, before any upload.
    pub fn remove_stale_uploads(&self) -> usize {
        match &self.local {
            Some(local) => local::remove_staging(local.root()),
            None => 0,
        }
    }
}
