//! Domain entities of tracking: experiments, runs, metrics, params, tags, datasets, logged models.

/// `active` or `deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// Which lifecycle stages a search sees (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE_ONLY" | "1" => Some(Self::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(Self::DeletedOnly),
            "ALL" | "3" => Some(Self::All),
            _ => None,
        }
    }
    pub fn includes(self, stage: LifecycleStage) -> bool {
        matches!(
            (self, stage),
            (Self::All, _)
                | (Self::ActiveOnly, LifecycleStage::Active)
                | (Self::DeletedOnly, LifecycleStage::Deleted)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        Self::Running,
        Self::Scheduled,
        Self::Finished,
        Self::Failed,
        Self::Killed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Scheduled => "SCHEDULED",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }
    /// Accepts the enum name or its proto number.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RUNNING" | "1" => Some(Self::Running),
            "SCHEDULED" | "2" => Some(Self::Scheduled),
            "FINISHED" | "3" => Some(Self::Finished),
            "FAILED" | "4" => Some(Self::Failed),
            "KILLED" | "5" => Some(Self::Killed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Params have the same shape as tags.
pub type Param = Tag;

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: LifecycleStage,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<Tag>,
}

/// One metric point. `value` may be NaN or infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// MLflow 3: the logged model this point also belongs to.
    pub model_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

impl Metric {
    pub fn new(key: impl Into<String>, value: f64, timestamp: i64, step: i64) -> Self {
        Self {
            key: key.into(),
            value,
            timestamp,
            step,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        }
    }
}

/// A metric point together with the run it belongs to (bulk history reads).
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetric {
    pub run_id: String,
    pub metric: Metric,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: LifecycleStage,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunData {
    /// Latest value per key.
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInput {
    pub tags: Vec<Tag>,
    pub dataset: Dataset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunInputs {
    pub dataset_inputs: Vec<DatasetInput>,
    pub model_inputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: Vec<ModelOutput>,
}

/// A dataset as the experiment-level summary shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    pub context: Option<String>,
}

/// MLflow 3 `LoggedModelStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedModelStatus {
    Unspecified,
    Pending,
    Ready,
    UploadFailed,
}

impl LoggedModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "LOGGED_MODEL_STATUS_UNSPECIFIED",
            Self::Pending => "LOGGED_MODEL_PENDING",
            Self::Ready => "LOGGED_MODEL_READY",
            Self::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Unspecified => 0,
            Self::Pending => 1,
            Self::Ready => 2,
            Self::UploadFailed => 3,
        }
    }
    pub fn from_i64(n: i64) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Ready,
            3 => Self::UploadFailed,
            _ => Self::Unspecified,
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LOGGED_MODEL_STATUS_UNSPECIFIED" | "0" => Some(Self::Unspecified),
            "LOGGED_MODEL_PENDING" | "1" => Some(Self::Pending),
            "LOGGED_MODEL_READY" | "2" => Some(Self::Ready),
            "LOGGED_MODEL_UPLOAD_FAILED" | "3" => Some(Self::UploadFailed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_uri: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub status: LoggedModelStatus,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub tags: Vec<Tag>,
    pub params: Vec<Param>,
    /// Points logged with this model's id; `run_id` is the run they were logged to.
    pub metrics: Vec<RunMetric>,
}

/// A page of results and the token of the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}
