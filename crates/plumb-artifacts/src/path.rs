//! `ArtifactPath`: a relative, normalised artifact path that cannot escape its root.

use std::fmt;

use percent_encoding::percent_decode_str;
use plumb_core::{Error, Result};

/// A validated relative path (`a/b/c.txt`); the empty path is the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath(String);

fn invalid() -> Error {
    Error::invalid("Invalid path")
}

/// The longest path segment (file or folder name) filesystems take (`NAME_MAX`).
pub const MAX_SEGMENT_BYTES: usize = 255;
/// The longest artifact path, leaving room under `PATH_MAX` (4096) for the root folder.
pub const MAX_PATH_BYTES: usize = 3072;

/// Rejects every shape that could leave the root or confuse a filesystem.
fn check_shape(p: &str) -> Result<()> {
    if p.len() > MAX_PATH_BYTES {
        return Err(Error::invalid(format!(
            "Invalid path: longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    if p.split('/').any(|seg| seg.len() > MAX_SEGMENT_BYTES) {
        return Err(Error::invalid(format!(
            "Invalid path: a file or folder name is longer than {MAX_SEGMENT_BYTES} bytes"
        )));
    }
    if p.starts_with('/') || p.contains('\\') || p.contains('#') {
        return Err(invalid());
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(invalid());
    }
    let b = p.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(invalid()); // drive letter (C:foo, C:\foo)
    }
    // A segment that a file URL reads as a drive letter (`C:`, `c|`): the local store's
    // path-to-URL conversion would place it elsewhere.
    if p.split('/').any(|seg| {
        let s = seg.as_bytes();
        s.len() == 2 && s[0].is_ascii_alphabetic() && (s[1] == b':' || s[1] == b'|')
    }) {
        return Err(invalid());
    }
    if p.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(invalid());
    }
    Ok(())
}

impl ArtifactPath {
    /// The root of a store.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Parses an already URL-decoded path. It is checked as given and once more decoded, so a
    /// double-encoded `..` (`%2e%2e`, `%252e%252e` on the wire) is refused too. One trailing `/`
    /// is dropped; empty segments are refused.
    pub fn parse(raw: &str) -> Result<Self> {
        check_shape(raw)?;
        let mut decoded = raw.to_string();
        for _ in 0..3 {
            let next = percent_decode_str(&decoded).decode_utf8_lossy().to_string();
            if next == decoded {
                break;
            }
            check_shape(&next)?;
            decoded = next;
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if !trimmed.is_empty() && trimmed.split('/').any(str::is_empty) {
            return Err(invalid());
        }
        Ok(Self(trimmed.to_string()))
    }

    /// Parses a path that must name a file (no trailing `/`).
    pub fn parse_file(raw: &str) -> Result<Self> {
        if raw.ends_with('/') || raw.is_empty() {
            return Err(invalid());
        }
        Self::parse(raw)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// `self/child`, where `child` is another validated path.
    pub fn join(&self, child: &ArtifactPath) -> ArtifactPath {
        match (self.is_root(), child.is_root()) {
            (true, _) => child.clone(),
            (_, true) => self.clone(),
            _ => ArtifactPath(format!("{}/{}", self.0, child.0)),
        }
    }

    /// The last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in [
            "",
            "a",
            "a/b/c.txt",
            "model/MLmodel",
            "dir/",
            "1/abc/artifacts/x y.txt",
            "a..b",
        ] {
            assert!(ArtifactPath::parse(p).is_ok(), "{p}");
        }
        assert_eq!(ArtifactPath::parse("dir/").unwrap().as_str(), "dir");
    }

    #[test]
    fn refuses_every_escape_shape() {
        let bad = [
            "../x",
            "a/../../x",
            "..",
            "/etc/passwd",
            "a\\b",
            "..\\x",
            "C:\\x",
            "c:x",
            "a/./b",
            "x#frag",
            "a\0b",
            "a\nb",
            "a//b",
            "%2e%2e/x",
            "a/%2E%2E/b",
            "%252e%252e/x",
            "%2fetc%2fpasswd",
            "a%5c..%5cb",
            "%00",
            "dir/C:",
            "a/c|/b",
            "a/%43%3a",
        ];
        for p in bad {
            assert!(ArtifactPath::parse(p).is_err(), "{p} was accepted");
        }
        assert!(ArtifactPath::parse_file("dir/").is_err());
        let long = "x".repeat(MAX_SEGMENT_BYTES + 1);
        assert!(ArtifactPath::parse(&long).is_err());
        assert!(ArtifactPath::parse(&format!("a/{long}/b")).is_err());
        assert!(ArtifactPath::parse(&"x".repeat(MAX_SEGMENT_BYTES)).is_ok());
        let deep = vec!["abcdefgh"; 400].join("/");
        assert!(ArtifactPath::parse(&deep).is_err());
    }

    /// A parsed path can only name something under its root, whatever the input.
    fn assert_confined(p: &ArtifactPath) {
        let s = p.as_str();
        assert!(
            !s.starts_with('/') && !s.contains('\\') && !s.contains('#'),
            "{s:?}"
        );
        assert!(!s.chars().any(char::is_control), "{s:?}");
        let decoded = percent_decode_str(s).decode_utf8_lossy();
        for seg in s.split('/').chain(decoded.split('/')) {
            assert!(seg != ".." && seg != ".", "{s:?}");
            assert!(seg.len() <= MAX_SEGMENT_BYTES, "{s:?}");
        }
        if !s.is_empty() {
            assert!(s.split('/').all(|seg| !seg.is_empty()), "{s:?}");
        }
    }

    // Fuzz target: `PROPTEST_CASES=200000 cargo nextest run -E 'test(/fuzz_/)'` by hand.
    proptest::proptest! {
        #[test]
        fn fuzz_artifact_paths_any_text(s in "\\PC{0,300}") {
            if let Ok(p) = ArtifactPath::parse(&s) {
                assert_confined(&p);
            }
            if let Ok(p) = ArtifactPath::parse_file(&s) {
                assert_confined(&p);
            }
            let _ = crate::Location::parse(&s);
        }

        #[test]
        fn fuzz_artifact_paths_escape_like(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "..", ".", "", "%2e", "%2E%2e", "%252e", "%2f", "%5c", "\\", "/", "C:",
                    "#", "\u{0}", "%00", "x".repeat(256).leak() as &str, "~", "..%2f", "%c0%ae",
                ]),
                0..10,
            )
        ) {
            let s = parts.join("/");
            if let Ok(p) = ArtifactPath::parse(&s) {
                assert_confined(&p);
            }
            for prefix in ["mlflow-artifacts:/", "file:///srv/", "s3://b/"] {
                let _ = crate::Location::parse(&format!("{prefix}{s}"));
            }
        }
    }
}
