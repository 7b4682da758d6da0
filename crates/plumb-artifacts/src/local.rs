//! Local-folder operations done by hand rather than through `object_store`, so that no symlink
//! is followed out of (or around inside) the root: listing, recursive delete, staging clean-up,
//! and the mapping of file-system errors to client-facing ones.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use plumb_core::{Error, Result};

use crate::{ArtifactPath, Entry};

/// A file-system failure under `path`, named by the artifact path (never the server folder).
/// Conflicts the client caused (a file where a folder is needed, a folder changing while it is
/// deleted, a name the file system refuses) are 400s; the rest are the server's.
pub(crate) fn io_err(e: &io::Error, path: &ArtifactPath) -> Error {
    if is_loop(e) {
        return Error::invalid(format!(
            "Cannot use artifact path '{path}': too many levels of symbolic links"
        ));
    }
    match e.kind() {
        ErrorKind::NotFound => Error::not_found(format!("No such artifact: '{path}'")),
        ErrorKind::IsADirectory
        | ErrorKind::NotADirectory
        | ErrorKind::DirectoryNotEmpty
        | ErrorKind::AlreadyExists
        | ErrorKind::InvalidFilename
        | ErrorKind::InvalidInput => {
            Error::invalid(format!("Cannot use artifact path '{path}': {}", e.kind()))
        }
        _ => {
            tracing::error!(%path, error = %e, "artifact file-system error");
            Error::internal(format!("artifact store error at '{path}': {}", e.kind()))
        }
    }
}

/// True when `e` says the upload's folder changed under it (a delete raced it: a missing or
/// replaced folder, or `object_store` finding its staged file gone), not a failure of the
/// server's own file system (full disk, permissions, I/O errors), which stays a 5xx.
pub(crate) fn is_folder_race(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::NotFound
                    | ErrorKind::NotADirectory
                    | ErrorKind::IsADirectory
                    | ErrorKind::DirectoryNotEmpty
            );
        }
        cause = c.source();
    }
    true
}

/// ELOOP: a symlink loop (`ErrorKind::FilesystemLoop` is not stable).
fn is_loop(e: &io::Error) -> bool {
    const ELOOP: i32 = 40; // Linux
    cfg!(target_os = "linux") && e.raw_os_error() == Some(ELOOP)
}

/// A local store's folder, and the mapping from artifact paths to file names that
/// `object_store` uses for it (it percent-encodes some characters in names on disk), so that
/// every check here looks at the very files `object_store` reads and writes.
#[derive(Clone, Debug)]
pub(crate) struct Local {
    root: PathBuf,
    fs: Arc<LocalFileSystem>,
}

impl Local {
    pub(crate) fn new(root: PathBuf, fs: Arc<LocalFileSystem>) -> Self {
        Self { root, fs }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The file-system path of the first `n` segments of `path` (the root for none).
    fn disk_prefix(&self, path: &ArtifactPath, n: usize) -> Result<PathBuf> {
        if n == 0 {
            return Ok(self.root.clone());
        }
        let key = StorePath::from_iter(path.segments().take(n));
        self.fs
            .path_to_filesystem(&key)
            .map_err(|_| Error::invalid(format!("Invalid path '{path}'")))
    }

    /// The file-system path of `path`.
    pub(crate) fn disk(&self, path: &ArtifactPath) -> Result<PathBuf> {
        self.disk_prefix(path, path.segments().count())
    }

    /// Refuses paths that resolve, through a symlink, outside the root.
    pub(crate) fn confine(&self, path: &ArtifactPath) -> Result<()> {
        for n in 1..=path.segments().count() {
            let probe = self.disk_prefix(path, n)?;
            match fs::symlink_metadata(&probe) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = probe
                        .canonicalize()
                        .map_err(|_| Error::invalid("Invalid path"))?;
                    if !target.starts_with(&self.root) {
                        return Err(Error::invalid("Invalid path"));
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// A file standing where `path` needs a folder is the caller's conflict (400).
    pub(crate) fn check_parents_are_dirs(&self, path: &ArtifactPath) -> Result<()> {
        let segments: Vec<&str> = path.segments().collect();
        for n in 1..segments.len() {
            match fs::metadata(self.disk_prefix(path, n)?) {
                Ok(meta) if !meta.is_dir() => {
                    return Err(Error::invalid(format!(
                        "Cannot write '{path}': '{}' is an existing file, not a directory",
                        segments[n - 1]
                    )))
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// The file-system path of `path`, checked segment by segment: `Ok(None)` when something
    /// on the way is missing or is a file, an error when a segment before the last is a symlink.
    fn walk_to(&self, path: &ArtifactPath) -> Result<Option<PathBuf>> {
        let segs: Vec<&str> = path.segments().collect();
        let mut probe = self.root.clone();
        for (i, seg) in segs.iter().enumerate() {
            probe = self.disk_prefix(path, i + 1)?;
            let last = i + 1 == segs.len();
            match fs::symlink_metadata(&probe) {
                Ok(m) if m.file_type().is_symlink() && !last => {
                    return Err(Error::invalid(format!(
                        "Invalid path '{path}': '{seg}' is a symbolic link"
                    )))
                }
                Ok(m) if !last && !m.is_dir() => return Ok(None),
                Ok(_) => {}
                Err(e)
                    if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(io_err(&e, path)),
            }
        }
        Ok(Some(probe))
    }

    /// Deletes `path` without following any symlink (see `ArtifactStore::delete`). A folder
    /// that changes while it is removed (an upload racing the delete) is retried, then a 400.
    pub(crate) fn delete(&self, path: &ArtifactPath) -> Result<()> {
        if path.is_root() {
            return Err(Error::invalid(
                "Invalid path: the artifact root cannot be deleted",
            ));
        }
        let Some(target) = self.walk_to(path)? else {
            return Ok(());
        };
        let meta = match fs::symlink_metadata(&target) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&e, path)),
        };
        if !meta.is_dir() {
            // A file, or a symlink: the link itself goes, never its target.
            return match fs::remove_file(&target) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(&e, path)),
            };
        }
        let mut last = None;
        for _ in 0..3 {
            // std's remove_dir_all removes symlinks inside the tree, never what they point to.
            match fs::remove_dir_all(&target) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::other("delete failed"));
        Err(match e.kind() {
            ErrorKind::DirectoryNotEmpty | ErrorKind::IsADirectory | ErrorKind::NotADirectory => {
                Error::invalid(format!(
                    "Cannot delete '{path}': it changed while it was being deleted (an upload \
                     into it?); try again"
                ))
            }
            _ => io_err(&e, path),
        })
    }

    /// Lists the children of `dir` (see `ArtifactStore::list`), named as `object_store` names
    /// them.
    pub(crate) fn list(&self, dir: &ArtifactPath) -> Result<Vec<Entry>> {
        let folder = if dir.is_root() {
            self.root.clone()
        } else {
            match self.walk_to(dir)? {
                Some(f) => f,
                None => return Ok(Vec::new()),
            }
        };
        let reader = match fs::read_dir(&folder) {
            Ok(r) => r,
            Err(e)
                if is_loop(&e)
                    || matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(io_err(&e, dir)),
        };
        let mut out = Vec::new();
        for entry in reader {
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: no artifact path can name it
            };
            if name.contains('#') {
                continue; // an upload's staging file
            }
            let Ok(mut meta) = entry.metadata() else {
                continue;
            };
            if meta.file_type().is_symlink() {
                // Listed only when it resolves inside the root; a loop or dangling link is
                // skipped.
                match entry.path().canonicalize() {
                    Ok(target) if target.starts_with(&self.root) => match fs::metadata(&target) {
                        Ok(m) => meta = m,
                        Err(_) => continue,
                    },
                    _ => continue,
                }
            }
            let path = if dir.is_root() {
                name
            } else {
                // The listed folder's own name as object_store spells it, then the child's.
                let parent = StorePath::from_iter(dir.segments()).to_string();
                format!("{parent}/{name}")
            };
            out.push(Entry {
                path,
                is_dir: meta.is_dir(),
                size: (!meta.is_dir()).then_some(meta.len()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// True for `<name>#<digits>`, the shape of `object_store`'s staged uploads.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(base, n)| {
        !base.is_empty() && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
    })
}

/// Removes staged uploads under `root`, without following symlinks; answers how many.
pub(crate) fn remove_staging(root: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(reader) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in reader.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file()
                && entry.file_name().to_str().is_some_and(is_staging)
                && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert!(is_staging("model.bin#1"));
        assert!(is_staging("x#123"));
        assert!(!is_staging("x#"));
        assert!(!is_staging("#1"));
        assert!(!is_staging("x#1a"));
        assert!(!is_staging("plain"));
    }
}
