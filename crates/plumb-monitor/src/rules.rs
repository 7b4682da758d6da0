//! Judging a window's value and moving an alert through its states the way Prometheus does:
//! inactive -> pending (condition true) -> firing (true for `for`) -> resolved (false again,
//! after `keep_firing_for`). A window with fewer samples than `min_samples`, or no baseline
//! when one is needed, gives no verdict: the condition counts as false.

use plumb_store::monitoring::{AlertChange, AlertState};

use crate::spec::{Compiled, Condition, Rule};

/// What one evaluation saw for one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub samples: u64,
    /// Whether the condition holds (false when there is no verdict).
    pub breached: bool,
    pub message: String,
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Judges a value against a rule's condition.
pub fn observe(
    rule: &Rule,
    compiled: &Compiled,
    value: Option<f64>,
    samples: u64,
    baseline: Option<f64>,
) -> Observation {
    let metric = format!("{} over {}", rule.metric, rule.window);
    let no_verdict = |why: String| Observation {
        value,
        baseline,
        samples,
        breached: false,
        message: why,
    };
    let Some(v) = value else {
        return no_verdict(format!("{metric}: no data"));
    };
    if samples < rule.min_samples {
        return no_verdict(format!(
            "{metric} = {}: {samples} samples, fewer than min_samples {}",
            fmt(v),
            rule.min_samples
        ));
    }
    let needs = compiled.condition.needs_baseline();
    let b = match baseline {
        Some(b) => b,
        None if needs => return no_verdict(format!("{metric} = {}: no baseline value", fmt(v))),
        None => f64::NAN,
    };
    let (breached, what) = match &compiled.condition {
        Condition::Above(t) => (v > *t, format!("above {}", fmt(*t))),
        Condition::Below(t) => (v < *t, format!("below {}", fmt(*t))),
        Condition::AbsoluteDrop(d) => (
            v < b - d,
            format!("dropped more than {} from {}", fmt(*d), fmt(b)),
        ),
        Condition::AbsoluteRise(d) => (
            v > b + d,
            format!("rose more than {} from {}", fmt(*d), fmt(b)),
        ),
        Condition::RelativeDrop(r) => (
            v < b - r * b.abs(),
            format!("dropped more than {}% from {}", fmt(r * 100.0), fmt(b)),
        ),
        Condition::RelativeRise(r) => (
            v > b + r * b.abs(),
            format!("rose more than {}% from {}", fmt(r * 100.0), fmt(b)),
        ),
        Condition::Gate(g) => {
            let failures = g.failures(Some(v), baseline);
            let breached = !failures.is_empty();
            let what = if breached {
                failures.join("; ")
            } else {
                "passes the metric threshold".to_string()
            };
            (breached, what)
        }
    };
    let verdict = if breached { "" } else { "not " };
    let message = match &compiled.condition {
        Condition::Gate(_) if breached => format!("{metric} = {}: {what}", fmt(v)),
        Condition::Gate(_) => format!("{metric} = {}: {what}", fmt(v)),
        _ => format!("{metric} = {}: {verdict}{what}", fmt(v)),
    };
    Observation {
        value,
        baseline,
        samples,
        breached,
        message,
    }
}

/// The alert's next state after an evaluation at `now_ms`, and the change when there is one.
pub fn step(
    monitor: &str,
    rule: &Rule,
    compiled: &Compiled,
    prev: Option<&AlertState>,
    obs: &Observation,
    now_ms: i64,
) -> (AlertState, Option<AlertChange>) {
    let for_ms = compiled.for_.as_millis() as i64;
    let keep_ms = compiled.keep_firing_for.as_millis() as i64;
    let mut s = prev.cloned().unwrap_or_else(|| AlertState {
        monitor: monitor.to_string(),
        rule: rule.name.clone(),
        state: "inactive".to_string(),
        ..AlertState::default()
    });
    let from = s.state.clone();
    s.severity = rule.severity.clone();
    s.value = obs.value;
    s.baseline = obs.baseline;
    s.samples = i64::try_from(obs.samples).unwrap_or(i64::MAX);
    s.message = obs.message.clone();
    s.evaluated_ms = now_ms;
    if obs.breached {
        s.last_true_ms = Some(now_ms);
        match from.as_str() {
            "firing" => {}
            "pending" => {
                if now_ms - s.active_ms.unwrap_or(now_ms) >= for_ms {
                    s.state = "firing".to_string();
                    s.fired_ms = Some(now_ms);
                }
            }
            _ => {
                s.active_ms = Some(now_ms);
                s.resolved_ms = None;
                if for_ms == 0 {
                    s.state = "firing".to_string();
                    s.fired_ms = Some(now_ms);
                } else {
                    s.state = "pending".to_string();
                    s.fired_ms = None;
                }
            }
        }
    } else {
        match from.as_str() {
            "firing" => {
                let kept = keep_ms > 0 && now_ms - s.last_true_ms.unwrap_or(now_ms) < keep_ms;
                if !kept {
                    s.state = "resolved".to_string();
                    s.resolved_ms = Some(now_ms);
                }
            }
            "pending" => {
                s.state = "inactive".to_string();
                s.active_ms = None;
            }
            _ => {}
        }
    }
    let change = (s.state != from).then(|| AlertChange {
        seq: 0,
        monitor: monitor.to_string(),
        rule: rule.name.clone(),
        from,
        to: s.state.clone(),
        severity: s.severity.clone(),
        at_ms: now_ms,
        value: s.value,
        baseline: s.baseline,
        message: s.message.clone(),
    });
    (s, change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MonitorSpec;

    fn spec(rule: serde_json::Value) -> (Rule, Compiled) {
        let s = MonitorSpec::from_json(serde_json::json!({
            "name": "m", "baseline": {"values": {"accuracy": 0.9}}, "rules": [rule]
        }))
        .expect("spec");
        let c = s.compile().expect("compiles").remove(0);
        (s.rules[0].clone(), c)
    }

    #[test]
    fn pending_then_firing_then_resolved_like_prometheus() {
        let (r, c) = spec(serde_json::json!({
            "name": "drop", "metric": "accuracy", "relative_drop": 0.05, "for": "2m",
            "keep_firing_for": "1m", "min_samples": 5
        }));
        let bad = observe(&r, &c, Some(0.8), 50, Some(0.9));
        let good = observe(&r, &c, Some(0.89), 50, Some(0.9));
        let few = observe(&r, &c, Some(0.1), 3, Some(0.9));
        assert!(
            bad.breached && !good.breached && !few.breached,
            "{bad:?} {good:?} {few:?}"
        );
        let (s, ch) = step("m", &r, &c, None, &bad, 0);
        assert_eq!(
            (s.state.as_str(), ch.map(|c| c.to)),
            ("pending", Some("pending".into()))
        );
        let (s, ch) = step("m", &r, &c, Some(&s), &bad, 60_000);
        assert_eq!((s.state.as_str(), ch), ("pending", None));
        let (s, ch) = step("m", &r, &c, Some(&s), &bad, 120_000);
        assert_eq!(
            (s.state.as_str(), ch.map(|c| c.from)),
            ("firing", Some("pending".into()))
        );
        // keep_firing_for: one clean evaluation within a minute keeps it firing.
        let (s, _) = step("m", &r, &c, Some(&s), &good, 150_000);
        assert_eq!(s.state, "firing");
        let (s, ch) = step("m", &r, &c, Some(&s), &good, 181_000);
        assert_eq!(
            (s.state.as_str(), ch.map(|c| c.to)),
            ("resolved", Some("resolved".into()))
        );
        // A pending alert that clears goes back to inactive without firing.
        let (s, _) = step("m", &r, &c, Some(&s), &bad, 200_000);
        assert_eq!(s.state, "pending");
        let (s, _) = step("m", &r, &c, Some(&s), &few, 210_000);
        assert_eq!(s.state, "inactive");
    }

    #[test]
    fn for_zero_fires_at_once_and_gates_follow_metric_threshold() {
        let (r, c) = spec(serde_json::json!({
            "name": "gate", "metric": "accuracy", "greater_is_better": true,
            "threshold": 0.85, "min_samples": 1
        }));
        let (s, _) = step("m", &r, &c, None, &observe(&r, &c, Some(0.84), 1, None), 0);
        assert_eq!(s.state, "firing");
        let o = observe(&r, &c, Some(0.86), 1, None);
        assert!(!o.breached, "{o:?}");
    }

    #[test]
    fn bad_rules_name_their_field() {
        let bad = |rule: serde_json::Value| {
            MonitorSpec::from_json(serde_json::json!({"name": "m", "rules": [rule]}))
                .expect_err("refused")
        };
        let e = bad(
            serde_json::json!({"name": "a", "metric": "accuracy", "above": 1, "window": "soon"}),
        );
        assert!(e.starts_with("rules[0].window:"), "{e}");
        let e = bad(serde_json::json!({"name": "a", "metric": "accuracy"}));
        assert!(e.contains("exactly one condition"), "{e}");
        let e = bad(serde_json::json!({"name": "a", "metric": "accuracy", "relative_drop": 0.1}));
        assert!(e.contains("no baseline"), "{e}");
        let e = bad(serde_json::json!({"name": "a", "metric": "val_loss", "above": 1}));
        assert!(e.contains("not an event metric"), "{e}");
        let e =
            bad(serde_json::json!({"name": "a", "metric": "accuracy", "above": 1, "colour": 1}));
        assert!(e.starts_with("rules[0]") && e.contains("colour"), "{e}");
        let e =
            bad(serde_json::json!({"name": "a", "metric": "accuracy", "above": 1, "for": "400d"}));
        assert!(e.starts_with("rules[0].for:"), "{e}");
        let e = MonitorSpec::from_json(serde_json::json!({
            "name": "m", "baseline": {"first": "100000000y"}}))
        .expect_err("first");
        assert!(e.starts_with("baseline.first"), "{e}");
        let e = MonitorSpec::from_json(serde_json::json!({"name": "../x"})).expect_err("name");
        assert!(e.starts_with("name:"), "{e}");
        let e = MonitorSpec::from_json(serde_json::json!({"name": "x", "model": "file:///etc"}))
            .expect_err("model");
        assert!(e.starts_with("model:"), "{e}");
    }
}
