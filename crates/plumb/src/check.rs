//! `plumb check`: a CI gate. Compares a candidate's metrics (a run, or the run behind a model
//! version or alias) with a baseline's by the rules of MLflow's `MetricThreshold` (threshold,
//! min_absolute_change, min_relative_change, greater_is_better), so an offline gate here and
//! `mlflow.validate_evaluation_results` agree. Exit code 0: every metric passed; 1: one failed;
//! 2: the check could not be made (bad arguments, unknown run or model, unreachable server).

use std::collections::HashMap;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context};
use axum::http::Method;
use serde::Serialize;
use serde_json::{json, Value};

use plumb_monitor::threshold::Gate;

use crate::cli::{CheckArgs, Format};
use crate::client::Client;
use crate::output;

/// One `--metric NAME:higher|lower[:threshold=X][:min_abs=X][:min_rel=X]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRule {
    pub metric: String,
    pub greater_is_better: bool,
    pub threshold: Option<f64>,
    pub min_absolute_change: Option<f64>,
    pub min_relative_change: Option<f64>,
}

impl FromStr for MetricRule {
    type Err = String;

    /// The name may hold `:` itself: the direction is the last `higher`/`lower` segment that is
    /// followed only by `key=value` segments.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let options_from = parts
            .iter()
            .rposition(|p| !p.contains('='))
            .ok_or_else(|| format!("'{s}' has no metric name"))?;
        let direction = parts[options_from];
        let greater_is_better = match direction {
            "higher" | "greater" => true,
            "lower" | "less" => false,
            other => {
                return Err(format!(
                    "'{s}': expected NAME:higher or NAME:lower before the options, found \
                     '{other}'"
                ))
            }
        };
        let metric = parts[..options_from].join(":");
        if metric.trim().is_empty() {
            return Err(format!("'{s}' has no metric name"));
        }
        let mut rule = MetricRule {
            metric,
            greater_is_better,
            threshold: None,
            min_absolute_change: None,
            min_relative_change: None,
        };
        for option in &parts[options_from + 1..] {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let number: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| format!("'{option}': {key} needs a finite number"))?;
            let slot = match key.trim() {
                "threshold" => &mut rule.threshold,
                "min_abs" | "min_absolute_change" => {
                    if number <= 0.0 {
                        return Err(format!("'{option}': min_abs must be positive"));
                    }
                    &mut rule.min_absolute_change
                }
                "min_rel" | "min_relative_change" => {
                    if !(number > 0.0 && number <= 1.0) {
                        return Err(format!("'{option}': min_rel must be in (0, 1]"));
                    }
                    &mut rule.min_relative_change
                }
                other => {
                    return Err(format!(
                        "'{option}': unknown option '{other}' (threshold, min_abs, min_rel)"
                    ))
                }
            };
            if slot.replace(number).is_some() {
                return Err(format!("'{s}' sets {key} twice"));
            }
        }
        if rule.threshold.is_none()
            && rule.min_absolute_change.is_none()
            && rule.min_relative_change.is_none()
        {
            return Err(format!(
                "'{s}' checks nothing: add threshold=X, min_abs=X or min_rel=X"
            ));
        }
        Ok(rule)
    }
}

/// What a candidate or baseline URI names.
#[derive(Debug, Clone, PartialEq)]
enum Subject {
    Run(String),
    Alias { name: String, alias: String },
    Version { name: String, version: String },
}

impl FromStr for Subject {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if let Some(rest) = s.strip_prefix("runs:/") {
            let id = rest.trim_start_matches('/').split('/').next().unwrap_or("");
            if id.is_empty() {
                bail!("'{s}' names no run: use runs:/<run_id>");
            }
            return Ok(Subject::Run(id.to_string()));
        }
        if let Some(rest) = s.strip_prefix("models:/") {
            if let Some((name, alias)) = rest.rsplit_once('@') {
                if !name.is_empty() && !alias.is_empty() && !alias.contains('/') {
                    return Ok(Subject::Alias {
                        name: name.to_string(),
                        alias: alias.to_string(),
                    });
                }
            } else if let Some((name, version)) = rest.rsplit_once('/') {
                if !name.is_empty() && !version.is_empty() && version.parse::<u64>().is_ok() {
                    return Ok(Subject::Version {
                        name: name.to_string(),
                        version: version.to_string(),
                    });
                }
            }
        }
        bail!("'{s}' is not runs:/<run_id>, models:/<name>@<alias> or models:/<name>/<version>")
    }
}

/// A resolved subject: the run whose metrics are compared.
struct Resolved {
    uri: String,
    run_id: String,
    metrics: HashMap<String, f64>,
}

/// A metric value as MLflow's JSON carries it (a number, or "NaN" / "Infinity" strings).
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| match v.as_str()? {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    })
}

async fn resolve(client: &Client, uri: &str) -> anyhow::Result<Resolved> {
    // A model version names its run; an alias is read at the time of the check.
    let (path, params) = match uri.parse::<Subject>()? {
        Subject::Run(id) => return read_run(client, uri, id).await,
        Subject::Alias { name, alias } => (
            "registered-models/alias",
            json!({"name": name, "alias": alias}),
        ),
        Subject::Version { name, version } => (
            "model-versions/get",
            json!({"name": name, "version": version}),
        ),
    };
    let got = client
        .call(Method::GET, path, params)
        .await
        .with_context(|| format!("resolving {uri}"))?;
    read_run(client, uri, version_run(&got, uri)?).await
}

/// A run's latest metric values.
async fn read_run(client: &Client, uri: &str, run_id: String) -> anyhow::Result<Resolved> {
    let run = client
        .call(Method::GET, "runs/get", json!({"run_id": run_id}))
        .await
        .with_context(|| format!("reading the run of {uri}"))?;
    let metrics = run["run"]["data"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m["key"].as_str()?.to_string(), number(&m["value"])?)))
        .collect();
    Ok(Resolved {
        uri: uri.to_string(),
        run_id,
        metrics,
    })
}

fn version_run(answer: &Value, uri: &str) -> anyhow::Result<String> {
    answer["model_version"]["run_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{uri} is a model version without a run: nothing to compare"))
}

/// The verdict on one metric, in the JSON output's shape.
#[derive(Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub metric: String,
    pub greater_is_better: bool,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    pub absolute_change: Option<f64>,
    pub relative_change: Option<f64>,
    pub threshold: Option<f64>,
    pub min_absolute_change: Option<f64>,
    pub min_relative_change: Option<f64>,
    pub passed: bool,
    pub failures: Vec<String>,
}

/// MLflow's `MetricThreshold` rules for one metric (`baseline`: `None` when the baseline lacks
/// the metric or no baseline was given).
pub fn judge(rule: &MetricRule, candidate: Option<f64>, baseline: Option<f64>) -> Verdict {
    let failures = Gate {
        greater_is_better: rule.greater_is_better,
        threshold: rule.threshold,
        min_absolute_change: rule.min_absolute_change,
        min_relative_change: rule.min_relative_change,
    }
    .failures(candidate, baseline);
    let absolute_change = candidate.zip(baseline).map(|(c, b)| c - b);
    let relative_change = candidate
        .zip(baseline)
        .filter(|(_, b)| *b != 0.0)
        .map(|(c, b)| (c - b) / b.abs());
    Verdict {
        metric: rule.metric.clone(),
        greater_is_better: rule.greater_is_better,
        baseline,
        candidate,
        absolute_change,
        relative_change,
        threshold: rule.threshold,
        min_absolute_change: rule.min_absolute_change,
        min_relative_change: rule.min_relative_change,
        passed: failures.is_empty(),
        failures,
    }
}

/// Runs the gate and prints its table or JSON; the exit code says the outcome.
pub async fn run(args: CheckArgs) -> ExitCode {
    match check(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn check(args: &CheckArgs) -> anyhow::Result<bool> {
    let compares = args
        .metric
        .iter()
        .any(|r| r.min_absolute_change.is_some() || r.min_relative_change.is_some());
    if compares && args.baseline.is_none() {
        bail!("min_abs and min_rel compare with a baseline: add --baseline <uri>");
    }
    // Both URIs are checked before anything is asked of the server.
    args.candidate.parse::<Subject>()?;
    if let Some(b) = &args.baseline {
        b.parse::<Subject>()?;
    }
    let client = Client::connect(&args.target.tracking_uri).await?;
    let candidate = resolve(&client, &args.candidate).await?;
    let baseline = match &args.baseline {
        Some(uri) => Some(resolve(&client, uri).await?),
        None => None,
    };
    let verdicts: Vec<Verdict> = args
        .metric
        .iter()
        .map(|rule| {
            judge(
                rule,
                candidate.metrics.get(&rule.metric).copied(),
                baseline
                    .as_ref()
                    .and_then(|b| b.metrics.get(&rule.metric).copied()),
            )
        })
        .collect();
    let passed = verdicts.iter().all(|v| v.passed);
    match args.output_format {
        Format::Json => output::json(&json!({
            "passed": passed,
            "candidate": {"uri": candidate.uri, "run_id": candidate.run_id},
            "baseline": baseline.as_ref().map(|b| json!({"uri": b.uri, "run_id": b.run_id})),
            "metrics": verdicts,
        }))?,
        Format::Table | Format::Csv => {
            let header = [
                "metric",
                "better",
                "baseline",
                "candidate",
                "change",
                "rules",
                "result",
            ];
            let rows: Vec<Vec<String>> = verdicts.iter().map(row).collect();
            if matches!(args.output_format, Format::Csv) {
                output::csv(&header.map(String::from), rows)?;
            } else {
                output::table(&header, rows);
                println!(
                    "{}: candidate {}{}",
                    if passed { "PASSED" } else { "FAILED" },
                    named(&candidate),
                    baseline
                        .as_ref()
                        .map(|b| format!(" against {}", named(b)))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(passed)
}

/// A subject as the summary line names it: its URI, and its run when the URI does not say it.
fn named(r: &Resolved) -> String {
    if r.uri.starts_with("runs:/") {
        r.uri.clone()
    } else {
        format!("{} (run {})", r.uri, r.run_id)
    }
}

fn row(v: &Verdict) -> Vec<String> {
    let show = |x: Option<f64>| x.map(|x| format!("{x}")).unwrap_or_else(|| "-".into());
    // Six decimals at most: 0.91 - 0.89 shows as -0.02, not as its binary remainder.
    let short = |x: f64| {
        let t = format!("{x:+.6}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        t.to_string()
    };
    let change = match (v.absolute_change, v.relative_change) {
        (Some(a), Some(r)) => format!("{} ({:+.2}%)", short(a), r * 100.0),
        (Some(a), None) => short(a),
        _ => "-".into(),
    };
    let mut rules = Vec::new();
    if let Some(t) = v.threshold {
        rules.push(format!(
            "{} {t}",
            if v.greater_is_better { ">=" } else { "<=" }
        ));
    }
    if let Some(m) = v.min_absolute_change {
        rules.push(format!("min_abs {m}"));
    }
    if let Some(m) = v.min_relative_change {
        rules.push(format!("min_rel {m}"));
    }
    vec![
        v.metric.clone(),
        if v.greater_is_better {
            "higher"
        } else {
            "lower"
        }
        .into(),
        show(v.baseline),
        show(v.candidate),
        change,
        rules.join(", "),
        if v.passed {
            "pass".into()
        } else {
            format!("FAIL: {}", v.failures.join("; "))
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> MetricRule {
        s.parse().expect("rule")
    }

    #[test]
    fn rules_parse_with_colons_in_names_and_refuse_nonsense() {
        assert_eq!(
            rule("val:acc:higher:threshold=0.9:min_abs=0.01"),
            MetricRule {
                metric: "val:acc".into(),
                greater_is_better: true,
                threshold: Some(0.9),
                min_absolute_change: Some(0.01),
                min_relative_change: None,
            }
        );
        assert!(!rule("latency_ms:lower:min_rel=0.1").greater_is_better);
        for bad in [
            "accuracy",
            "accuracy:higher",
            "accuracy:sideways:threshold=1",
            ":higher:threshold=1",
            "accuracy:higher:threshold=",
            "accuracy:higher:threshold=NaN",
            "accuracy:higher:threshold=inf",
            "accuracy:higher:min_abs=-0.1",
            "accuracy:higher:min_rel=1.5",
            "accuracy:higher:min_rel=0",
            "accuracy:higher:bogus=1",
            "accuracy:higher:threshold=1:threshold=2",
        ] {
            assert!(bad.parse::<MetricRule>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn subjects_parse_and_refuse_other_uris() {
        assert_eq!(
            "runs:/abc/model".parse::<Subject>().expect("run"),
            Subject::Run("abc".into())
        );
        assert_eq!(
            "models:/iris@champion".parse::<Subject>().expect("alias"),
            Subject::Alias {
                name: "iris".into(),
                alias: "champion".into()
            }
        );
        assert_eq!(
            "models:/iris/3".parse::<Subject>().expect("version"),
            Subject::Version {
                name: "iris".into(),
                version: "3".into()
            }
        );
        for bad in [
            "runs:/",
            "models:/iris",
            "models:/iris/latest",
            "models:/@x",
            "file:///etc/passwd",
            "s3://bucket/x",
            "",
        ] {
            assert!(bad.parse::<Subject>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn verdicts_follow_mlflows_metric_threshold_rules() {
        // Values exact in binary, so the bounds are met exactly.
        let higher = rule("acc:higher:threshold=0.5:min_abs=0.125:min_rel=0.25");
        // Exactly at every bound passes (>=).
        assert!(judge(&higher, Some(0.5), Some(0.375)).passed);
        let v = judge(&higher, Some(0.5), Some(0.4375));
        assert!(!v.passed);
        assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
        let v = judge(&higher, Some(0.375), Some(0.0625));
        assert_eq!(v.failures, ["threshold 0.5 not met"]);
        let lower = rule("latency:lower:threshold=200:min_rel=0.1");
        assert!(judge(&lower, Some(90.0), Some(100.0)).passed);
        assert!(!judge(&lower, Some(95.0), Some(100.0)).passed);
        assert!(
            !judge(&lower, Some(250.0), Some(1000.0)).passed,
            "threshold"
        );
        // A zero baseline: simply better.
        let rel = rule("errors:lower:min_rel=0.5");
        assert!(judge(&rel, Some(-1.0), Some(0.0)).passed);
        assert!(!judge(&rel, Some(0.0), Some(0.0)).passed);
        // Missing values fail, each with its reason.
        let v = judge(&higher, None, Some(0.5));
        assert_eq!(v.failures, ["missing from the candidate"]);
        let v = judge(&higher, Some(0.75), None);
        assert_eq!(v.failures, ["missing from the baseline"]);
        assert!(judge(&rule("acc:higher:threshold=0.5"), Some(0.6), None).passed);
        assert!(!judge(&rule("acc:higher:threshold=0.5"), Some(f64::NAN), None).passed);
    }
}
