//! The storage plug point: the `TrackingStore` trait, speaking only `plumb-core` domain types.
//!
//! Rules about input *shape* are checked in `plumb_core::validation` before a store is called;
//! rules that depend on stored *state* (param immutability, lifecycle checks, latest-metric
//! updates, de-duplication) are enforced inside the store, transactionally, and pinned by the
//! conformance suite in [`conformance`] that every backend runs.

use async_trait::async_trait;
use plumb_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput,
    Page, Param, Run, RunInfo, RunMetric, RunStatus, Tag, ViewType,
};
use plumb_core::registry::{ModelVersion, RegisteredModel, RegistryChange, Stage};
use plumb_core::search::{Clause, OrderKey};
use plumb_core::Result;

#[cfg(feature = "testing")]
pub mod conformance;
pub mod db;
pub mod migrations;
pub mod monitoring;
pub mod queries;
pub mod shared;
pub mod sql;
pub mod traces;
pub mod uri;
pub mod webhooks;

/// A new experiment. `artifact_location: None` means `<default artifact root>/<experiment_id>`.
#[derive(Debug, Clone, Default)]
pub struct NewExperiment {
    pub name: String,
    pub artifact_location: Option<String>,
    pub tags: Vec<Tag>,
}

/// An experiment search, already parsed.
#[derive(Debug, Clone, Default)]
pub struct ExperimentQuery {
    pub filter: Vec<Clause>,
    pub order_by: Vec<OrderKey>,
    pub view_type: ViewType,
    pub max_results: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub experiment_id: String,
    pub user_id: String,
    /// `None` or empty: the store picks a name and records it as the `mlflow.runName` tag.
    pub run_name: Option<String>,
    pub start_time: Option<i64>,
    pub tags: Vec<Tag>,
}

/// Fields of `runs/update`; only the present ones are applied.
#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

/// A run search, already parsed.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Vec<Clause>,
    pub order_by: Vec<OrderKey>,
    pub view_type: ViewType,
    pub max_results: i64,
    pub offset: i64,
}

/// Validated metrics, params and tags to write to one run in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// `get-history-bulk-interval`: evenly sampled points of one key over several runs.
#[derive(Debug, Clone)]
pub struct IntervalQuery {
    pub run_ids: Vec<String>,
    pub metric_key: String,
    /// Inclusive step range, both or neither.
    pub steps: Option<(i64, i64)>,
    pub max_results: usize,
}

#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// A logged-model search, already parsed. `order_by` keys are attributes or metrics.
#[derive(Debug, Clone, Default)]
pub struct LoggedModelQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Vec<Clause>,
    pub order_by: Vec<OrderKey>,
    pub max_results: i64,
    pub offset: i64,
    /// `datasets`: only models with a metric logged for one of these (name and digest; no
    /// digest matches metrics logged without one, as MLflow compares).
    pub datasets: Vec<(String, Option<String>)>,
}

/// What `plumb gc` may remove: runs and experiments in the `deleted` stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub runs: Vec<DeletedRun>,
    pub experiments: Vec<DeletedExperiment>,
}

/// A run in the `deleted` stage, with where its artifacts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRun {
    pub run_id: String,
    pub experiment_id: String,
    pub artifact_uri: String,
}

/// An experiment in the `deleted` stage, with its artifact location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedExperiment {
    pub experiment_id: String,
    pub artifact_location: String,
}

/// Everything tracking needs from a database. Implemented by every backend; the concrete one is
/// chosen in the binary's wiring only.
#[async_trait]
pub trait TrackingStore: Send + Sync + 'static {
    /// Cheap liveness check of the database (used by `/health`).
    async fn ping(&self) -> Result<()>;

    // -- experiments ---------------------------------------------------------------------------
    async fn create_experiment(&self, new: NewExperiment) -> Result<String>;
    /// Any lifecycle stage.
    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment>;
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment>;
    async fn search_experiments(&self, query: ExperimentQuery) -> Result<Page<Experiment>>;
    async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()>;
    /// Soft delete; marks the experiment's runs deleted too.
    async fn delete_experiment(&self, experiment_id: &str) -> Result<()>;
    async fn restore_experiment(&self, experiment_id: &str) -> Result<()>;
    async fn set_experiment_tag(&self, experiment_id: &str, tag: Tag) -> Result<()>;
    async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()>;

    // -- runs ----------------------------------------------------------------------------------
    async fn create_run(&self, new: NewRun) -> Result<Run>;
    /// Any lifecycle stage.
    async fn get_run(&self, run_id: &str) -> Result<Run>;
    async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo>;
    async fn delete_run(&self, run_id: &str) -> Result<()>;
    async fn restore_run(&self, run_id: &str) -> Result<()>;
    async fn search_runs(&self, query: RunQuery) -> Result<Page<Run>>;
    /// Writes metrics, params and tags atomically; the run must be active.
    async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()>;
    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()>;
    /// MLflow 2's `runs/log-model`: appends `model_json` to the `mlflow.log-model.history` tag.
    async fn append_logged_model_history(&self, run_id: &str, model_json: &str) -> Result<()>;
    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()>;
    async fn log_outputs(&self, run_id: &str, models: Vec<ModelOutput>) -> Result<()>;
    async fn search_datasets(&self, experiment_ids: Vec<String>) -> Result<Vec<DatasetSummary>>;

    // -- metric history ------------------------------------------------------------------------
    /// Points ordered by (timestamp, step, value); `limit: None` returns them all.
    async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<Page<Metric>>;
    /// Points of several runs, ordered by run id then (timestamp, step, value), at most `limit`.
    /// Every backend answers it the same way, from [`TrackingStore::metric_history`].
    async fn metric_history_bulk(
        &self,
        run_ids: Vec<String>,
        key: &str,
        limit: i64,
    ) -> Result<Vec<RunMetric>> {
        let mut sorted = run_ids;
        sorted.sort();
        sorted.dedup();
        let mut out = Vec::new();
        for run_id in sorted {
            let remaining = limit - out.len() as i64;
            if remaining <= 0 {
                break;
            }
            let page = self
                .metric_history(&run_id, key, 0, Some(remaining))
                .await?;
            out.extend(page.items.into_iter().map(|metric| RunMetric {
                run_id: run_id.clone(),
                metric,
            }));
        }
        Ok(out)
    }
    async fn metric_history_bulk_interval(&self, query: IntervalQuery) -> Result<Vec<RunMetric>>;

    // -- logged models (MLflow 3) --------------------------------------------------------------
    async fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel>;
    async fn get_logged_model(&self, model_id: &str, allow_deleted: bool) -> Result<LoggedModel>;
    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel>;
    async fn delete_logged_model(&self, model_id: &str) -> Result<()>;
    async fn set_logged_model_tags(&self, model_id: &str, tags: Vec<Tag>) -> Result<()>;
    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()>;
    async fn log_logged_model_params(&self, model_id: &str, params: Vec<Param>) -> Result<()>;
    async fn search_logged_models(&self, query: LoggedModelQuery) -> Result<Page<LoggedModel>>;

    // -- garbage collection --------------------------------------------------------------------
    /// Deleted runs whose `deleted_time`, and deleted experiments whose `last_update_time`, is
    /// before `before_ms` (all of them when `None`).
    async fn deleted(&self, before_ms: Option<i64>) -> Result<Deleted>;
    /// Removes deleted runs and experiments for good, with everything that belongs to them
    /// (an experiment's runs, datasets and logged models too). Refuses, changing nothing, an id
    /// that is not in the `deleted` stage.
    async fn purge(&self, run_ids: Vec<String>, experiment_ids: Vec<String>) -> Result<()>;

    // -- import (`plumb import`): original ids, names, times and stages are kept -----------------
    /// Creates the experiment with its id; `false` (nothing changed) when that id exists.
    async fn import_experiment(&self, experiment: Experiment) -> Result<bool>;
    /// Creates the run with its id, info, params, tags, dataset and model inputs and model
    /// outputs (not its metrics: see
    /// [`TrackingStore::import_points`]); `false` when that run id exists.
    async fn import_run(&self, run: Run) -> Result<bool>;
    /// Adds metric points to a run in any stage; points already stored are skipped, so an
    /// interrupted import can simply run again. Latest values follow.
    async fn import_points(&self, run_id: &str, points: Vec<Metric>) -> Result<()>;
    /// Creates the logged model with its id, times, status, stage, tags, params and metric
    /// points (`metrics`, each with the run it was logged to); `false` when that id exists.
    async fn import_logged_model(&self, model: LoggedModel) -> Result<bool>;
}

/// A registered-model or model-version search, already parsed.
#[derive(Debug, Clone, Default)]
pub struct RegistryQuery {
    pub filter: Vec<Clause>,
    /// Leave out prompts (registered models tagged `mlflow.prompt.is_prompt = 'true'`).
    pub exclude_prompts: bool,
    pub order_by: Vec<OrderKey>,
    pub max_results: i64,
    pub offset: i64,
}

/// A new model version; `source` was checked and `storage_location` resolved by the caller.
#[derive(Debug, Clone, Default)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    pub model_id: Option<String>,
    pub storage_location: Option<String>,
}

/// The model registry. Version numbers are allocated atomically inside the store.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    async fn create_registered_model(
        &self,
        name: &str,
        tags: Vec<Tag>,
        description: Option<String>,
    ) -> Result<RegisteredModel>;
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;
    /// Renames the model; its versions, tags and aliases follow.
    async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel>;
    async fn update_registered_model(
        &self,
        name: &str,
        description: Option<String>,
    ) -> Result<RegisteredModel>;
    /// Hard delete, with versions, tags and aliases.
    async fn delete_registered_model(&self, name: &str) -> Result<()>;
    async fn search_registered_models(&self, query: RegistryQuery)
        -> Result<Page<RegisteredModel>>;
    /// The newest version per stage; empty `stages` means all four.
    async fn get_latest_versions(
        &self,
        name: &str,
        stages: Vec<Stage>,
    ) -> Result<Vec<ModelVersion>>;
    async fn set_registered_model_tag(&self, name: &str, tag: Tag) -> Result<()>;
    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()>;
    async fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()>;
    async fn delete_alias(&self, name: &str, alias: &str) -> Result<()>;
    async fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;
    /// The model's newest `max` alias and stage changes, oldest first (plumb's record; MLflow
    /// keeps none). A model that does not exist is RESOURCE_DOES_NOT_EXIST.
    async fn registry_changes(&self, name: &str, max: i64) -> Result<Vec<RegistryChange>>;

    async fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion>;
    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion>;
    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<String>,
    ) -> Result<ModelVersion>;
    /// Soft delete: the version disappears, its number is never reused.
    async fn delete_model_version(&self, name: &str, version: i64) -> Result<()>;
    async fn search_model_versions(&self, query: RegistryQuery) -> Result<Page<ModelVersion>>;
    async fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion>;
    async fn set_model_version_tag(&self, name: &str, version: i64, tag: Tag) -> Result<()>;
    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()>;

    /// Creates the registered model with its times, description and tags (aliases come after
    /// the versions, through [`RegistryStore::set_alias`]); `false` when the name exists.
    async fn import_registered_model(&self, model: RegisteredModel) -> Result<bool>;
    /// Creates the version with its number, stage, times and tags; `false` when it exists.
    async fn import_model_version(&self, version: ModelVersion) -> Result<bool>;
}

/// All of storage: tracking, the registry, monitoring, webhooks and traces; every backend implements them
/// (one database).
pub trait Store:
    TrackingStore
    + RegistryStore
    + monitoring::MonitorStore
    + webhooks::WebhookStore
    + traces::TraceStore
{
}
impl<T> Store for T where
    T: TrackingStore
        + RegistryStore
        + monitoring::MonitorStore
        + webhooks::WebhookStore
        + traces::TraceStore
{
}

/// Every experiment, in any lifecycle stage, read page by page (for checks over all
/// experiments' artifact locations: creating one, `plumb gc`).
pub async fn all_experiments(store: &dyn TrackingStore) -> Result<Vec<Experiment>> {
    let mut out = Vec::new();
    loop {
        let page = store
            .search_experiments(ExperimentQuery {
                filter: Vec::new(),
                order_by: Vec::new(),
                view_type: ViewType::All,
                max_results: plumb_core::validation::SEARCH_MAX_RESULTS_THRESHOLD,
                offset: i64::try_from(out.len()).unwrap_or(i64::MAX),
            })
            .await?;
        let done = page.next_page_token.is_none() || page.items.is_empty();
        out.extend(page.items);
        if done {
            return Ok(out);
        }
    }
}

/// Joins an artifact root and a child the way MLflow does (`mlflow-artifacts:/` + `1`).
pub fn join_artifact_uri(root: &str, child: &str) -> String {
    if root.ends_with(":/") || root.ends_with(":///") {
        format!("{root}{child}")
    } else {
        format!("{}/{child}", root.trim_end_matches('/'))
    }
}

/// The tag MLflow keeps a run's name in, besides the run row.
pub const RUN_NAME_TAG: &str = "mlflow.runName";
/// The tag MLflow 2's `runs/log-model` appends to.
pub const LOG_MODEL_HISTORY_TAG: &str = "mlflow.log-model.history";
/// The input tag that names a dataset's context (e.g. `training`).
pub const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";
