//! `Location`: an artifact location URI (an experiment's, a run's) read as a place: a path in
//! the artifact proxy's destination, a local folder, or somewhere plumb does not reach. Used to
//! refuse overlapping experiment locations and to decide what `gc` may remove.

use std::path::{Component, Path, PathBuf};

use plumb_core::{Error, Result};

use crate::ArtifactPath;

/// Where an artifact location points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `mlflow-artifacts:/a/b` (also `mlflow-artifacts://host:port/a/b` and this server's
    /// `http(s)://.../api/2.0/mlflow-artifacts/artifacts/a/b`): a path in the destination.
    Proxy(ArtifactPath),
    /// `file:///abs/dir` or `/abs/dir`: an absolute, lexically clean local folder.
    Local(PathBuf),
    /// Any other scheme (`s3://b/p`, `gs://...`): `scheme://authority` and its path segments.
    Remote(String, Vec<String>),
}

const PROXY_MARKER: &str = "/api/2.0/mlflow-artifacts/artifacts";

fn bad(uri: &str, why: &str) -> Error {
    Error::invalid(format!(
        "Invalid artifact location {:?}: {why}",
        uri.escape_debug().to_string()
    ))
}

impl Location {
    /// Reads a stored or client-given location. Refuses control characters, `.`/`..` segments
    /// (also percent-encoded) and relative local paths.
    pub fn parse(uri: &str) -> Result<Self> {
        if uri.chars().any(char::is_control) {
            return Err(bad(uri, "it contains control characters"));
        }
        if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            let path = match rest.strip_prefix("//") {
                Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
                None => rest.trim_start_matches('/'),
            };
            return Self::proxy(uri, path);
        }
        if uri.starts_with("http://") || uri.starts_with("https://") {
            if let Some(i) = uri.find(PROXY_MARKER) {
                return Self::proxy(uri, uri[i + PROXY_MARKER.len()..].trim_start_matches('/'));
            }
        }
        let local = match uri.strip_prefix("file://") {
            Some(rest) => Some(rest.strip_prefix("localhost").unwrap_or(rest)),
            None => (!uri.contains("://")).then_some(uri),
        };
        if let Some(path) = local {
            if !path.starts_with('/') {
                return Err(bad(uri, "a local location must be an absolute path"));
            }
            let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
            let mut clean = PathBuf::from("/");
            for c in Path::new(decoded.as_ref()).components() {
                match c {
                    Component::Normal(seg) => clean.push(seg),
                    Component::RootDir => {}
                    _ => return Err(bad(uri, "'.' and '..' segments are not allowed")),
                }
            }
            if decoded.split('/').any(|s| s == "." || s == "..") {
                return Err(bad(uri, "'.' and '..' segments are not allowed"));
            }
            return Ok(Self::Local(clean));
        }
        let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let segs: Vec<String> = decoded
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if segs.iter().any(|s| s == "." || s == "..") {
            return Err(bad(uri, "'.' and '..' segments are not allowed"));
        }
        Ok(Self::Remote(
            format!("{}://{}", scheme.to_ascii_lowercase(), authority),
            segs,
        ))
    }

    fn proxy(uri: &str, path: &str) -> Result<Self> {
        ArtifactPath::parse(path).map(Self::Proxy).map_err(|_| {
            bad(
                uri,
                "not a valid artifact path (no '..', '.', '\\\\' or empty segments)",
            )
        })
    }

    /// (namespace, segments): two locations compare only within one namespace. A proxy path
    /// becomes a local one when the destination is the local folder `dest`.
    fn parts(&self, dest: Option<&Path>) -> (String, Vec<String>) {
        let local = |p: &Path| -> Vec<String> {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect()
        };
        match self {
            Self::Proxy(p) => match dest {
                Some(root) => {
                    let mut segs = local(root);
                    segs.extend(p.segments().map(str::to_string));
                    ("local".into(), segs)
                }
                None => ("proxy".into(), p.segments().map(str::to_string).collect()),
            },
            Self::Local(p) => ("local".into(), local(p)),
            Self::Remote(base, segs) => (base.clone(), segs.clone()),
        }
    }

    /// True when `other` is this location or lies inside it.
    pub fn contains(&self, other: &Location, dest: Option<&Path>) -> bool {
        let (ka, a) = self.parts(dest);
        let (kb, b) = other.parts(dest);
        ka == kb && b.len() >= a.len() && b[..a.len()] == a[..]
    }

    /// The segments of `self` below `outer`, when `outer` contains it.
    pub fn below(&self, outer: &Location, dest: Option<&Path>) -> Option<Vec<String>> {
        let (ko, o) = outer.parts(dest);
        let (ks, mut s) = self.parts(dest);
        if ko != ks || s.len() < o.len() || s[..o.len()] != o[..] {
            return None;
        }
        Some(s.split_off(o.len()))
    }

    /// True when one of the two contains the other.
    pub fn overlaps(&self, other: &Location, dest: Option<&Path>) -> bool {
        self.contains(other, dest) || other.contains(self, dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind() {
        let p = |s: &str| Location::parse(s).unwrap_or_else(|e| panic!("{s}: {}", e.message));
        assert_eq!(
            p("mlflow-artifacts:/1/abc"),
            Location::Proxy(ArtifactPath::parse("1/abc").expect("path"))
        );
        assert_eq!(p("mlflow-artifacts://h:5000/1"), p("mlflow-artifacts:/1"));
        assert_eq!(
            p("http://h:5000/api/2.0/mlflow-artifacts/artifacts/1"),
            p("mlflow-artifacts:/1")
        );
        assert_eq!(p("file:///data/x/"), Location::Local("/data/x".into()));
        assert_eq!(p("/data/x"), Location::Local("/data/x".into()));
        assert_eq!(
            p("s3://b/p/q"),
            Location::Remote("s3://b".into(), vec!["p".into(), "q".into()])
        );
        assert_eq!(
            p("mlflow-artifacts:/"),
            Location::Proxy(ArtifactPath::root())
        );
    }

    #[test]
    fn refuses_escapes_and_control_characters() {
        for bad in [
            "mlflow-artifacts:/1/../..",
            "mlflow-artifacts:/%2e%2e",
            "file:///data/../etc",
            "/data/./x",
            "/data/%2e%2e/etc",
            "relative/dir",
            "file://data/x",
            "s3://b/../other",
            "mlflow-artifacts:/a\0b",
            "/tmp/x\n",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn containment_within_one_namespace() {
        let p = |s: &str| Location::parse(s).expect("location");
        let dest = Path::new("/srv/art");
        assert!(p("mlflow-artifacts:/1").contains(&p("mlflow-artifacts:/1/r/artifacts"), None));
        assert!(!p("mlflow-artifacts:/1").contains(&p("mlflow-artifacts:/10"), None));
        assert!(p("mlflow-artifacts:/").contains(&p("mlflow-artifacts:/1"), None));
        assert!(p("/srv/art/1").overlaps(&p("mlflow-artifacts:/1/x"), Some(dest)));
        assert!(!p("/srv/art/1").overlaps(&p("mlflow-artifacts:/1/x"), None));
        assert!(p("/srv").contains(&p("mlflow-artifacts:/7"), Some(dest)));
        assert!(!p("s3://b/p").overlaps(&p("s3://c/p"), None));
        assert!(p("s3://b/p").overlaps(&p("s3://b/p/q"), None));
    }
}
