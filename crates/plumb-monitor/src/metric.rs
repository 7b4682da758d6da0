//! The names a rule watches: `accuracy`, `error_rate`, `latency_ms:p95`, a run metric with an
//! aggregation (`val_loss:max`). The last `:` segment is an aggregation when it is one.

use serde::{Deserialize, Serialize};

/// Where a rule's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Events,
    Runs,
    /// MLflow traces (or spans of one name) of the monitor's `source.traces`.
    Traces,
}

/// `predicted:<class>`: the share of a class among the predictions (classification).
pub const PREDICTED: &str = "predicted:";

/// Metrics computed from inference events (and `predicted:<class>`).
pub const EVENT_METRICS: &[&str] = &[
    "count",
    "errors",
    "error_rate",
    "latency_ms",
    "prediction",
    "labeled",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "mae",
    "rmse",
];

/// Metrics computed from traces: `count`, `errors`, `error_rate`, `latency_ms` (of traces or
/// of spans of one name), and the token counts of traces.
pub const TRACE_METRICS: &[&str] = &[
    "count",
    "errors",
    "error_rate",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
];

/// How the values in a window become one number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    Mean,
    Min,
    Max,
    Sum,
    Count,
    Last,
    /// A quantile in (0, 1).
    Quantile(f64),
}

impl Agg {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mean" | "avg" => Self::Mean,
            "min" => Self::Min,
            "max" => Self::Max,
            "sum" => Self::Sum,
            "count" => Self::Count,
            "last" => Self::Last,
            "median" => Self::Quantile(0.5),
            _ => {
                let p: f64 = s.strip_prefix('p')?.parse().ok()?;
                if !(p > 0.0 && p < 100.0) {
                    return None;
                }
                Self::Quantile(p / 100.0)
            }
        })
    }
}

/// A parsed metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRef {
    pub name: String,
    /// `None`: the metric's own meaning (a rate, a count; the mean for distributions).
    pub agg: Option<Agg>,
}

impl MetricRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.len() > 250 || s.chars().any(char::is_control) {
            return Err(format!("'{s}' is not a metric name"));
        }
        if let Some(class) = s.strip_prefix(PREDICTED) {
            // `predicted:<class>`: the share of predictions of that class (no aggregation).
            if class.is_empty() {
                return Err(format!("'{s}' names no class"));
            }
            return Ok(Self {
                name: s.to_string(),
                agg: None,
            });
        }
        if let Some((name, agg)) = s.rsplit_once(':') {
            if let Some(a) = Agg::parse(agg) {
                if name.is_empty() {
                    return Err(format!("'{s}' has no metric name"));
                }
                return Ok(Self {
                    name: name.to_string(),
                    agg: Some(a),
                });
            }
        }
        Ok(Self {
            name: s.to_string(),
            agg: None,
        })
    }

    /// The class of a `predicted:<class>` metric.
    pub fn predicted_class(&self) -> Option<&str> {
        self.name.strip_prefix(PREDICTED)
    }

    /// Whether traces give this metric (aggregations: on latency and tokens only; `:last` is
    /// not kept for traces).
    pub fn is_trace_metric(&self) -> bool {
        TRACE_METRICS.contains(&self.name.as_str())
            && match self.agg {
                None => true,
                Some(Agg::Last) => false,
                Some(Agg::Sum) => self.name.ends_with("_tokens"),
                Some(_) => matches!(
                    self.name.as_str(),
                    "latency_ms" | "input_tokens" | "output_tokens" | "total_tokens"
                ),
            }
    }

    pub fn is_event_metric(&self) -> bool {
        self.predicted_class().is_some()
            || EVENT_METRICS.contains(&self.name.as_str())
                && (self.agg.is_none() || matches!(self.name.as_str(), "latency_ms" | "prediction"))
    }
}

/// Aggregates plain values (run metric points, in time order).
pub fn aggregate(values: &[f64], agg: Option<Agg>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    Some(match agg.unwrap_or(Agg::Mean) {
        Agg::Mean => values.iter().sum::<f64>() / n,
        Agg::Sum => values.iter().sum(),
        Agg::Count => n,
        Agg::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Agg::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Agg::Last => *values.last()?,
        Agg::Quantile(q) => {
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            // Nearest rank, as Prometheus' quantile_over_time interpolates between ranks.
            let rank = q * (n - 1.0);
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            let w = rank - rank.floor();
            v[lo] * (1.0 - w) + v[hi] * w
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aggregations_parse() {
        let m = MetricRef::parse("latency_ms:p95").expect("parses");
        assert_eq!(m.name, "latency_ms");
        assert_eq!(m.agg, Some(Agg::Quantile(0.95)));
        assert!(m.is_event_metric());
        let m = MetricRef::parse("a:b:max").expect("parses");
        assert_eq!((m.name.as_str(), m.agg), ("a:b", Some(Agg::Max)));
        let m = MetricRef::parse("ns:thing").expect("parses");
        assert_eq!((m.name.as_str(), m.agg), ("ns:thing", None));
        assert!(!MetricRef::parse("accuracy:p95")
            .expect("parses")
            .is_event_metric());
        let m = MetricRef::parse("predicted:max").expect("parses");
        assert_eq!((m.predicted_class(), m.agg), (Some("max"), None));
        assert!(m.is_event_metric());
        assert!(MetricRef::parse("predicted:").is_err());
        assert!(MetricRef::parse(":max").is_err());
        assert!(MetricRef::parse(" ").is_err());
        assert!(MetricRef::parse("a\u{0}").is_err());
    }

    #[test]
    fn aggregates() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(aggregate(&v, None), Some(2.5));
        assert_eq!(aggregate(&v, Some(Agg::Max)), Some(4.0));
        assert_eq!(aggregate(&v, Some(Agg::Last)), Some(4.0));
        assert_eq!(aggregate(&v, Some(Agg::Quantile(0.5))), Some(2.5));
        assert_eq!(aggregate(&[], None), None);
    }
}
