//! A monitor's spec: what is watched, where its numbers come from, its baseline and rules.
//! The JSON shape is the API's and, read from YAML, the `plumb monitor apply` file's; every
//! error names the field (`rules[1].window: ...`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metric::{MetricRef, Origin};
use crate::threshold::Gate;

/// A monitor as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What is watched: `models:/<name>@<alias>` (followed when the alias moves),
    /// `models:/<name>/<version>`, a logged model `models:/m-<id>` or `runs:/<run_id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub task: Task,
    /// The class precision, recall and F1 are about; unset: `1`/`true` for binary labels,
    /// else the macro average over classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    #[serde(default)]
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Where alert state changes go (delivered by `plumb-webhooks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyTarget>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Where a monitor's alert changes (firing, resolved) are sent: exactly one of `webhook`
/// (plumb's JSON body, signed when `secret_env` names a `PLUMB_NOTIFY_SECRET...` variable of
/// the server), `slack` (an incoming-webhook URL) or `alertmanager` (its base URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// The prefix a notification secret's variable must have: a monitor spec, which any API
/// client can write, must not make the server sign with an arbitrary variable of its
/// environment (a cloud key, say).
pub const SECRET_ENV_PREFIX: &str = "PLUMB_NOTIFY_SECRET";

/// A notification target's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    Webhook,
    Slack,
    Alertmanager,
}

impl NotifyTarget {
    /// The kind and URL (one of the three is set, as [`NotifyTarget::check`] ensures).
    pub fn kind_and_url(&self) -> Option<(NotifyKind, &str)> {
        match (&self.webhook, &self.slack, &self.alertmanager) {
            (Some(u), None, None) => Some((NotifyKind::Webhook, u)),
            (None, Some(u), None) => Some((NotifyKind::Slack, u)),
            (None, None, Some(u)) => Some((NotifyKind::Alertmanager, u)),
            _ => None,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        let (kind, url) = self
            .kind_and_url()
            .ok_or("give exactly one of webhook, slack or alertmanager (a URL)")?;
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok
            || url.len() > 2048
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "{}: must be an http(s) URL of at most 2048 characters",
                match kind {
                    NotifyKind::Webhook => "webhook",
                    NotifyKind::Slack => "slack",
                    NotifyKind::Alertmanager => "alertmanager",
                }
            ));
        }
        if let Some(var) = &self.secret_env {
            let tail = var.strip_prefix(SECRET_ENV_PREFIX);
            if !tail.is_some_and(|t| {
                t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            }) {
                return Err(format!(
                    "secret_env: must name a variable starting with {SECRET_ENV_PREFIX} \
                     (capitals, digits and _), such as {SECRET_ENV_PREFIX}_ML"
                ));
            }
            if kind != NotifyKind::Webhook {
                return Err("secret_env: only webhook targets are signed".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Classification,
    Regression,
}

/// Where a monitor's numbers come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Inference events posted to the monitor.
    #[serde(default = "yes")]
    pub events: bool,
    /// An MLflow run filter: metric points logged to matching active runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<String>,
    /// Experiments (names or ids) the runs filter searches; empty: all active experiments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<String>,
    /// MLflow traces logged to experiments (a traced LLM service, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TraceSource>,
}

/// Traces a monitor watches: those of `experiments` meeting every one of `filters` (MLflow's
/// trace-metrics filters, `trace.tag.env = 'prod'`), or their spans named `span`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSource {
    /// Experiment names or ids (1 to 100).
    pub experiments: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// Watch the spans of this name (latency, errors, count) instead of whole traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<String>,
}

impl TraceSource {
    fn check(&self) -> Result<(), String> {
        if self.experiments.is_empty() || self.experiments.len() > 100 {
            return Err("source.traces.experiments: name 1 to 100 experiments".into());
        }
        if let Some(e) = self
            .experiments
            .iter()
            .find(|e| e.is_empty() || e.len() > 500 || e.chars().any(char::is_control))
        {
            return Err(format!(
                "source.traces.experiments: '{e}' is not an experiment name or id"
            ));
        }
        if self.filters.len() > 20 {
            return Err("source.traces.filters: at most 20".into());
        }
        for (i, f) in self.filters.iter().enumerate() {
            let parsed = plumb_core::search::parse_metric_filter(f)
                .map_err(|e| format!("source.traces.filters[{i}]: {}", e.message))?;
            match parsed.view() {
                "trace" => {}
                "span" if self.span.is_some() => {}
                "span" => {
                    return Err(format!(
                        "source.traces.filters[{i}]: span filters need source.traces.span"
                    ))
                }
                _ => {
                    return Err(format!(
                        "source.traces.filters[{i}]: only trace.* and span.* filters"
                    ))
                }
            }
        }
        if let Some(s) = &self.span {
            if s.is_empty() || s.len() > 500 || s.chars().any(char::is_control) {
                return Err("source.traces.span: 1 to 500 printable characters".into());
            }
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

impl Default for Source {
    fn default() -> Self {
        Self {
            events: true,
            runs: None,
            experiments: Vec::new(),
            traces: None,
        }
    }
}

/// One rule: a windowed metric, a condition, and Prometheus-like `for` / `keep_firing_for`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub metric: String,
    #[serde(default = "default_window")]
    pub window: String,
    #[serde(default = "zero", rename = "for")]
    pub for_: String,
    #[serde(default = "zero")]
    pub keep_firing_for: String,
    /// Fewer samples in the window: no verdict (no alert from three requests).
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    #[serde(default = "default_severity")]
    pub severity: String,
    /// `events` or `runs`; unset: events for event metrics, else runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Origin>,
    /// The baseline's metric to compare with, when its name differs (`val_accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_drop: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_rise: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_drop: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_rise: Option<f64>,
    /// MLflow `MetricThreshold` fields: the rule fires when the window fails that check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greater_is_better: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_absolute_change: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_relative_change: Option<f64>,
}

fn default_window() -> String {
    "5m".to_string()
}
fn zero() -> String {
    "0s".to_string()
}
fn default_min_samples() -> u64 {
    10
}
fn default_severity() -> String {
    "warning".to_string()
}

/// What a rule compares its window's value with.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Above(f64),
    Below(f64),
    RelativeDrop(f64),
    RelativeRise(f64),
    AbsoluteDrop(f64),
    AbsoluteRise(f64),
    Gate(Gate),
}

impl Condition {
    pub fn needs_baseline(&self) -> bool {
        match self {
            Self::Above(_) | Self::Below(_) => false,
            Self::Gate(g) => g.min_absolute_change.is_some() || g.min_relative_change.is_some(),
            _ => true,
        }
    }
}

/// A rule made ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub metric: MetricRef,
    pub origin: Origin,
    pub window: Duration,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub condition: Condition,
}

/// A baseline made ready to resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum Baseline {
    /// `runs:/<id>`, `models:/<name>/<version>`, `models:/<name>@<alias>`: that run's metrics.
    Uri(String),
    /// Fixed numbers by metric name.
    Values(BTreeMap<String, f64>),
    /// The monitor's own value over a past window.
    Window { start_ms: i64, end_ms: i64 },
    /// The monitor's own value over its first stretch of data (e.g. 24 h after deploy).
    First(Duration),
}

const MAX_NAME: usize = 128;
const MAX_RULES: usize = 100;

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// Reads a duration such as `30s`, `5m`, `1h30m`, `2d`.
pub fn duration(field: &str, s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{field}: '{s}' is not a duration such as 30s, 5m or 1h ({e})"))
}

/// A model or run URI a monitor may name.
pub fn check_uri(field: &str, uri: &str) -> Result<(), String> {
    let ok = if let Some(rest) = uri.strip_prefix("runs:/") {
        let id = rest.split('/').next().unwrap_or("");
        !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    } else if let Some(rest) = uri.strip_prefix("models:/") {
        match rest.split_once('@') {
            Some((name, alias)) => !name.is_empty() && !alias.is_empty() && !alias.contains('/'),
            None => match rest.rsplit_once('/') {
                Some((name, v)) => !name.is_empty() && v.parse::<u64>().is_ok(),
                // An MLflow 3 logged model: `models:/m-<id>`.
                None => {
                    rest.len() > 2
                        && rest.starts_with("m-")
                        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }
            },
        }
    } else {
        false
    };
    if ok && !uri.chars().any(char::is_control) && uri.len() <= 1000 {
        Ok(())
    } else {
        Err(format!(
            "{field}: '{uri}' is not runs:/<run_id>, models:/<name>/<version>, \
             models:/<name>@<alias> or models:/<logged model id>"
        ))
    }
}

impl MonitorSpec {
    /// Reads and checks a spec from JSON; the error names the offending field.
    pub fn from_json(v: Value) -> Result<Self, String> {
        let spec: MonitorSpec = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        spec.check()?;
        Ok(spec)
    }

    /// Every rule compiled, in order; also the check behind [`MonitorSpec::from_json`].
    pub fn compile(&self) -> Result<Vec<Compiled>, String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            if !name_ok(&r.name) {
                return Err(format!(
                    "{}: '{}' must be 1-{MAX_NAME} letters, digits, '-', '_' or '.'",
                    at("name"),
                    r.name
                ));
            }
            if !seen.insert(r.name.as_str()) {
                return Err(format!("{}: '{}' is used by two rules", at("name"), r.name));
            }
            let metric =
                MetricRef::parse(&r.metric).map_err(|e| format!("{}: {e}", at("metric")))?;
            let origin = self.origin_of(&metric, &r.metric, r.from).map_err(|e| {
                format!(
                    "{}: {e}",
                    at(if r.from.is_some() { "from" } else { "metric" })
                )
            })?;
            let window = duration(&at("window"), &r.window)?;
            if window < Duration::from_secs(60) || window > Duration::from_secs(90 * 86_400) {
                return Err(format!(
                    "{}: '{}' must be between 1m and 90d (windows count whole minutes)",
                    at("window"),
                    r.window
                ));
            }
            let for_ = duration(&at("for"), &r.for_)?;
            let keep_firing_for = duration(&at("keep_firing_for"), &r.keep_firing_for)?;
            for (field, d, text) in [
                ("for", for_, &r.for_),
                ("keep_firing_for", keep_firing_for, &r.keep_firing_for),
            ] {
                if d > Duration::from_secs(30 * 86_400) {
                    return Err(format!("{}: '{text}' is longer than 30d", at(field)));
                }
            }
            if r.severity.is_empty()
                || r.severity.len() > 64
                || r.severity.chars().any(char::is_control)
            {
                return Err(format!(
                    "{}: must be 1-64 printable characters",
                    at("severity")
                ));
            }
            let condition = condition(r).map_err(|e| format!("rules[{i}]: {e}"))?;
            if condition.needs_baseline() && self.baseline.is_none() {
                return Err(format!(
                    "rules[{i}]: compares with the baseline, but the monitor has no baseline"
                ));
            }
            out.push(Compiled {
                metric,
                origin,
                window,
                for_,
                keep_firing_for,
                condition,
            });
        }
        Ok(out)
    }

    /// Where a metric's numbers come from: `from` when given (checked against the sources),
    /// else events for an event metric when the monitor takes events, else traces for a trace
    /// metric when it watches traces, else runs.
    pub fn origin_of(
        &self,
        metric: &MetricRef,
        text: &str,
        from: Option<Origin>,
    ) -> Result<Origin, String> {
        let src = &self.source;
        let origin = match from {
            Some(o) => o,
            None if src.events && metric.is_event_metric() => Origin::Events,
            None if src.traces.is_some() && metric.is_trace_metric() => Origin::Traces,
            None if src.runs.is_some() => Origin::Runs,
            None => {
                return Err(format!(
                    "'{text}' is not an event metric ({}){} and the monitor has no source.runs \
                     filter",
                    crate::metric::EVENT_METRICS.join(", "),
                    if src.traces.is_some() {
                        format!(
                            " nor a trace metric ({})",
                            crate::metric::TRACE_METRICS.join(", ")
                        )
                    } else {
                        String::new()
                    }
                ))
            }
        };
        match origin {
            Origin::Events if !src.events => Err("events, but source.events is false".into()),
            Origin::Events if !metric.is_event_metric() => Err(format!(
                "'{text}' is not an event metric ({})",
                crate::metric::EVENT_METRICS.join(", ")
            )),
            Origin::Runs if src.runs.is_none() => {
                Err("runs, but the monitor has no source.runs".into())
            }
            Origin::Traces if src.traces.is_none() => {
                Err("traces, but the monitor has no source.traces".into())
            }
            Origin::Traces if !metric.is_trace_metric() => Err(format!(
                "'{text}' is not a trace metric ({}; aggregations on latency_ms and tokens)",
                crate::metric::TRACE_METRICS.join(", ")
            )),
            Origin::Traces
                if src.traces.as_ref().is_some_and(|t| t.span.is_some())
                    && metric.name.ends_with("_tokens") =>
            {
                Err(format!(
                    "'{text}': token counts are kept per trace, not per span"
                ))
            }
            o => Ok(o),
        }
    }

    fn check(&self) -> Result<(), String> {
        if !name_ok(&self.name) {
            return Err(format!(
                "name: '{}' must be 1-{MAX_NAME} letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        if let Some(m) = &self.model {
            check_uri("model", m)?;
        }
        if let Some(f) = &self.source.runs {
            plumb_core::search::parse_filter(plumb_core::search::Domain::Runs, f)
                .map_err(|e| format!("source.runs: {}", e.message))?;
        }
        if let Some(t) = &self.source.traces {
            t.check()?;
        }
        if !self.source.events && self.source.runs.is_none() && self.source.traces.is_none() {
            return Err("source: needs events: true, a runs filter or traces".to_string());
        }
        if self.rules.len() > MAX_RULES {
            return Err(format!("rules: at most {MAX_RULES} rules"));
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 5000) {
            return Err("description: at most 5000 bytes".to_string());
        }
        if self.source.experiments.len() > 100 {
            return Err("source.experiments: at most 100".to_string());
        }
        if self.notify.len() > 20 {
            return Err("notify: at most 20 targets".to_string());
        }
        if self.labels.len() > 50
            || self
                .labels
                .iter()
                .any(|(k, v)| k.is_empty() || k.len() > 250 || v.len() > 250)
        {
            return Err("labels: at most 50, keys 1-250 and values up to 250 bytes".to_string());
        }
        if let Some(b) = &self.baseline {
            self.baseline_of(b)?;
        }
        for (i, n) in self.notify.iter().enumerate() {
            n.check().map_err(|e| format!("notify[{i}]: {e}"))?;
        }
        self.compile().map(|_| ())
    }

    /// The baseline, read.
    pub fn baseline(&self) -> Option<Baseline> {
        self.baseline
            .as_ref()
            .and_then(|b| self.baseline_of(b).ok())
    }

    fn baseline_of(&self, b: &Value) -> Result<Baseline, String> {
        let bad = || {
            "baseline: must be a runs:/ or models:/ URI, {values: {metric: number}}, \
             {window: {start_ms, end_ms}} or {first: DURATION}"
                .to_string()
        };
        match b {
            Value::String(uri) => {
                check_uri("baseline", uri)?;
                Ok(Baseline::Uri(uri.clone()))
            }
            Value::Object(o) if o.len() == 1 => {
                let (k, v) = o.iter().next().ok_or_else(bad)?;
                match (k.as_str(), v) {
                    ("uri", Value::String(uri)) => {
                        check_uri("baseline.uri", uri)?;
                        Ok(Baseline::Uri(uri.clone()))
                    }
                    ("values", Value::Object(m)) => {
                        let mut out = BTreeMap::new();
                        for (name, n) in m {
                            let x = n.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                                format!("baseline.values.{name}: must be a finite number")
                            })?;
                            out.insert(name.clone(), x);
                        }
                        Ok(Baseline::Values(out))
                    }
                    ("window", Value::Object(w)) => {
                        let get =
                            |f: &str| {
                                w.get(f).and_then(Value::as_i64).filter(|v| *v >= 0).ok_or_else(|| {
                                format!("baseline.window.{f}: must be milliseconds since the epoch")
                            })
                            };
                        let (start_ms, end_ms) = (get("start_ms")?, get("end_ms")?);
                        if end_ms <= start_ms || w.len() != 2 {
                            return Err(
                                "baseline.window: needs start_ms < end_ms and nothing else"
                                    .to_string(),
                            );
                        }
                        Ok(Baseline::Window { start_ms, end_ms })
                    }
                    ("first", Value::String(d)) => {
                        let d = duration("baseline.first", d)?;
                        if d < Duration::from_secs(60) || d > Duration::from_secs(366 * 86_400) {
                            return Err("baseline.first: between 1m and 366d".to_string());
                        }
                        Ok(Baseline::First(d))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

fn finite(field: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !x.is_finite() => Err(format!("{field}: must be a finite number")),
        other => Ok(other),
    }
}

fn condition(r: &Rule) -> Result<Condition, String> {
    let mut found = Vec::new();
    let simple = [
        ("above", r.above),
        ("below", r.below),
        ("relative_drop", r.relative_drop),
        ("relative_rise", r.relative_rise),
        ("absolute_drop", r.absolute_drop),
        ("absolute_rise", r.absolute_rise),
    ];
    for (name, v) in simple {
        if let Some(x) = finite(name, v)? {
            found.push((name, x));
        }
    }
    let gate = r.greater_is_better.is_some()
        || r.threshold.is_some()
        || r.min_absolute_change.is_some()
        || r.min_relative_change.is_some();
    let kinds = found.len() + usize::from(gate);
    if kinds != 1 {
        return Err(
            "needs exactly one condition: above, below, relative_drop, relative_rise, \
             absolute_drop, absolute_rise, or MLflow's MetricThreshold fields \
             (greater_is_better with threshold / min_absolute_change / min_relative_change)"
                .to_string(),
        );
    }
    if gate {
        let greater_is_better = r
            .greater_is_better
            .ok_or("greater_is_better: needed with threshold / min_*_change")?;
        let g = Gate {
            greater_is_better,
            threshold: finite("threshold", r.threshold)?,
            min_absolute_change: finite("min_absolute_change", r.min_absolute_change)?,
            min_relative_change: finite("min_relative_change", r.min_relative_change)?,
        };
        if g.threshold.is_none()
            && g.min_absolute_change.is_none()
            && g.min_relative_change.is_none()
        {
            return Err("greater_is_better: needs threshold or a min_*_change".to_string());
        }
        g.check()?;
        return Ok(Condition::Gate(g));
    }
    let (name, x) = found[0];
    let relative = name.starts_with("relative");
    if name != "above" && name != "below" && (x < 0.0 || (relative && x > 1.0e6)) {
        return Err(format!("{name}: must not be negative"));
    }
    Ok(match name {
        "above" => Condition::Above(x),
        "below" => Condition::Below(x),
        "relative_drop" => Condition::RelativeDrop(x),
        "relative_rise" => Condition::RelativeRise(x),
        "absolute_drop" => Condition::AbsoluteDrop(x),
        _ => Condition::AbsoluteRise(x),
    })
}

/// Reads the `monitors:` list of a YAML (or JSON) monitors file.
pub fn from_yaml_file(text: &str) -> Result<Vec<MonitorSpec>, String> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let doc = docs.into_iter().next().ok_or("the file is empty")?;
    let v = crate::yaml::to_json(&doc)?;
    let list = match v.get("monitors") {
        Some(Value::Array(list)) => list.clone(),
        _ => return Err("the file needs a top-level 'monitors:' list".to_string()),
    };
    if let Value::Object(o) = &v {
        if let Some(k) = o.keys().find(|k| *k != "monitors") {
            return Err(format!("{k}: unknown top-level key (only 'monitors')"));
        }
    }
    let mut out = Vec::with_capacity(list.len());
    let mut names = std::collections::BTreeSet::new();
    for (i, m) in list.into_iter().enumerate() {
        let spec = MonitorSpec::from_json(m).map_err(|e| format!("monitors[{i}].{e}"))?;
        if !names.insert(spec.name.clone()) {
            return Err(format!("monitors[{i}].name: '{}' appears twice", spec.name));
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod notify_tests {
    use super::*;

    fn target(v: Value) -> Result<(), String> {
        let t: NotifyTarget = serde_json::from_value(v).map_err(|e| e.to_string())?;
        t.check()
    }

    #[test]
    fn notify_targets_are_one_url_and_an_allowed_secret_variable() {
        use serde_json::json;
        assert!(target(json!({"webhook": "https://h.example/x"})).is_ok());
        assert!(target(json!({"slack": "https://hooks.slack.com/services/T/B/X"})).is_ok());
        assert!(target(json!({"alertmanager": "http://am:9093"})).is_ok());
        assert!(
            target(json!({"webhook": "https://h/x", "secret_env": "PLUMB_NOTIFY_SECRET_ML"}))
                .is_ok()
        );
        for bad in [
            json!({}),
            json!({"webhook": "https://a/x", "slack": "https://b/x"}),
            json!({"webhook": "ftp://a/x"}),
            json!({"webhook": "https://a/x\r\nHost: evil"}),
            json!({"webhook": "https://a/x", "secret_env": "AWS_SECRET_ACCESS_KEY"}),
            json!({"webhook": "https://a/x", "secret_env": "PLUMB_NOTIFY_SECRET_ml"}),
            json!({"slack": "https://a/x", "secret_env": "PLUMB_NOTIFY_SECRET"}),
            json!({"webhook": "https://a/x", "sms": "+1555"}),
        ] {
            assert!(target(bad.clone()).is_err(), "{bad}");
        }
    }
}
