//! Artifact endpoints: the `mlflow-artifacts` proxy (streamed PUT/GET, list, DELETE), run and
//! logged-model listings, and `/get-artifact`. Paths become keys only through `ArtifactPath`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use plumb_artifacts::{ArtifactPath, ArtifactStore, Entry};
use plumb_core::ErrorCode;
use serde_json::{json, Map, Value};

use crate::api::empty;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::{ApiError, AppState};

const PROXY_MARKER: &str = "/mlflow-artifacts/artifacts";

fn proxy_store(st: &AppState) -> ApiResult<&ArtifactStore> {
    if st.config.serve_artifacts {
        Ok(&st.artifacts)
    } else {
        Err(ApiError::new(
            ErrorCode::TemporarilyUnavailable,
            "Artifact proxying is disabled: the server runs with --no-serve-artifacts.",
        ))
    }
}

/// Where a run's or model's artifact root lives: a store and a base path inside it.
/// `None` means a local folder that does not exist (yet): it lists as empty.
///
/// A local root is served only when it resolves (symlinks followed) inside the resolved
/// location of the experiment it belongs to (`experiment_id`): a run folder that is itself a
/// symlink to elsewhere is refused, and without an experiment no local root is served.
async fn resolve_root(
    st: &AppState,
    root_uri: &str,
    experiment_id: Option<&str>,
) -> ApiResult<Option<(ArtifactStore, ArtifactPath)>> {
    let proxied = if let Some(rest) = root_uri.strip_prefix("mlflow-artifacts:") {
        // mlflow-artifacts:/1/x or mlflow-artifacts://host:port/1/x
        let rest = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => rest.trim_start_matches('/'),
        };
        Some(rest.to_string())
    } else if root_uri.starts_with("http://") || root_uri.starts_with("https://") {
        root_uri.find(PROXY_MARKER).map(|i| {
            root_uri[i + PROXY_MARKER.len()..]
                .trim_start_matches('/')
                .to_string()
        })
    } else {
        None
    };
    if let Some(rest) = proxied {
        let store = proxy_store(st)?.clone();
        return Ok(Some((store, ArtifactPath::parse(&rest)?)));
    }
    let local = root_uri.strip_prefix("file://").unwrap_or(root_uri);
    if local.contains("://") {
        return Err(ApiError::invalid(format!(
            "The artifact root '{root_uri}' is not served by this server; read it with the client directly."
        )));
    }
    let not_served = || {
        ApiError::invalid(format!(
            "The artifact root '{root_uri}' is not served: it does not resolve inside its \
             experiment's artifact location."
        ))
    };
    let Some(experiment_id) = experiment_id else {
        return Err(not_served());
    };
    let experiment = st.store.get_experiment(experiment_id).await?;
    let exp_local = experiment
        .artifact_location
        .strip_prefix("file://")
        .unwrap_or(&experiment.artifact_location)
        .to_string();
    let root = std::path::PathBuf::from(local);
    let confined = tokio::task::spawn_blocking(move || {
        if !root.is_dir() {
            return Ok(None);
        }
        match (
            root.canonicalize(),
            std::path::Path::new(&exp_local).canonicalize(),
        ) {
            (Ok(r), Ok(e)) if r.starts_with(&e) => Ok(Some(r)),
            _ => Err(()),
        }
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("task failed: {e}")))?;
    match confined {
        Ok(Some(root)) => Ok(Some((ArtifactStore::local(root)?, ArtifactPath::root()))),
        Ok(None) => Ok(None),
        Err(()) => Err(not_served()),
    }
}

fn file_info(e: &Entry, name: &str) -> Value {
    let mut m = Map::new();
    m.insert("path".into(), json!(name));
    m.insert("is_dir".into(), json!(e.is_dir));
    if let Some(size) = e.size {
        m.insert("file_size".into(), json!(size));
    }
    Value::Object(m)
}

/// Lists `dir` under a root; entries are named relative to `relative_to`.
async fn list_under(
    store: &ArtifactStore,
    base: &ArtifactPath,
    dir: &ArtifactPath,
    basenames: bool,
) -> ApiResult<Vec<Value>> {
    let full = base.join(dir);
    let entries = store.list(&full).await?;
    let prefix_len = if base.is_root() {
        0
    } else {
        base.as_str().len() + 1
    };
    Ok(entries
        .iter()
        .map(|e| {
            let name = if basenames {
                e.path.rsplit('/').next().unwrap_or(&e.path).to_string()
            } else {
                e.path.get(prefix_len..).unwrap_or(&e.path).to_string()
            };
            file_info(e, &name)
        })
        .collect())
}

fn files_response(root_uri: Option<&str>, files: Vec<Value>) -> Json<Value> {
    let mut m = Map::new();
    if let Some(root) = root_uri {
        m.insert("root_uri".into(), json!(root));
    }
    if !files.is_empty() {
        m.insert("files".into(), Value::Array(files));
    }
    Json(Value::Object(m))
}

/// `GET /mlflow/artifacts/list?run_id=&path=`
pub async fn list_run(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run = st.store.get_run(&p.run_id()?).await?;
    let dir = ArtifactPath::parse(&p.opt_str("path")?.unwrap_or_default())?;
    let root = run.info.artifact_uri.clone();
    let files = match resolve_root(&st, &root, Some(&run.info.experiment_id)).await? {
        Some((store, base)) => list_under(&store, &base, &dir, false).await?,
        None => Vec::new(),
    };
    Ok(files_response(Some(&root), files))
}

/// `GET /mlflow/logged-models/{id}/artifacts/directories`
pub async fn list_logged_model(
    State(st): State<AppState>,
    Path(model_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let model = st.store.get_logged_model(&model_id, false).await?;
    let dir = ArtifactPath::parse(&p.opt_str("artifact_directory_path")?.unwrap_or_default())?;
    let files = match resolve_root(&st, &model.artifact_uri, Some(&model.experiment_id)).await? {
        Some((store, base)) => list_under(&store, &base, &dir, false).await?,
        None => Vec::new(),
    };
    Ok(files_response(Some(&model.artifact_uri), files))
}

/// `GET /mlflow-artifacts/artifacts?path=`: basenames only; a missing dir or a file gives `{}`.
pub async fn list_proxy(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let store = proxy_store(&st)?;
    let dir = ArtifactPath::parse(&p.opt_str("path")?.unwrap_or_default())?;
    let files = list_under(store, &ArtifactPath::root(), &dir, true).await?;
    Ok(files_response(None, files))
}

/// The type MLflow gives a downloaded artifact: text for its list of text extensions (matched
/// as MLflow matches them, case and all, a name without extension standing for its own
/// extension, hence `MLmodel` and `mlproject`), else by extension. HTML is sent as text, never
/// as a page (artifacts are untrusted; MLflow would say `text/html`).
fn content_type(name: &str) -> &'static str {
    const TEXT: [&str; 25] = [
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "MLmodel",
        "mlproject",
    ];
    let ext = match name.rsplit_once('.') {
        Some((stem, e)) if !stem.is_empty() => e,
        _ => name.trim_start_matches('.'),
    };
    if TEXT.contains(&ext) {
        return "text/plain";
    }
    // Then by extension in any case, as Python's `mimetypes` (which MLflow asks next) does.
    match ext.to_ascii_lowercase().as_str() {
        "txt" => "text/plain",
        "json" => "application/json",
        "csv" => "text/csv",
        "html" | "htm" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// `Content-Disposition` as MLflow's server (werkzeug) writes it: the name bare when it is
/// only token characters, else quoted (an ASCII stand-in) with the UTF-8 name in `filename*`.
fn disposition(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.is_empty() && name.bytes().all(token) {
        return format!("attachment; filename={name}");
    }
    let stand_in: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut v = format!("attachment; filename=\"{stand_in}\"");
    if !name.is_ascii() {
        v.push_str("; filename*=UTF-8''");
        v.push_str(
            &percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    v
}

async fn stream_file(store: &ArtifactStore, path: &ArtifactPath) -> ApiResult<Response> {
    let download = store.get(path).await?;
    let name = path.file_name();
    let mut resp = Body::from_stream(download.stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    if let Ok(v) = HeaderValue::from_str(&disposition(name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `GET /mlflow-artifacts/artifacts/{path}`: streams the file.
pub async fn download(State(st): State<AppState>, Path(path): Path<String>) -> ApiResult<Response> {
    let store = proxy_store(&st)?;
    let path = ArtifactPath::parse_file(&path)?;
    stream_file(store, &path).await
}

/// `PUT /mlflow-artifacts/artifacts/{path}`: the raw body is the file, streamed to the store.
pub async fn upload(
    State(st): State<AppState>,
    Path(path): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let store = proxy_store(&st)?;
    let path = ArtifactPath::parse_file(&path)?;
    store.put(&path, body.into_data_stream()).await?;
    Ok(empty())
}

/// `DELETE /mlflow-artifacts/artifacts/{path}`: a file or a whole directory.
pub async fn delete(
    State(st): State<AppState>,
    Path(path): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = proxy_store(&st)?;
    let path = ArtifactPath::parse_file(&path)?;
    store.delete(&path).await?;
    Ok(empty())
}

/// Multipart and presigned transfers: not offered (server-info says so), as MLflow answers
/// for a local destination.
pub async fn multipart_unsupported() -> ApiResult<Json<Value>> {
    Err(ApiError::new(
        ErrorCode::NotImplemented,
        "Multipart upload is not supported for the current artifact repository",
    ))
}

/// Streams `path` (relative) from under an artifact root URI.
pub(crate) async fn serve_file_under(
    st: &AppState,
    root_uri: &str,
    experiment_id: Option<&str>,
    path: &str,
) -> ApiResult<Response> {
    let path = ArtifactPath::parse_file(path)?;
    match resolve_root(st, root_uri, experiment_id).await? {
        Some((store, base)) => stream_file(&store, &base.join(&path)).await,
        None => Err(plumb_core::Error::not_found(format!("No such artifact: '{path}'")).into()),
    }
}

/// `GET /mlflow/logged-models/{id}/artifacts/files?artifact_file_path=`: one file of a logged
/// model (MLflow 3; the UI and `plumb export` read models' files through it).
pub async fn get_logged_model_file(
    State(st): State<AppState>,
    Path(model_id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let path = p
        .opt_str("artifact_file_path")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "Request must include the \"artifact_file_path\" query parameter.",
            )
        })?;
    let model = st.store.get_logged_model(&model_id, false).await?;
    serve_file_under(&st, &model.artifact_uri, Some(&model.experiment_id), &path).await
}

/// `GET /get-artifact?run_id=&path=`: the UI's download of one run artifact.
pub async fn get_artifact(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let run = st.store.get_run(&p.run_id()?).await?;
    serve_file_under(
        &st,
        &run.info.artifact_uri,
        Some(&run.info.experiment_id),
        &p.req_str("path")?,
    )
    .await
}

/// The largest file the UI's upload takes (MLflow's limit).
const MAX_UPLOAD: usize = 10 * 1024 * 1024;

/// `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=` (the UI's upload): the raw body
/// is the file, written under the run's artifact root; checked in MLflow's order and words.
/// Served for runs whose artifacts the server holds (the proxy, or a local root inside its
/// experiment's location); other roots answer 400.
pub async fn upload_for_run(
    State(st): State<AppState>,
    query: Result<
        axum::extract::Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let axum::extract::Query(args) =
        query.map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))?;
    let arg = |name: &str| args.get(name).filter(|s| !s.is_empty()).cloned();
    let run_id =
        arg("run_uuid").ok_or_else(|| ApiError::invalid("Request must specify run_uuid."))?;
    let path = arg("path").ok_or_else(|| ApiError::invalid("Request must specify path."))?;
    let path = ArtifactPath::parse_file(&path).map_err(|_| ApiError::invalid("Invalid path"))?;
    let too_large = || ApiError::invalid("Artifact size is too large. Max size is 10MB.");
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD as u64) {
        return Err(too_large());
    }
    let data = axum::body::to_bytes(req.into_body(), MAX_UPLOAD)
        .await
        .map_err(|_| too_large())?;
    if data.is_empty() {
        return Err(ApiError::invalid("Request must specify data."));
    }
    let run = st.store.get_run(&run_id).await?;
    let Some((store, base)) =
        resolve_root(&st, &run.info.artifact_uri, Some(&run.info.experiment_id)).await?
    else {
        return Err(ApiError::invalid(format!(
            "The artifact root '{}' is not served by this server.",
            run.info.artifact_uri
        )));
    };
    let body = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
    store.put(&base.join(&path), body).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], "").into_response())
}

#[cfg(test)]
mod tests {
    use super::{content_type, disposition};

    #[test]
    fn types_and_dispositions_follow_mlflow() {
        for (name, ty) in [
            ("MLmodel", "text/plain"),
            ("mlproject", "text/plain"),
            ("MLproject", "application/octet-stream"),
            ("mlmodel", "application/octet-stream"),
            ("conda.yaml", "text/plain"),
            ("metrics.json", "text/plain"),
            ("notes.TXT", "text/plain"),
            ("DATA.JSON", "application/json"),
            ("page.html", "text/plain"),
            ("plot.PNG", "image/png"),
            ("model.pkl", "application/octet-stream"),
            (".hidden", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), ty, "{name}");
        }
        assert_eq!(disposition("MLmodel"), "attachment; filename=MLmodel");
        assert_eq!(disposition("data.bin"), "attachment; filename=data.bin");
        assert_eq!(
            disposition("my file.txt"),
            "attachment; filename=\"my file.txt\""
        );
        assert_eq!(disposition("a\"b"), "attachment; filename=\"a_b\"");
        assert_eq!(
            disposition("résumé.txt"),
            "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%2Etxt"
        );
    }
}
