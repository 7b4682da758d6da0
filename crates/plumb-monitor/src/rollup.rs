//! What a bucket of events folds into: counts, a DDSketch of latencies and of numeric
//! predictions (quantiles within 1% relative error, mergeable), predicted classes, and the
//! label-joined confusion counts or regression errors. Rollups merge, so a window is the merge
//! of its buckets' rollups plus the events of buckets not folded yet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sketches_ddsketch::{Config, DDSketch};

use plumb_store::monitoring::EventRow;

use crate::metric::{Agg, MetricRef};
use crate::spec::Task;

/// At most this many distinct classes are counted one by one; the rest share [`OTHER`].
const MAX_CLASSES: usize = 256;
const OTHER: &str = "__other__";

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Rollup {
    pub count: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<DDSketch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<DDSketch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub predicted: BTreeMap<String, u64>,
    pub labeled: u64,
    pub correct: u64,
    /// Per class: true positives, false positives, false negatives.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, [u64; 3]>,
    /// Regression: events with a numeric prediction and label, and their error sums.
    pub err_n: u64,
    pub abs_err: f64,
    pub sq_err: f64,
}

/// A JSON scalar as a class name: strings as they are, `1` and `1.0` alike.
pub fn class_of(json: &str) -> Option<String> {
    match serde_json::from_str::<Value>(json).ok()? {
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            let f = n.as_f64()?;
            if f.fract() == 0.0 && f.abs() < 1e15 {
                Some(format!("{}", f as i64))
            } else {
                Some(n.to_string())
            }
        }
        _ => None,
    }
}

fn number_of(json: &str) -> Option<f64> {
    match serde_json::from_str::<Value>(json).ok()? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(f64::from(u8::from(b))),
        _ => None,
    }
}

fn sketch_add(s: &mut Option<DDSketch>, v: f64) {
    if v.is_finite() {
        s.get_or_insert_with(|| DDSketch::new(Config::defaults()))
            .add(v);
    }
}

fn sketch_merge(s: &mut Option<DDSketch>, o: &Option<DDSketch>) {
    if let Some(o) = o {
        match s {
            Some(s) => {
                // Same configuration by construction; a mismatch cannot happen.
                let _ = s.merge(o);
            }
            None => *s = Some(o.clone()),
        }
    }
}

fn capped(map: &mut BTreeMap<String, u64>, class: String) -> &mut u64 {
    if map.len() >= MAX_CLASSES && !map.contains_key(&class) {
        map.entry(OTHER.to_string()).or_default()
    } else {
        map.entry(class).or_default()
    }
}

impl Rollup {
    pub fn add(&mut self, e: &EventRow, task: Task) {
        self.count += 1;
        self.errors += u64::from(e.error);
        if let Some(l) = e.latency_ms {
            sketch_add(&mut self.latency, l);
        }
        let Some(p) = &e.prediction else { return };
        match task {
            Task::Regression => {
                let Some(pv) = number_of(p) else { return };
                sketch_add(&mut self.prediction, pv);
                if let Some(lv) = e.label.as_deref().and_then(number_of) {
                    self.labeled += 1;
                    self.err_n += 1;
                    self.abs_err += (pv - lv).abs();
                    self.sq_err += (pv - lv) * (pv - lv);
                }
            }
            Task::Classification => {
                let Some(pc) = class_of(p) else { return };
                if let Some(pv) = number_of(p) {
                    sketch_add(&mut self.prediction, pv);
                }
                *capped(&mut self.predicted, pc.clone()) += 1;
                if let Some(lc) = e.label.as_deref().and_then(class_of) {
                    self.labeled += 1;
                    if lc == pc {
                        self.correct += 1;
                        self.class(pc)[0] += 1;
                    } else {
                        self.class(pc)[1] += 1;
                        self.class(lc)[2] += 1;
                    }
                }
            }
        }
    }

    fn class(&mut self, c: String) -> &mut [u64; 3] {
        let key = if self.classes.len() >= MAX_CLASSES && !self.classes.contains_key(&c) {
            OTHER.to_string()
        } else {
            c
        };
        self.classes.entry(key).or_default()
    }

    pub fn merge(&mut self, o: &Rollup) {
        self.count += o.count;
        self.errors += o.errors;
        sketch_merge(&mut self.latency, &o.latency);
        sketch_merge(&mut self.prediction, &o.prediction);
        for (k, v) in &o.predicted {
            *capped(&mut self.predicted, k.clone()) += v;
        }
        self.labeled += o.labeled;
        self.correct += o.correct;
        for (k, v) in &o.classes {
            let c = self.class(k.clone());
            for i in 0..3 {
                c[i] += v[i];
            }
        }
        self.err_n += o.err_n;
        self.abs_err += o.abs_err;
        self.sq_err += o.sq_err;
    }

    /// The class precision, recall and F1 are about: the configured one, else `1`/`true` when
    /// the labels are binary; `None`: the macro average.
    fn positive(&self, configured: Option<&str>) -> Option<String> {
        if let Some(c) = configured {
            return Some(c.to_string());
        }
        let keys: Vec<&str> = self.classes.keys().map(String::as_str).collect();
        let binary = |a: &str, b: &str| keys.iter().all(|k| *k == a || *k == b);
        if binary("0", "1") {
            Some("1".to_string())
        } else if binary("false", "true") {
            Some("true".to_string())
        } else {
            None
        }
    }

    fn prf(&self, positive: Option<&str>) -> (f64, f64, f64) {
        let one = |c: &[u64; 3]| {
            let [tp, fp, fn_] = c.map(|x| x as f64);
            let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
            let r = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (p, r, f)
        };
        match self.positive(positive) {
            Some(c) => one(self.classes.get(&c).unwrap_or(&[0, 0, 0])),
            None => {
                let n = self.classes.len().max(1) as f64;
                let (mut p, mut r, mut f) = (0.0, 0.0, 0.0);
                for c in self.classes.values() {
                    let (a, b, d) = one(c);
                    p += a;
                    r += b;
                    f += d;
                }
                (p / n, r / n, f / n)
            }
        }
    }

    /// A metric's value and the number of samples behind it (`None`: no value).
    pub fn value(&self, m: &MetricRef, positive: Option<&str>) -> (Option<f64>, u64) {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        if let Some(class) = m.predicted_class() {
            let total: u64 = self.predicted.values().sum();
            let of_class = self.predicted.get(class).copied().unwrap_or(0);
            return (ratio(of_class, total), total);
        }
        match m.name.as_str() {
            "count" => (Some(self.count as f64), self.count),
            "errors" => (Some(self.errors as f64), self.count),
            "error_rate" => (ratio(self.errors, self.count), self.count),
            "labeled" => (Some(self.labeled as f64), self.labeled),
            "accuracy" => (ratio(self.correct, self.labeled), self.labeled),
            "precision" | "recall" | "f1" => {
                if self.classes.is_empty() {
                    return (None, self.labeled);
                }
                let (p, r, f) = self.prf(positive);
                let v = match m.name.as_str() {
                    "precision" => p,
                    "recall" => r,
                    _ => f,
                };
                (Some(v), self.labeled)
            }
            "mae" => (
                (self.err_n > 0).then(|| self.abs_err / self.err_n as f64),
                self.err_n,
            ),
            "rmse" => (
                (self.err_n > 0).then(|| (self.sq_err / self.err_n as f64).sqrt()),
                self.err_n,
            ),
            "latency_ms" => sketch_value(self.latency.as_ref(), m.agg),
            "prediction" => sketch_value(self.prediction.as_ref(), m.agg),
            _ => (None, 0),
        }
    }
}

fn sketch_value(s: Option<&DDSketch>, agg: Option<Agg>) -> (Option<f64>, u64) {
    let Some(s) = s else { return (None, 0) };
    let n = s.count() as u64;
    if n == 0 {
        return (None, 0);
    }
    let v = match agg.unwrap_or(Agg::Mean) {
        Agg::Mean => s.sum().map(|x| x / n as f64),
        Agg::Sum => s.sum(),
        Agg::Count => Some(n as f64),
        Agg::Min => s.min(),
        Agg::Max => s.max(),
        // A sketch keeps no order: the last value is not known.
        Agg::Last => None,
        Agg::Quantile(q) => s.quantile(q).ok().flatten(),
    };
    (v, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(latency: f64, error: bool, p: &str, l: Option<&str>) -> EventRow {
        EventRow {
            ts_ms: 0,
            request_id: String::new(),
            latency_ms: Some(latency),
            error,
            prediction: Some(p.to_string()),
            label: l.map(str::to_string),
        }
    }

    fn m(s: &str) -> MetricRef {
        MetricRef::parse(s).expect("metric")
    }

    #[test]
    fn classification_counts_merge_like_one_pass() {
        let events: Vec<EventRow> = (0..1000)
            .map(|i| {
                let p = if i % 4 == 0 { "1" } else { "0" };
                let l = if i % 5 == 0 { "1" } else { "0" };
                ev(
                    f64::from(i) + 1.0,
                    i % 10 == 0,
                    p,
                    (i % 2 == 0).then_some(l),
                )
            })
            .collect();
        let mut whole = Rollup::default();
        let (mut a, mut b) = (Rollup::default(), Rollup::default());
        for (i, e) in events.iter().enumerate() {
            whole.add(e, Task::Classification);
            if i % 3 == 0 { &mut a } else { &mut b }.add(e, Task::Classification);
        }
        let json = serde_json::to_string(&a).expect("serializes");
        let mut merged: Rollup = serde_json::from_str(&json).expect("reads back");
        merged.merge(&b);
        for name in [
            "count",
            "error_rate",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "latency_ms:p95",
        ] {
            assert_eq!(
                whole.value(&m(name), None),
                merged.value(&m(name), None),
                "{name}"
            );
        }
        assert_eq!(whole.value(&m("count"), None), (Some(1000.0), 1000));
        assert_eq!(whole.value(&m("predicted:1"), None), (Some(0.25), 1000));
        assert_eq!(merged.value(&m("predicted:1"), None), (Some(0.25), 1000));
        assert_eq!(whole.value(&m("predicted:7"), None), (Some(0.0), 1000));
        assert_eq!(whole.value(&m("error_rate"), None).0, Some(0.1));
        let p95 = whole.value(&m("latency_ms:p95"), None).0.expect("p95");
        assert!((p95 - 950.0).abs() / 950.0 < 0.02, "{p95}");
        // Even i: labelled. Label 1 when i % 5 == 0 (i % 10 == 0), prediction 1 when i % 4 == 0.
        let (mut tp, mut fp, mut fn_, mut correct, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in (0..1000).step_by(2) {
            let (p, l) = (i % 4 == 0, i % 5 == 0);
            n += 1.0;
            correct += f64::from(u8::from(p == l));
            tp += f64::from(u8::from(p && l));
            fp += f64::from(u8::from(p && !l));
            fn_ += f64::from(u8::from(!p && l));
        }
        assert_eq!(whole.value(&m("accuracy"), None).0, Some(correct / n));
        assert_eq!(whole.value(&m("precision"), None).0, Some(tp / (tp + fp)));
        assert_eq!(whole.value(&m("recall"), None).0, Some(tp / (tp + fn_)));
    }

    #[test]
    fn regression_errors() {
        let mut r = Rollup::default();
        r.add(&ev(1.0, false, "2.0", Some("1.0")), Task::Regression);
        r.add(&ev(1.0, false, "5", Some("1")), Task::Regression);
        r.add(&ev(1.0, false, "3", None), Task::Regression);
        assert_eq!(r.value(&m("mae"), None), (Some(2.5), 2));
        assert_eq!(
            r.value(&m("rmse"), None).0,
            Some(((1.0 + 16.0) / 2.0f64).sqrt())
        );
        assert_eq!(
            r.value(&m("prediction:max"), None).0.map(f64::round),
            Some(5.0)
        );
    }

    #[test]
    fn classes_are_capped_and_one_equals_one_point_zero() {
        assert_eq!(class_of("1.0"), class_of("1"));
        assert_eq!(class_of("\"cat\"").as_deref(), Some("cat"));
        assert_eq!(class_of("{}"), None);
        let mut r = Rollup::default();
        for i in 0..1000 {
            r.add(
                &ev(1.0, false, &i.to_string(), Some("-1")),
                Task::Classification,
            );
        }
        assert!(r.predicted.len() <= MAX_CLASSES + 1);
        assert!(r.classes.len() <= MAX_CLASSES + 1);
        assert_eq!(r.predicted.values().sum::<u64>(), 1000);
    }
}
