//! Model registry domain: registered models, versions, stages, aliases, and the rules on names,
//! aliases and version sources (a source must point into its run's or logged model's artifacts).

use crate::entities::Tag;
use crate::error::{Error, Result};
use crate::search::{Clause, Op, Target, Value};

pub const MAX_REGISTERED_MODEL_NAME_LENGTH: usize = 256;
pub const MAX_REGISTRY_TAG_KEY_LENGTH: usize = 250;
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_ALIAS_LENGTH: usize = 255;
pub const MAX_DESCRIPTION_LENGTH: usize = 5000;
pub const SEARCH_REGISTERED_MODELS_DEFAULT: i64 = 100;
pub const SEARCH_REGISTERED_MODELS_MAX: i64 = 1000;
pub const SEARCH_MODEL_VERSIONS_MAX: i64 = 200_000;
/// The tag that marks a registered model as a prompt (hidden from model searches by default).
pub const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";
/// The logged-model tag listing the registry versions made from it.
pub const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

/// MLflow's (deprecated, still served) model-version stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::None,
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Case-insensitive, as MLflow canonicalises stage names.
    pub fn parse(s: &str) -> Result<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            Error::invalid(format!(
                "Invalid Model Version stage: {s}. Value must be one of None, Staging, Production, Archived."
            ))
        })
    }
}

/// The stage a soft-deleted version is parked in.
pub const DELETED_STAGE: &str = "Deleted_Internal";

#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: Option<String>,
    pub current_stage: String,
    pub description: String,
    pub source: String,
    pub run_id: String,
    pub status: String,
    pub status_message: Option<String>,
    pub run_link: String,
    pub tags: Vec<Tag>,
    pub aliases: Vec<String>,
    /// Where the version's files are (a logged model's artifact location for `models:/m-...`).
    pub storage_location: Option<String>,
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub description: String,
    pub tags: Vec<Tag>,
    /// (alias, version)
    pub aliases: Vec<(String, i64)>,
    /// The newest version in each stage.
    pub latest_versions: Vec<ModelVersion>,
}

/// A change to a registered model that MLflow keeps no time for, as plumb records it: when an
/// alias came to a version or left it, when a version's stage changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryChange {
    pub version: i64,
    pub kind: ChangeKind,
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// The alias now points at the version (set, or moved here from another).
    AliasSet(String),
    /// The alias no longer points at the version (deleted, or the version was deleted).
    AliasRemoved(String),
    /// The version entered this stage.
    Stage(String),
}

pub fn validate_model_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::missing("name"));
    }
    if name.contains('/') || name.contains(':') {
        return Err(Error::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "Invalid model name {name:?}. Names cannot contain control characters."
        )));
    }
    crate::validation::validate_length(name, MAX_REGISTERED_MODEL_NAME_LENGTH, "name")
}

pub fn validate_registry_tag(tag: &Tag) -> Result<()> {
    crate::validation::validate_key(&tag.key, "key")?;
    crate::validation::validate_length(&tag.key, MAX_REGISTRY_TAG_KEY_LENGTH, "key")?;
    crate::validation::validate_length(&tag.value, MAX_REGISTRY_TAG_VALUE_LENGTH, "value")
}

/// Alias rules: `[\w-]*`, at most 255 characters, not `latest`, not `v<digits>`.
pub fn validate_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::missing("alias"));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::invalid(format!(
            "Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, underscores (_) and dashes (-)."
        )));
    }
    crate::validation::validate_length(alias, MAX_ALIAS_LENGTH, "alias")?;
    let lower = alias.to_ascii_lowercase();
    if lower == "latest" {
        return Err(Error::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    if let Some(rest) = lower.strip_prefix('v') {
        if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid(format!(
                "Version alias name '{alias}' is reserved."
            )));
        }
    }
    Ok(())
}

/// `version` as an integer, with MLflow's message.
pub fn parse_version(version: &str) -> Result<i64> {
    version.trim().parse::<i64>().map_err(|_| {
        Error::invalid(format!(
            "Parameter 'version' must be an integer, got '{version}'."
        ))
    })
}

/// MLflow's registry searches return models, not prompts, unless the filter asks for prompts
/// (`tags.mlflow.prompt.is_prompt = 'true'` or `!= 'false'`). Returns the clauses to apply and
/// whether prompts must be excluded; when excluded, clauses on the prompt tag are dropped (a
/// model has no such tag, so `!= 'true'` could never match it otherwise).
pub fn split_prompt_filter(clauses: Vec<Clause>) -> (Vec<Clause>, bool) {
    let asks_for_prompts = clauses.iter().any(|c| match (&c.target, c.op, &c.value) {
        (Target::Tag(k), Op::Eq, Value::Str(v)) if k == IS_PROMPT_TAG => {
            v.eq_ignore_ascii_case("true")
        }
        (Target::Tag(k), Op::Ne, Value::Str(v)) if k == IS_PROMPT_TAG => {
            v.eq_ignore_ascii_case("false")
        }
        _ => false,
    });
    if asks_for_prompts {
        return (clauses, false);
    }
    let kept = clauses
        .into_iter()
        .filter(|c| !matches!(&c.target, Target::Tag(k) if k == IS_PROMPT_TAG))
        .collect();
    (kept, true)
}

/// What a source is checked against: the run and logged model the version names.
#[derive(Debug, Clone, Default)]
pub struct SourceContext<'a> {
    pub run_id: Option<&'a str>,
    pub run_artifact_uri: Option<&'a str>,
    pub model_id: Option<&'a str>,
    pub model_artifact_uri: Option<&'a str>,
    /// The `host[:port]` names this server is configured to be reached by (never taken from a
    /// request's `Host` header, which the client chooses); an `http(s)` source must name one.
    /// An entry without a port matches any port; `*.example.com` matches its subdomains.
    pub server_hosts: &'a [String],
}

fn bad_source(source: &str) -> Error {
    Error::invalid(format!(
        "Invalid model version source: '{source}'. The run_id request parameter must identify \
         the resource that contains the source."
    ))
}

/// Repeatedly percent-decodes (double encoding included) until stable.
fn fully_decoded(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..4 {
        let next = percent_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `scheme:rest`; a bare path has no scheme.
fn scheme(uri: &str) -> Option<(&str, &str)> {
    let (s, rest) = uri.split_once(':')?;
    if s.len() >= 2
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        Some((s, rest))
    } else {
        None
    }
}

/// A comparable form of an artifact location: (kind, path segments). `mlflow-artifacts:` and
/// this server's `/api/2.0/mlflow-artifacts/artifacts/` URLs are the same kind.
/// The name part of `name[:port]` (`[v6]:port` keeps its brackets).
pub fn split_port(host: &str) -> &str {
    if let Some(end) = host.find(']').filter(|_| host.starts_with('[')) {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// True when `host` (`name[:port]` from a URL) is one of the configured `server_hosts`.
pub fn names_server(host: &str, server_hosts: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    let name = split_port(&host);
    server_hosts.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        if let Some(suffix) = entry.strip_prefix("*.") {
            return name.ends_with(&format!(".{suffix}"));
        }
        entry == host || entry == name
    })
}

fn location_parts(uri: &str, server_hosts: &[String]) -> Option<(String, Vec<String>)> {
    let segs = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    match scheme(uri) {
        Some(("mlflow-artifacts", rest)) => {
            let path = match rest.strip_prefix("//") {
                Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
                None => rest,
            };
            Some(("proxy".into(), segs(path)))
        }
        Some(("http" | "https", rest)) => {
            let rest = rest.strip_prefix("//")?;
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            if !names_server(host, server_hosts) {
                return None; // another host
            }
            let marker = "api/2.0/mlflow-artifacts/artifacts/";
            let idx = path.find(marker)?;
            Some(("proxy".into(), segs(&path[idx + marker.len()..])))
        }
        Some(("file", rest)) => Some(("local".into(), segs(rest.trim_start_matches("//")))),
        Some((other, rest)) => Some((other.to_string(), segs(rest.trim_start_matches("//")))),
        None => Some(("local".into(), segs(uri))),
    }
}

fn is_under(source: &str, root: &str, hosts: &[String]) -> bool {
    match (location_parts(source, hosts), location_parts(root, hosts)) {
        (Some((ks, ps)), Some((kr, pr))) => {
            ks == kr && ps.len() >= pr.len() && ps[..pr.len()] == pr[..]
        }
        _ => false,
    }
}

/// Checks a model version's `source` and returns the storage location to record for it (the
/// logged model's artifact location for `models:/<model_id>`), or `None` to use the source.
pub fn check_source(source: &str, ctx: &SourceContext<'_>) -> Result<Option<String>> {
    if source.is_empty() {
        return Err(Error::missing("source"));
    }
    let decoded = fully_decoded(source);
    if decoded.contains('\\') || decoded.chars().any(char::is_control) {
        return Err(bad_source(source));
    }
    let relative = decoded.split('/').any(|seg| seg == "..");
    // A local path (no scheme, or `file:` on this host) is resolved first, then checked: a
    // source such as `<run artifacts>/model/..` is inside the run.
    if let Some(path) = local_path(source)? {
        let resolved = resolve_lexically(&fully_decoded(&path));
        let inside = [ctx.run_artifact_uri, ctx.model_artifact_uri]
            .iter()
            .flatten()
            .filter_map(|root| local_path(root).ok().flatten())
            .any(|root| {
                let root = resolve_lexically(&root);
                resolved == root
                    || resolved.starts_with(&format!("{}/", root.trim_end_matches('/')))
            });
        if inside && ctx.run_id.is_some() {
            return Ok(None);
        }
        return Err(Error::invalid(format!(
            "Invalid model version source: '{resolved}'. To use a local path as a model version \
             source, the run_id request parameter has to be specified and the local path has \
             to be contained within the artifact directory of the run specified by the run_id."
        )));
    }
    let relative_refused = || {
        Error::invalid(format!(
            "Invalid model version source: '{source}'. If supplying a source as an http, https, \
             local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must \
             be provided without relative path references present. Please provide an absolute \
             path."
        ))
    };
    if relative && !source.starts_with("runs:/") {
        return Err(relative_refused());
    }
    if let Some(rest) = source.strip_prefix("models:/") {
        let rest = rest.trim_start_matches('/');
        if rest.starts_with("m-") && !rest.contains('/') {
            // A logged model: it must be the one named by model_id.
            return match (ctx.model_id, ctx.model_artifact_uri) {
                (Some(id), Some(loc)) if id == rest => Ok(Some(loc.to_string())),
                _ => Err(bad_source(source)),
            };
        }
        // models:/<name>/<version> or models:/<name>@<alias>: resolved by the caller.
        return Ok(None);
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        // As MLflow: only the run id in the URI is compared with run_id (the run may live on
        // another server); relative segments are refused after that.
        let rid = rest.trim_start_matches('/').split('/').next().unwrap_or("");
        return match ctx.run_id {
            Some(id) if id == rid && relative => Err(relative_refused()),
            Some(id) if id == rid => Ok(None),
            _ => Err(bad_source(source)),
        };
    }
    let roots = [ctx.run_artifact_uri, ctx.model_artifact_uri];
    if roots
        .iter()
        .flatten()
        .any(|root| is_under(&decoded, root, ctx.server_hosts))
    {
        return Ok(None);
    }
    Err(bad_source(source))
}

/// The path of a local source or root (no scheme, `file:/path`, `file:///path`,
/// `file://localhost/path`); `None` for other schemes; MLflow's error for a `file://` URI
/// naming another host.
fn local_path(uri: &str) -> Result<Option<String>> {
    if let Some(rest) = uri.strip_prefix("file:") {
        let Some(after) = rest.strip_prefix("//") else {
            return Ok(Some(rest.to_string()));
        };
        let (host, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
            return Ok(Some(path.to_string()));
        }
        return Err(Error::invalid(format!(
            "{uri} is not a valid remote uri. For remote access on windows, please consider \
             using a different scheme such as SMB (e.g. smb://<hostname>/<path>)."
        )));
    }
    Ok(scheme(uri).is_none().then(|| uri.to_string()))
}

/// Whether a version source is a local path (MLflow looks its run up and resolves it).
pub fn is_local_source(source: &str) -> bool {
    source.starts_with("file:") || scheme(source).is_none()
}

/// `a/b/../c/./d` -> `a/c/d`, without touching the file system (`..` above the root stays at
/// the root, as the OS resolves it).
fn resolve_lexically(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !absolute {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> &'static [String] {
        static HOSTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        HOSTS.get_or_init(|| vec!["localhost:5000".to_string()])
    }

    fn ctx<'a>() -> SourceContext<'a> {
        SourceContext {
            run_id: Some("abc"),
            run_artifact_uri: Some("mlflow-artifacts:/1/abc/artifacts"),
            model_id: Some("m-123"),
            model_artifact_uri: Some("mlflow-artifacts:/1/models/m-123/artifacts"),
            server_hosts: hosts(),
        }
    }

    #[test]
    fn sources_inside_the_run_or_model_are_accepted() {
        let ok = [
            ("mlflow-artifacts:/1/abc/artifacts/model", None),
            (
                "mlflow-artifacts://localhost:5000/1/abc/artifacts/model",
                None,
            ),
            (
                "http://localhost:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model",
                None,
            ),
            ("mlflow-artifacts:/1/models/m-123/artifacts", None),
            (
                "models:/m-123",
                Some("mlflow-artifacts:/1/models/m-123/artifacts"),
            ),
            ("runs:/abc/model", None),
            ("models:/other-model/3", None),
        ];
        for (src, loc) in ok {
            assert_eq!(
                check_source(src, &ctx()).unwrap(),
                loc.map(str::to_string),
                "{src}"
            );
        }
    }

    #[test]
    fn escapes_and_foreign_locations_are_refused() {
        let bad = [
            "mlflow-artifacts:/1/abc/artifacts/../../2/xyz/artifacts",
            "mlflow-artifacts:/1/abc/artifacts/%2e%2e/%2e%2e/2",
            "mlflow-artifacts:/1/abc/artifacts/%252e%252e/x",
            "mlflow-artifacts:/1/other/artifacts/model",
            "mlflow-artifacts:/1/abc",
            "http://evil.example.com/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model",
            "https://evil.example.com/model.pkl",
            "file:///etc/passwd",
            "/etc/passwd",
            "s3://other-bucket/model",
            "runs:/other-run/model",
            "models:/m-999",
            "mlflow-artifacts:/1/abc/artifacts\\..\\x",
        ];
        for src in bad {
            assert!(check_source(src, &ctx()).is_err(), "{src} was accepted");
        }
        let no_run = SourceContext::default();
        let e = check_source("/tmp/model", &no_run).unwrap_err();
        assert!(e
            .message
            .contains("run_id request parameter has to be specified"));
    }

    #[test]
    fn http_sources_must_name_a_configured_host() {
        let src = "http://evil.example/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model";
        assert!(check_source(src, &ctx()).is_err());
        let evil = vec!["evil.example".to_string()];
        let c = SourceContext {
            server_hosts: &evil,
            ..ctx()
        };
        assert!(
            check_source(src, &c).is_ok(),
            "a configured host is accepted"
        );
        assert!(names_server("LOCALHOST:5000", hosts()));
        assert!(!names_server("localhost:5001", hosts()));
        assert!(names_server(
            "a.corp.example:443",
            &["*.corp.example".to_string()]
        ));
        assert!(!names_server(
            "corp.example.evil",
            &["*.corp.example".to_string()]
        ));
        assert!(names_server("[::1]:5000", &["[::1]".to_string()]));
    }

    #[test]
    fn local_run_roots() {
        let c = SourceContext {
            run_id: Some("r"),
            run_artifact_uri: Some("file:///data/mlruns/1/r/artifacts"),
            ..Default::default()
        };
        assert!(check_source("file:///data/mlruns/1/r/artifacts/model", &c).is_ok());
        assert!(check_source("/data/mlruns/1/r/artifacts/model", &c).is_ok());
        assert!(check_source("/data/mlruns/1/other/artifacts/model", &c).is_err());
    }

    #[test]
    fn aliases_and_stages() {
        assert!(validate_alias("champion").is_ok());
        assert!(validate_alias("blue-green_2").is_ok());
        for bad in ["latest", "LATEST", "v1", "V22", "has space", "a/b", ""] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
        assert!(validate_alias("v1a").is_ok());
        assert_eq!(Stage::parse("production").unwrap(), Stage::Production);
        assert!(Stage::parse("prod").is_err());
        assert!(validate_model_name("a/b").is_err());
        assert!(validate_model_name("iris-rf").is_ok());
        assert!(parse_version("x").is_err());
    }

    #[test]
    fn sources_follow_mlflow_3_17() {
        let hosts = hosts();
        let local = SourceContext {
            run_id: Some("abc"),
            run_artifact_uri: Some("file:///data/exp/abc/artifacts"),
            model_id: None,
            model_artifact_uri: None,
            server_hosts: hosts,
        };
        // Resolved first, then checked.
        assert_eq!(
            check_source("file:///data/exp/abc/artifacts/model/..", &local).unwrap(),
            None
        );
        assert_eq!(
            check_source("/data/exp/abc/artifacts/./m", &local).unwrap(),
            None
        );
        let out = check_source("file:///data/exp/abc/artifacts/../../other", &local).unwrap_err();
        assert!(out.message.contains("'/data/exp/other'"), "{}", out.message);
        let remote = check_source("file://host/data/x", &local).unwrap_err();
        assert!(
            remote.message.ends_with("(e.g. smb://<hostname>/<path>)."),
            "{}",
            remote.message
        );
        assert!(remote.message.contains("is not a valid remote uri"));
        assert_eq!(
            check_source("file://localhost/data/exp/abc/artifacts/m", &local).unwrap(),
            None
        );
        // runs:/ compares ids only: another server's run needs no run root here.
        let foreign = SourceContext {
            run_id: Some("f00"),
            run_artifact_uri: None,
            ..local
        };
        assert_eq!(check_source("runs:/f00/model", &foreign).unwrap(), None);
        let rel = check_source("runs:/f00/../x", &foreign).unwrap_err();
        assert!(
            rel.message.contains("without relative path references"),
            "{}",
            rel.message
        );
        let rel = check_source("mlflow-artifacts:/1/abc/artifacts/../x", &ctx()).unwrap_err();
        assert!(
            rel.message.contains("without relative path references"),
            "{}",
            rel.message
        );
        let rel = check_source("s3://b/a/%2e%2e/x", &ctx()).unwrap_err();
        assert!(
            rel.message.contains("without relative path references"),
            "{}",
            rel.message
        );
    }
}
