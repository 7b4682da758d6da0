//! MLflow's `MetricThreshold` rules (threshold, min_absolute_change, min_relative_change,
//! greater_is_better), shared by `plumb check` (the offline gate) and monitor rules (the online
//! one), so both judge a value against a baseline alike.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub greater_is_better: bool,
    pub threshold: Option<f64>,
    pub min_absolute_change: Option<f64>,
    pub min_relative_change: Option<f64>,
}

impl Gate {
    /// MLflow's own limits on the fields.
    pub fn check(&self) -> Result<(), String> {
        if let Some(m) = self.min_absolute_change {
            if m <= 0.0 {
                return Err("min_absolute_change: must be positive".to_string());
            }
        }
        if let Some(m) = self.min_relative_change {
            if !(m > 0.0 && m <= 1.0) {
                return Err("min_relative_change: must be in (0, 1]".to_string());
            }
        }
        Ok(())
    }

    /// Why `candidate` fails against `baseline` (`None` when it lacks the metric); empty: passes.
    pub fn failures(&self, candidate: Option<f64>, baseline: Option<f64>) -> Vec<String> {
        let mut failures = Vec::new();
        let better_or_equal = |a: f64, b: f64| {
            if self.greater_is_better {
                a >= b
            } else {
                a <= b
            }
        };
        let toward_better = |a: f64, by: f64| {
            if self.greater_is_better {
                a + by
            } else {
                a - by
            }
        };
        let Some(c) = candidate else {
            failures.push("missing from the candidate".to_string());
            return failures;
        };
        if let Some(t) = self.threshold {
            if !better_or_equal(c, t) {
                failures.push(format!("threshold {t} not met"));
            }
        }
        let compares = self.min_absolute_change.is_some() || self.min_relative_change.is_some();
        match baseline {
            None if compares => failures.push("missing from the baseline".to_string()),
            None => {}
            Some(b) => {
                if let Some(m) = self.min_absolute_change {
                    if !better_or_equal(c, toward_better(b, m)) {
                        failures.push(format!("not better than the baseline by {m}"));
                    }
                }
                if let Some(m) = self.min_relative_change {
                    // A zero baseline has no relative change: the candidate must simply be
                    // better (MLflow's fallback).
                    let failed = if b == 0.0 {
                        !better_or_equal(c, toward_better(b, 1e-10))
                    } else {
                        let change = if self.greater_is_better {
                            (c - b) / b
                        } else {
                            (b - c) / b
                        };
                        change.is_nan() || change < m
                    };
                    if failed {
                        failures.push(format!("not better than the baseline by {}%", m * 100.0));
                    }
                }
            }
        }
        if c.is_nan() {
            failures.push("the candidate's value is NaN".to_string());
        }
        failures
    }
}
