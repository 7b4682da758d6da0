//! Traces' tables (the `traces` feature) and every query on them, written once for both
//! databases: trace infos, their tags and metadata, links to runs, and the trace search
//! (MLflow's trace filter rendered to fixed SQL with binds).

use std::collections::BTreeMap;

use plumb_core::entities::Page;
use plumb_core::search::{Op, SpanKey, TraceClause, TraceTarget, Value};
use plumb_core::Error;

use crate::db::{fetch_page, Bind, Conn, DbResult, Row};
use crate::migrations::{Feature, Migration};
use crate::queries::experiments;
use crate::sql::{key_value_clause, num_bind, string_cmp};
use crate::traces::{
    AssessmentPatch, AssessmentRecord, SpanRecord, TraceInfo, TraceQuery, TraceSelection,
    ARTIFACT_LOCATION_TAG, SOURCE_RUN_METADATA, SPANS_LOCATION_TAG, TRACE_NAME_TAG,
};

const V1: Migration = Migration {
    version: 1,
    sqlite: "
CREATE TABLE plumb_traces (
    trace_id          TEXT PRIMARY KEY,
    experiment_id     INTEGER NOT NULL,
    client_request_id TEXT,
    request_time_ms   INTEGER NOT NULL,
    execution_ms      INTEGER,
    state             TEXT NOT NULL,
    name              TEXT,
    request_preview   TEXT,
    response_preview  TEXT
);
CREATE INDEX plumb_traces_time ON plumb_traces (experiment_id, request_time_ms);
CREATE TABLE plumb_trace_tags (
    trace_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;
CREATE TABLE plumb_trace_metadata (
    trace_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;
CREATE INDEX plumb_trace_metadata_value ON plumb_trace_metadata (key, value);
CREATE TABLE plumb_trace_runs (
    trace_id TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    PRIMARY KEY (trace_id, run_id)
) WITHOUT ROWID;
CREATE INDEX plumb_trace_runs_run ON plumb_trace_runs (run_id);
",
    postgres: "
CREATE TABLE plumb_traces (
    trace_id          TEXT PRIMARY KEY,
    experiment_id     BIGINT NOT NULL,
    client_request_id TEXT,
    request_time_ms   BIGINT NOT NULL,
    execution_ms      BIGINT,
    state             TEXT NOT NULL,
    name              TEXT,
    request_preview   TEXT,
    response_preview  TEXT
);
CREATE INDEX plumb_traces_time ON plumb_traces (experiment_id, request_time_ms);
CREATE TABLE plumb_trace_tags (
    trace_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
);
CREATE TABLE plumb_trace_metadata (
    trace_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
);
CREATE INDEX plumb_trace_metadata_value ON plumb_trace_metadata (key, value);
CREATE TABLE plumb_trace_runs (
    trace_id TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    PRIMARY KEY (trace_id, run_id)
);
CREATE INDEX plumb_trace_runs_run ON plumb_trace_runs (run_id);
",
};

const V2: Migration = Migration {
    version: 2,
    sqlite: "
CREATE TABLE plumb_spans (
    trace_id       TEXT NOT NULL,
    span_id        TEXT NOT NULL,
    parent_span_id TEXT,
    name           TEXT NOT NULL,
    span_type      TEXT,
    status         TEXT NOT NULL,
    start_ns       INTEGER NOT NULL,
    end_ns         INTEGER,
    content        TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
",
    postgres: "
CREATE TABLE plumb_spans (
    trace_id       TEXT NOT NULL,
    span_id        TEXT NOT NULL,
    parent_span_id TEXT,
    name           TEXT NOT NULL,
    span_type      TEXT,
    status         TEXT NOT NULL,
    start_ns       BIGINT NOT NULL,
    end_ns         BIGINT,
    content        TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
",
};

const V3: Migration = Migration {
    version: 3,
    sqlite: "
CREATE TABLE plumb_assessments (
    assessment_id TEXT PRIMARY KEY,
    trace_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    valid         INTEGER NOT NULL,
    overrides     TEXT,
    body          TEXT NOT NULL
);
CREATE INDEX plumb_assessments_trace ON plumb_assessments (trace_id, created_ms);
",
    postgres: "
CREATE TABLE plumb_assessments (
    assessment_id TEXT PRIMARY KEY,
    trace_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    valid         BIGINT NOT NULL,
    overrides     TEXT,
    body          TEXT NOT NULL
);
CREATE INDEX plumb_assessments_trace ON plumb_assessments (trace_id, created_ms);
",
};

/// An assessment's kind and value kept as columns for trace search and trace metrics:
/// `value` is the value as JSON text, `num_value` the number it counts as (booleans and
/// yes/no as 1 and 0), `is_num` whether it is a number itself (what `<`, `>` compare).
const V4: Migration = Migration {
    version: 4,
    sqlite: "
ALTER TABLE plumb_assessments ADD COLUMN kind TEXT;
ALTER TABLE plumb_assessments ADD COLUMN value TEXT;
ALTER TABLE plumb_assessments ADD COLUMN num_value REAL;
ALTER TABLE plumb_assessments ADD COLUMN is_num INTEGER NOT NULL DEFAULT 0;
UPDATE plumb_assessments SET
    kind = CASE WHEN json_type(body, '$.feedback') IS NOT NULL THEN 'feedback'
                WHEN json_type(body, '$.expectation') IS NOT NULL THEN 'expectation' END,
    value = COALESCE(body -> '$.feedback.value', body -> '$.expectation.value');
UPDATE plumb_assessments SET
    num_value = CASE json_type(value)
        WHEN 'integer' THEN json_extract(value, '$')
        WHEN 'real' THEN json_extract(value, '$')
        WHEN 'true' THEN 1.0
        WHEN 'false' THEN 0.0
        WHEN 'text' THEN CASE lower(trim(json_extract(value, '$')))
            WHEN 'yes' THEN 1.0 WHEN 'no' THEN 0.0 END END,
    is_num = CASE WHEN json_type(value) IN ('integer', 'real') THEN 1 ELSE 0 END
WHERE value IS NOT NULL;
CREATE INDEX plumb_assessments_name ON plumb_assessments (name, kind);
ALTER TABLE plumb_spans ADD COLUMN input_tokens INTEGER;
ALTER TABLE plumb_spans ADD COLUMN output_tokens INTEGER;
ALTER TABLE plumb_spans ADD COLUMN total_tokens INTEGER;
ALTER TABLE plumb_traces ADD COLUMN input_tokens INTEGER;
ALTER TABLE plumb_traces ADD COLUMN output_tokens INTEGER;
ALTER TABLE plumb_traces ADD COLUMN total_tokens INTEGER;
ALTER TABLE plumb_traces ADD COLUMN cache_read_input_tokens INTEGER;
ALTER TABLE plumb_traces ADD COLUMN cache_creation_input_tokens INTEGER;
UPDATE plumb_traces SET
    input_tokens = (SELECT json_extract(m.value, '$.input_tokens') FROM plumb_trace_metadata m
        WHERE m.trace_id = plumb_traces.trace_id AND m.key = 'mlflow.trace.tokenUsage'
        AND json_valid(m.value)),
    output_tokens = (SELECT json_extract(m.value, '$.output_tokens') FROM plumb_trace_metadata m
        WHERE m.trace_id = plumb_traces.trace_id AND m.key = 'mlflow.trace.tokenUsage'
        AND json_valid(m.value)),
    total_tokens = (SELECT json_extract(m.value, '$.total_tokens') FROM plumb_trace_metadata m
        WHERE m.trace_id = plumb_traces.trace_id AND m.key = 'mlflow.trace.tokenUsage'
        AND json_valid(m.value)),
    cache_read_input_tokens = (SELECT json_extract(m.value, '$.cache_read_input_tokens')
        FROM plumb_trace_metadata m WHERE m.trace_id = plumb_traces.trace_id
        AND m.key = 'mlflow.trace.tokenUsage' AND json_valid(m.value)),
    cache_creation_input_tokens = (SELECT json_extract(m.value, '$.cache_creation_input_tokens')
        FROM plumb_trace_metadata m WHERE m.trace_id = plumb_traces.trace_id
        AND m.key = 'mlflow.trace.tokenUsage' AND json_valid(m.value));
",
    postgres: "
ALTER TABLE plumb_assessments ADD COLUMN kind TEXT;
ALTER TABLE plumb_assessments ADD COLUMN value TEXT;
ALTER TABLE plumb_assessments ADD COLUMN num_value DOUBLE PRECISION;
ALTER TABLE plumb_assessments ADD COLUMN is_num BIGINT NOT NULL DEFAULT 0;
UPDATE plumb_assessments SET
    kind = CASE WHEN body::jsonb -> 'feedback' IS NOT NULL THEN 'feedback'
                WHEN body::jsonb -> 'expectation' IS NOT NULL THEN 'expectation' END,
    value = COALESCE(body::jsonb -> 'feedback' -> 'value',
                     body::jsonb -> 'expectation' -> 'value')::text;
UPDATE plumb_assessments SET
    num_value = CASE jsonb_typeof(value::jsonb)
        WHEN 'number' THEN (value::jsonb #>> '{}')::double precision
        WHEN 'boolean' THEN CASE WHEN value = 'true' THEN 1.0 ELSE 0.0 END
        WHEN 'string' THEN CASE lower(trim(value::jsonb #>> '{}'))
            WHEN 'yes' THEN 1.0 WHEN 'no' THEN 0.0 END END,
    is_num = CASE WHEN jsonb_typeof(value::jsonb) = 'number' THEN 1 ELSE 0 END
WHERE value IS NOT NULL;
CREATE INDEX plumb_assessments_name ON plumb_assessments (name, kind);
ALTER TABLE plumb_spans ADD COLUMN input_tokens BIGINT;
ALTER TABLE plumb_spans ADD COLUMN output_tokens BIGINT;
ALTER TABLE plumb_spans ADD COLUMN total_tokens BIGINT;
ALTER TABLE plumb_traces ADD COLUMN input_tokens BIGINT;
ALTER TABLE plumb_traces ADD COLUMN output_tokens BIGINT;
ALTER TABLE plumb_traces ADD COLUMN total_tokens BIGINT;
ALTER TABLE plumb_traces ADD COLUMN cache_read_input_tokens BIGINT;
ALTER TABLE plumb_traces ADD COLUMN cache_creation_input_tokens BIGINT;
DO $$ BEGIN
    UPDATE plumb_traces t SET
        input_tokens = (m.value::jsonb ->> 'input_tokens')::bigint,
        output_tokens = (m.value::jsonb ->> 'output_tokens')::bigint,
        total_tokens = (m.value::jsonb ->> 'total_tokens')::bigint,
        cache_read_input_tokens = (m.value::jsonb ->> 'cache_read_input_tokens')::bigint,
        cache_creation_input_tokens = (m.value::jsonb ->> 'cache_creation_input_tokens')::bigint
    FROM plumb_trace_metadata m
    WHERE m.trace_id = t.trace_id AND m.key = 'mlflow.trace.tokenUsage';
EXCEPTION WHEN others THEN NULL;
END $$;
",
};

pub const TRACES: Feature = Feature {
    name: "traces",
    migrations: &[V1, V2, V3, V4],
};

/// An assessment's kind, value (JSON text), the number it counts as, and whether it is a
/// number itself: the searchable columns of V4, derived from its body.
fn assessment_columns(body: &serde_json::Map<String, serde_json::Value>) -> [Bind; 4] {
    use serde_json::Value as J;
    let (kind, value) = match (body.get("feedback"), body.get("expectation")) {
        (Some(f), _) => (Some("feedback"), f.get("value")),
        (None, Some(e)) => (Some("expectation"), e.get("value")),
        _ => (None, None),
    };
    let num = match value {
        Some(J::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
        Some(J::Number(n)) => n.as_f64().filter(|x| x.is_finite()),
        Some(J::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" => Some(1.0),
            "no" => Some(0.0),
            _ => None,
        },
        _ => None,
    };
    let is_num = i64::from(matches!(value, Some(J::Number(_))) && num.is_some());
    [
        kind.map(str::to_string).into(),
        value.map(|v| v.to_string()).into(),
        num.into(),
        is_num.into(),
    ]
}

/// The metadata holding a trace's token counts (JSON), as the 3.x client sets it.
pub const TOKEN_USAGE_METADATA: &str = "mlflow.trace.tokenUsage";
/// Its keys, which are also the columns of `plumb_traces` that keep them.
pub const TOKEN_COLUMNS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
];

/// Trace previews keep this many characters of the root span's inputs and outputs.
const PREVIEW_CHARS: usize = 1000;

/// The metadata MLflow sets when a trace's info is written by v3's `start_trace`.
pub const INFO_FINALIZED_METADATA: &str = "mlflow.trace.infoFinalized";

/// Traces linked to one run in one request at most (MLflow's limit).
pub const MAX_LINKS: usize = 100;

fn not_found(trace_id: &str) -> Error {
    Error::not_found(format!("Trace with ID '{trace_id}' not found."))
}

const COLUMNS: &str = "t.trace_id, t.experiment_id, t.client_request_id, t.request_time_ms, \
     t.execution_ms, t.state, t.request_preview, t.response_preview";

fn info_row(r: &Row) -> DbResult<TraceInfo> {
    Ok(TraceInfo {
        trace_id: r.text(0)?,
        experiment_id: r.int(1)?.to_string(),
        client_request_id: r.opt_text(2)?,
        request_time_ms: r.int(3)?,
        execution_ms: r.opt_int(4)?,
        state: r.text(5)?,
        request_preview: r.opt_text(6)?,
        response_preview: r.opt_text(7)?,
        ..TraceInfo::default()
    })
}

/// Fills tags and metadata of the infos (one query each for all of them).
async fn with_details<C: Conn>(c: &mut C, mut infos: Vec<TraceInfo>) -> DbResult<Vec<TraceInfo>> {
    if infos.is_empty() {
        return Ok(infos);
    }
    let ids: Vec<String> = infos.iter().map(|t| t.trace_id.clone()).collect();
    let at: std::collections::HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    for (table, tags) in [("plumb_trace_tags", true), ("plumb_trace_metadata", false)] {
        let sql = format!(
            "SELECT trace_id, key, value FROM {table} WHERE {}",
            c.dialect().in_list("trace_id")
        );
        for r in c.query(&sql, vec![Bind::TextList(ids.clone())]).await? {
            if let Some(&i) = at.get(&r.text(0)?) {
                let map = if tags {
                    &mut infos[i].tags
                } else {
                    &mut infos[i].metadata
                };
                map.insert(r.text(1)?, r.text(2)?);
            }
        }
    }
    let sql = format!(
        "SELECT {ASSESSMENT_COLUMNS} FROM plumb_assessments WHERE {} ORDER BY created_ms, assessment_id",
        c.dialect().in_list("trace_id")
    );
    for r in c.query(&sql, vec![Bind::TextList(ids)]).await? {
        let a = assessment_row(&r)?;
        if let Some(&i) = at.get(&a.trace_id) {
            infos[i].assessments.push(a);
        }
    }
    Ok(infos)
}

async fn upsert_kv<C: Conn>(
    c: &mut C,
    table: &str,
    trace_id: &str,
    kv: &BTreeMap<String, String>,
) -> DbResult<()> {
    let sql = format!(
        "INSERT INTO {table} (trace_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value"
    );
    for (k, v) in kv {
        c.execute(&sql, vec![trace_id.into(), k.into(), v.into()])
            .await?;
    }
    Ok(())
}

/// `<location>/traces/<trace_id>/artifacts`, as MLflow places a trace's files.
fn artifact_location(experiment_location: &str, trace_id: &str) -> String {
    format!(
        "{}/traces/{trace_id}/artifacts",
        experiment_location.trim_end_matches('/')
    )
}

pub async fn start_trace<C: Conn>(c: &mut C, mut info: TraceInfo) -> DbResult<TraceInfo> {
    let exp = experiments::require_active(c, &info.experiment_id).await?;
    let location = c
        .query_opt(
            "SELECT artifact_location FROM experiments WHERE experiment_id = ?",
            vec![exp.into()],
        )
        .await?
        .map(|r| r.text(0))
        .transpose()?
        .unwrap_or_default();
    info.tags.insert(
        ARTIFACT_LOCATION_TAG.to_string(),
        artifact_location(&location, &info.trace_id),
    );
    let name = info.tags.get(TRACE_NAME_TAG).cloned();
    c.execute(
        "INSERT INTO plumb_traces (trace_id, experiment_id, client_request_id, request_time_ms,
             execution_ms, state, name, request_preview, response_preview)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (trace_id) DO UPDATE SET experiment_id = excluded.experiment_id,
             client_request_id = excluded.client_request_id,
             request_time_ms = excluded.request_time_ms, execution_ms = excluded.execution_ms,
             state = excluded.state, name = excluded.name,
             request_preview = excluded.request_preview,
             response_preview = excluded.response_preview",
        vec![
            (&info.trace_id).into(),
            exp.into(),
            info.client_request_id.clone().into(),
            info.request_time_ms.into(),
            info.execution_ms.into(),
            (&info.state).into(),
            name.into(),
            info.request_preview.clone().into(),
            info.response_preview.clone().into(),
        ],
    )
    .await?;
    upsert_kv(c, "plumb_trace_tags", &info.trace_id, &info.tags).await?;
    upsert_kv(c, "plumb_trace_metadata", &info.trace_id, &info.metadata).await?;
    if let Some(usage) = info.metadata.get(TOKEN_USAGE_METADATA) {
        // Kept as columns for trace metrics and monitors.
        let usage: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(usage).unwrap_or_default();
        let mut binds: Vec<Bind> = TOKEN_COLUMNS
            .iter()
            .map(|k| usage.get(*k).and_then(serde_json::Value::as_i64).into())
            .collect();
        binds.push((&info.trace_id).into());
        c.execute(
            &format!(
                "UPDATE plumb_traces SET {} WHERE trace_id = ?",
                TOKEN_COLUMNS.map(|k| format!("{k} = ?")).join(", ")
            ),
            binds,
        )
        .await?;
    }
    get_trace_info(c, &info.trace_id).await
}

pub async fn get_trace_info<C: Conn>(c: &mut C, trace_id: &str) -> DbResult<TraceInfo> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM plumb_traces t WHERE t.trace_id = ?"),
            vec![trace_id.into()],
        )
        .await?
        .ok_or_else(|| not_found(trace_id))?;
    Ok(with_details(c, vec![info_row(&row)?])
        .await?
        .pop()
        .unwrap_or_default())
}

pub async fn batch_get<C: Conn>(c: &mut C, ids: &[String]) -> DbResult<Vec<TraceInfo>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM plumb_traces t WHERE {}",
        c.dialect().in_list("t.trace_id")
    );
    let rows = c.query(&sql, vec![Bind::TextList(ids.to_vec())]).await?;
    let mut infos = with_details(c, rows.iter().map(info_row).collect::<DbResult<_>>()?).await?;
    infos.sort_by_key(|t| ids.iter().position(|i| *i == t.trace_id));
    Ok(infos)
}

/// The SQL of one attribute.
fn attr_column(a: &str) -> &'static str {
    match a {
        "trace_id" => "t.trace_id",
        "timestamp_ms" => "t.request_time_ms",
        "execution_time_ms" => "t.execution_ms",
        "status" => "t.state",
        "client_request_id" => "t.client_request_id",
        "name" => "t.name",
        "end_time_ms" => "(t.request_time_ms + COALESCE(t.execution_ms, 0))",
        _ => "t.experiment_id",
    }
}

const TAGS: (&str, &str) = ("plumb_trace_tags", "kv.trace_id = t.trace_id");
const METADATA: (&str, &str) = ("plumb_trace_metadata", "kv.trace_id = t.trace_id");

fn clause_sql(cl: &TraceClause, binds: &mut Vec<Bind>) -> DbResult<String> {
    Ok(match &cl.target {
        TraceTarget::Tag(k) => key_value_clause(TAGS, k, cl.op, &cl.value, binds)?,
        TraceTarget::Metadata(k) => key_value_clause(METADATA, k, cl.op, &cl.value, binds)?,
        TraceTarget::Attribute("run_id") => {
            // The run it was made in (metadata), or a run it was linked to.
            let meta = key_value_clause(METADATA, SOURCE_RUN_METADATA, cl.op, &cl.value, binds)?;
            let linked = string_cmp("r.run_id", cl.op, &cl.value, binds)?;
            format!(
                "({meta} OR EXISTS (SELECT 1 FROM plumb_trace_runs r \
                 WHERE r.trace_id = t.trace_id AND {linked}))"
            )
        }
        TraceTarget::Span(_) => {
            return Err(Error::internal("span clauses are rendered together").into())
        }
        TraceTarget::Assessment { kind, name } => {
            binds.push(kind.as_str().into());
            binds.push(name.into());
            let head = "SELECT 1 FROM plumb_assessments a WHERE a.trace_id = t.trace_id \
                        AND a.kind = ? AND a.name = ? AND a.valid = 1";
            match (cl.op, &cl.value) {
                (Op::IsNull, _) => format!("NOT EXISTS ({head})"),
                (Op::IsNotNull, _) => format!("EXISTS ({head})"),
                (Op::Lt | Op::Le | Op::Gt | Op::Ge, Value::Num(n)) => {
                    binds.push(Bind::Real(*n));
                    format!(
                        "EXISTS ({head} AND a.is_num = 1 AND a.num_value {} ?)",
                        cl.op.as_str()
                    )
                }
                (Op::Eq | Op::Ne, v) => {
                    // The stored JSON text equals the value as written (`true`, `4`) or as
                    // a JSON string (`"yes"`).
                    let raw = match v {
                        Value::Str(s) => s.clone(),
                        Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                            format!("{}", *n as i64)
                        }
                        Value::Num(n) => n.to_string(),
                        _ => return Err(Error::invalid("expected a value").into()),
                    };
                    let quoted = serde_json::Value::String(raw.clone()).to_string();
                    // A number equals the stored number however it was written (`2`, `2.0`).
                    let number = raw.trim().parse::<f64>().ok().filter(|x| x.is_finite());
                    binds.push(raw.into());
                    binds.push(quoted.into());
                    let mut same = "a.value = ? OR a.value = ?".to_string();
                    if let Some(x) = number {
                        binds.push(Bind::Real(x));
                        same.push_str(" OR (a.is_num = 1 AND a.num_value = ?)");
                    }
                    // `!=`: an assessment of that name whose value is another.
                    let not = if cl.op == Op::Ne { "NOT " } else { "" };
                    format!("EXISTS ({head} AND {not}({same}))")
                }
                (op, v) => {
                    let cmp = string_cmp("a.value", op, v, binds)?;
                    format!("EXISTS ({head} AND {cmp})")
                }
            }
        }
        TraceTarget::Attribute(a)
            if matches!(*a, "timestamp_ms" | "execution_time_ms" | "end_time_ms") =>
        {
            let Value::Num(n) = cl.value else {
                return Err(Error::invalid("expected a number").into());
            };
            binds.push(num_bind(n));
            format!("{} {} ?", attr_column(a), cl.op.as_str())
        }
        TraceTarget::Attribute(a) => string_cmp(attr_column(a), cl.op, &cl.value, binds)?,
    })
}

/// `%`, `_` and the escape character itself escaped for `LIKE ... ESCAPE '!'`.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(ch);
    }
    out
}

/// One span clause over the span aliased `s`.
fn span_clause_sql(key: &SpanKey, cl: &TraceClause, binds: &mut Vec<Bind>) -> DbResult<String> {
    let column = match key {
        SpanKey::Name => "s.name",
        SpanKey::Type => "s.span_type",
        SpanKey::Status => "s.status",
        SpanKey::Content => return Ok(string_cmp("s.content", cl.op, &cl.value, binds)?),
        SpanKey::Attribute(a) => {
            // Attributes live in the stored span dictionary, each value JSON-encoded:
            // `"attributes":{"model":"\"gpt-4\""}`. LIKE reads as MLflow's does (the
            // pattern after the quoted name); `=` / `!=` / IN compare the decoded value.
            let name = serde_json::Value::String(a.clone()).to_string();
            return Ok(match (cl.op, &cl.value) {
                (Op::Like | Op::ILike, Value::Str(v)) => {
                    let pattern = format!("%{}{v}%", like_literal(&name));
                    let (l, r) = if cl.op == Op::ILike {
                        ("LOWER(s.content)", "LOWER(?)")
                    } else {
                        ("s.content", "?")
                    };
                    binds.push(pattern.into());
                    format!("{l} LIKE {r} ESCAPE '!'")
                }
                (op, v) => {
                    let values: Vec<String> = match v {
                        Value::Str(x) => vec![x.clone()],
                        Value::List(xs) => xs.clone(),
                        _ => return Err(Error::invalid("expected a quoted value").into()),
                    };
                    let mut alts = Vec::new();
                    for x in values {
                        // A string attribute (`"\"x\""`) or another JSON value (`"5"`).
                        let as_string = serde_json::Value::String(x.clone()).to_string();
                        for encoded in [as_string, x] {
                            let stored = serde_json::Value::String(encoded).to_string();
                            binds.push(
                                format!("%{}:{}%", like_literal(&name), like_literal(&stored))
                                    .into(),
                            );
                            alts.push("s.content LIKE ? ESCAPE '!'");
                        }
                    }
                    let any = format!("({})", alts.join(" OR "));
                    if matches!(op, Op::Ne | Op::NotIn) {
                        format!("NOT {any}")
                    } else {
                        any
                    }
                }
            });
        }
    };
    Ok(string_cmp(column, cl.op, &cl.value, binds)?)
}

/// Experiment ids as numbers (MLflow's message for one that is not).
pub(crate) fn experiment_numbers(ids: &[String]) -> DbResult<Vec<i64>> {
    ids.iter()
        .map(|id| {
            id.parse::<i64>().map_err(|_| {
                Error::invalid(format!(
                    "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
                ))
                .into()
            })
        })
        .collect()
}

/// The conditions of a trace filter over the trace aliased `t`, AND-joined (`1 = 1` when
/// empty); the span clauses hold for one span, as in MLflow.
pub(crate) fn filter_sql(clauses: &[TraceClause], binds: &mut Vec<Bind>) -> DbResult<String> {
    let mut filter = vec!["1 = 1".to_string()];
    let mut span_clauses = Vec::new();
    for cl in clauses {
        match &cl.target {
            TraceTarget::Span(key) => span_clauses.push(span_clause_sql(key, cl, binds)?),
            _ => filter.push(clause_sql(cl, binds)?),
        }
    }
    if !span_clauses.is_empty() {
        filter.push(format!(
            "EXISTS (SELECT 1 FROM plumb_spans s WHERE s.trace_id = t.trace_id AND {})",
            span_clauses.join(" AND ")
        ));
    }
    Ok(filter.join(" AND "))
}

pub async fn search<C: Conn>(c: &mut C, q: &TraceQuery) -> DbResult<Page<TraceInfo>> {
    let mut binds: Vec<Bind> = Vec::new();
    let exps = experiment_numbers(&q.experiment_ids)?;
    // One experiment (the usual search) compares with `=`, so the (experiment, time) index
    // also gives the order and the page stops early; a list would sort every trace first.
    let mut filter = Vec::new();
    if let [one] = exps[..] {
        filter.push("t.experiment_id = ?".to_string());
        binds.push(one.into());
    } else {
        filter.push(c.dialect().in_list("t.experiment_id"));
        binds.push(Bind::IntList(exps));
    }
    filter.push(filter_sql(&q.filter, &mut binds)?);
    let mut order = Vec::new();
    for o in &q.order_by {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        match &o.target {
            TraceTarget::Attribute(a) if *a != "run_id" => {
                order.push(format!("{} {dir}", attr_column(a)));
            }
            TraceTarget::Attribute(_) | TraceTarget::Tag(_) | TraceTarget::Metadata(_) => {
                let (table, key) = match &o.target {
                    TraceTarget::Tag(k) => ("plumb_trace_tags", k.as_str()),
                    TraceTarget::Metadata(k) => ("plumb_trace_metadata", k.as_str()),
                    _ => ("plumb_trace_metadata", SOURCE_RUN_METADATA),
                };
                binds.push(key.into());
                order.push(format!(
                    "(SELECT kv.value FROM {table} kv WHERE kv.trace_id = t.trace_id \
                     AND kv.key = ?) {dir}"
                ));
            }
            TraceTarget::Span(_) | TraceTarget::Assessment { .. } => {
                return Err(Error::invalid("spans and assessments do not order traces").into())
            }
        }
    }
    if !q
        .order_by
        .iter()
        .any(|o| o.target == TraceTarget::Attribute("timestamp_ms"))
    {
        order.push("t.request_time_ms DESC".into());
    }
    order.push("t.trace_id ASC".into());
    let sql = format!(
        "SELECT {COLUMNS} FROM plumb_traces t WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        filter.join(" AND "),
        order.join(", ")
    );
    binds.push((q.max_results + 1).into());
    binds.push(q.offset.into());
    let (items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, info_row).await?;
    Ok(Page {
        items: with_details(c, items).await?,
        next_page_token,
    })
}

async fn require<C: Conn>(c: &mut C, trace_id: &str) -> DbResult<()> {
    c.query_opt(
        "SELECT 1 FROM plumb_traces WHERE trace_id = ?",
        vec![trace_id.into()],
    )
    .await?
    .ok_or_else(|| not_found(trace_id))?;
    Ok(())
}

pub async fn set_tag<C: Conn>(c: &mut C, trace_id: &str, key: &str, value: &str) -> DbResult<()> {
    require(c, trace_id).await?;
    let kv = BTreeMap::from([(key.to_string(), value.to_string())]);
    upsert_kv(c, "plumb_trace_tags", trace_id, &kv).await?;
    if key == TRACE_NAME_TAG {
        c.execute(
            "UPDATE plumb_traces SET name = ? WHERE trace_id = ?",
            vec![value.into(), trace_id.into()],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_tag<C: Conn>(c: &mut C, trace_id: &str, key: &str) -> DbResult<()> {
    require(c, trace_id).await?;
    let n = c
        .execute(
            "DELETE FROM plumb_trace_tags WHERE trace_id = ? AND key = ?",
            vec![trace_id.into(), key.into()],
        )
        .await?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No trace tag with key '{key}' for trace with ID '{trace_id}'"
        ))
        .into());
    }
    if key == TRACE_NAME_TAG {
        c.execute(
            "UPDATE plumb_traces SET name = NULL WHERE trace_id = ?",
            vec![trace_id.into()],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_traces<C: Conn>(
    c: &mut C,
    experiment_id: &str,
    which: &TraceSelection,
) -> DbResult<i64> {
    let exp = experiments::require_exists(c, experiment_id).await?;
    let ids: Vec<String> = match which {
        TraceSelection::Ids(ids) => {
            let sql = format!(
                "SELECT trace_id FROM plumb_traces WHERE experiment_id = ? AND {}",
                c.dialect().in_list("trace_id")
            );
            c.query(&sql, vec![exp.into(), Bind::TextList(ids.clone())])
                .await?
                .iter()
                .map(|r| r.text(0))
                .collect::<DbResult<_>>()?
        }
        TraceSelection::Before {
            max_timestamp_ms,
            max_traces,
        } => c
            .query(
                "SELECT trace_id FROM plumb_traces WHERE experiment_id = ? AND request_time_ms <= ?
                 ORDER BY request_time_ms, trace_id LIMIT ?",
                vec![
                    exp.into(),
                    (*max_timestamp_ms).into(),
                    max_traces.unwrap_or(i64::MAX).into(),
                ],
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<DbResult<_>>()?,
    };
    if ids.is_empty() {
        return Ok(0);
    }
    for table in [
        "plumb_spans",
        "plumb_assessments",
        "plumb_trace_tags",
        "plumb_trace_metadata",
        "plumb_trace_runs",
        "plumb_traces",
    ] {
        let sql = format!(
            "DELETE FROM {table} WHERE {}",
            c.dialect().in_list("trace_id")
        );
        c.execute(&sql, vec![Bind::TextList(ids.clone())]).await?;
    }
    Ok(ids.len() as i64)
}

pub async fn link_to_run<C: Conn>(c: &mut C, trace_ids: &[String], run_id: &str) -> DbResult<()> {
    if trace_ids.is_empty() {
        return Ok(());
    }
    if trace_ids.len() > MAX_LINKS {
        return Err(Error::invalid(format!(
            "Cannot link more than {MAX_LINKS} traces to a run in a single request. \
             Provided {} traces.",
            trace_ids.len()
        ))
        .into());
    }
    c.query_opt("SELECT 1 FROM runs WHERE run_uuid = ?", vec![run_id.into()])
        .await?
        .ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))?;
    for id in trace_ids {
        require(c, id).await?;
        c.execute(
            "INSERT INTO plumb_trace_runs (trace_id, run_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            vec![id.into(), run_id.into()],
        )
        .await?;
    }
    Ok(())
}

/// Removes the traces of experiments being purged (`plumb gc`), with their tags, metadata and
/// run links.
pub async fn purge_experiments<C: Conn>(c: &mut C, experiment_ids: &[i64]) -> DbResult<()> {
    if experiment_ids.is_empty() {
        return Ok(());
    }
    let traces = format!(
        "SELECT trace_id FROM plumb_traces WHERE {}",
        c.dialect().in_list("experiment_id")
    );
    for table in [
        "plumb_spans",
        "plumb_assessments",
        "plumb_trace_tags",
        "plumb_trace_metadata",
        "plumb_trace_runs",
    ] {
        c.execute(
            &format!("DELETE FROM {table} WHERE trace_id IN ({traces})"),
            vec![Bind::IntList(experiment_ids.to_vec())],
        )
        .await?;
    }
    c.execute(
        &format!(
            "DELETE FROM plumb_traces WHERE {}",
            c.dialect().in_list("experiment_id")
        ),
        vec![Bind::IntList(experiment_ids.to_vec())],
    )
    .await?;
    Ok(())
}

fn preview(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.chars().take(PREVIEW_CHARS).collect())
}

/// The state of a trace from its root span's status.
fn state_of(status: &str) -> &'static str {
    if status == "ERROR" {
        "ERROR"
    } else {
        "OK"
    }
}

pub async fn log_spans<C: Conn>(
    c: &mut C,
    experiment_id: &str,
    spans: &[SpanRecord],
) -> DbResult<()> {
    let exp = experiments::require_active(c, experiment_id).await?;
    let location = c
        .query_opt(
            "SELECT artifact_location FROM experiments WHERE experiment_id = ?",
            vec![exp.into()],
        )
        .await?
        .map(|r| r.text(0))
        .transpose()?
        .unwrap_or_default();
    let mut traces: Vec<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    traces.sort_unstable();
    traces.dedup();
    for trace_id in traces {
        let mine: Vec<&SpanRecord> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
        let start_ms = mine
            .iter()
            .map(|s| s.start_ns / 1_000_000)
            .min()
            .unwrap_or(0);
        let exists = c
            .query_opt(
                "SELECT 1 FROM plumb_traces WHERE trace_id = ?",
                vec![trace_id.into()],
            )
            .await?
            .is_some();
        if !exists {
            c.execute(
                "INSERT INTO plumb_traces (trace_id, experiment_id, request_time_ms, state)
                 VALUES (?, ?, ?, 'IN_PROGRESS')",
                vec![trace_id.into(), exp.into(), start_ms.into()],
            )
            .await?;
            let tags = BTreeMap::from([
                (
                    ARTIFACT_LOCATION_TAG.to_string(),
                    artifact_location(&location, trace_id),
                ),
                (SPANS_LOCATION_TAG.to_string(), "TRACKING_STORE".to_string()),
            ]);
            upsert_kv(c, "plumb_trace_tags", trace_id, &tags).await?;
            let metadata =
                BTreeMap::from([("mlflow.trace_schema.version".to_string(), "3".to_string())]);
            upsert_kv(c, "plumb_trace_metadata", trace_id, &metadata).await?;
        } else {
            let tags =
                BTreeMap::from([(SPANS_LOCATION_TAG.to_string(), "TRACKING_STORE".to_string())]);
            upsert_kv(c, "plumb_trace_tags", trace_id, &tags).await?;
            c.execute(
                "UPDATE plumb_traces SET request_time_ms = ? WHERE trace_id = ? AND request_time_ms > ?",
                vec![start_ms.into(), trace_id.into(), start_ms.into()],
            )
            .await?;
        }
        let reports_tokens = mine.iter().any(|s| s.tokens.is_some());
        if let Some(root) = mine.iter().find(|s| s.parent_span_id.is_none()) {
            let execution = root.end_ns.map(|e| (e - root.start_ns) / 1_000_000);
            c.execute(
                "UPDATE plumb_traces SET state = ?, execution_ms = ?, name = ?,
                     request_time_ms = ?,
                     request_preview = COALESCE(request_preview, ?),
                     response_preview = COALESCE(response_preview, ?)
                 WHERE trace_id = ?",
                vec![
                    state_of(&root.status).into(),
                    execution.into(),
                    (&root.name).into(),
                    (root.start_ns / 1_000_000).into(),
                    preview(&root.inputs).into(),
                    preview(&root.outputs).into(),
                    trace_id.into(),
                ],
            )
            .await?;
            let tags = BTreeMap::from([(TRACE_NAME_TAG.to_string(), root.name.clone())]);
            upsert_kv(c, "plumb_trace_tags", trace_id, &tags).await?;
        }
        for s in mine {
            c.execute(
                "INSERT INTO plumb_spans (trace_id, span_id, parent_span_id, name, span_type,
                     status, start_ns, end_ns, content, input_tokens, output_tokens, total_tokens)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (trace_id, span_id) DO UPDATE SET
                     parent_span_id = excluded.parent_span_id, name = excluded.name,
                     span_type = excluded.span_type, status = excluded.status,
                     start_ns = excluded.start_ns, end_ns = excluded.end_ns,
                     content = excluded.content, input_tokens = excluded.input_tokens,
                     output_tokens = excluded.output_tokens, total_tokens = excluded.total_tokens",
                vec![
                    (&s.trace_id).into(),
                    (&s.span_id).into(),
                    s.parent_span_id.clone().into(),
                    (&s.name).into(),
                    s.span_type.clone().into(),
                    (&s.status).into(),
                    s.start_ns.into(),
                    s.end_ns.into(),
                    (&s.content).into(),
                    s.tokens.map(|t| t.0).into(),
                    s.tokens.map(|t| t.1).into(),
                    s.tokens.map(|t| t.2).into(),
                ],
            )
            .await?;
        }
        if reports_tokens {
            trace_tokens_from_spans(c, trace_id).await?;
        }
    }
    Ok(())
}

/// Sets a trace's token counts from its spans' (when the client did not give the trace's own
/// with a v3 start): the spans that report counts and have no ancestor that does, summed, so
/// a parent reporting its children's total is not counted twice (as MLflow does).
async fn trace_tokens_from_spans<C: Conn>(c: &mut C, trace_id: &str) -> DbResult<()> {
    let finalized = c
        .query_opt(
            "SELECT 1 FROM plumb_trace_metadata WHERE trace_id = ? AND key = ?",
            vec![trace_id.into(), INFO_FINALIZED_METADATA.into()],
        )
        .await?
        .is_some();
    let given = c
        .query_opt(
            "SELECT 1 FROM plumb_trace_metadata WHERE trace_id = ? AND key = ?",
            vec![trace_id.into(), TOKEN_USAGE_METADATA.into()],
        )
        .await?
        .is_some();
    if finalized && given {
        return Ok(());
    }
    let rows = c
        .query(
            "SELECT span_id, parent_span_id, input_tokens, output_tokens, total_tokens
             FROM plumb_spans WHERE trace_id = ?",
            vec![trace_id.into()],
        )
        .await?;
    let mut parent = std::collections::HashMap::new();
    let mut usage = std::collections::HashMap::new();
    for r in &rows {
        let id = r.text(0)?;
        if let Some(p) = r.opt_text(1)? {
            parent.insert(id.clone(), p);
        }
        if let Some(total) = r.opt_int(4)? {
            usage.insert(
                id,
                (
                    r.opt_int(2)?.unwrap_or(0),
                    r.opt_int(3)?.unwrap_or(0),
                    total,
                ),
            );
        }
    }
    let mut sum = (0i64, 0i64, 0i64);
    for (id, u) in &usage {
        // Counted unless an ancestor reports counts (a loop in bad data stops the walk).
        let mut at = parent.get(id);
        let mut steps = 0;
        let mut covered = false;
        while let Some(p) = at {
            if usage.contains_key(p) {
                covered = true;
                break;
            }
            steps += 1;
            if steps > rows.len() {
                break;
            }
            at = parent.get(p);
        }
        if !covered {
            sum = (
                sum.0.saturating_add(u.0),
                sum.1.saturating_add(u.1),
                sum.2.saturating_add(u.2),
            );
        }
    }
    let json = serde_json::json!({
        "input_tokens": sum.0, "output_tokens": sum.1, "total_tokens": sum.2,
    })
    .to_string();
    let kv = BTreeMap::from([(TOKEN_USAGE_METADATA.to_string(), json)]);
    upsert_kv(c, "plumb_trace_metadata", trace_id, &kv).await?;
    c.execute(
        "UPDATE plumb_traces SET input_tokens = ?, output_tokens = ?, total_tokens = ?
         WHERE trace_id = ?",
        vec![sum.0.into(), sum.1.into(), sum.2.into(), trace_id.into()],
    )
    .await?;
    Ok(())
}

pub async fn get_spans<C: Conn>(c: &mut C, trace_id: &str) -> DbResult<Vec<SpanRecord>> {
    c.query(
        "SELECT trace_id, span_id, parent_span_id, name, span_type, status, start_ns, end_ns,
                content, input_tokens, output_tokens, total_tokens
         FROM plumb_spans WHERE trace_id = ? ORDER BY start_ns, span_id",
        vec![trace_id.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SpanRecord {
            trace_id: r.text(0)?,
            span_id: r.text(1)?,
            parent_span_id: r.opt_text(2)?,
            name: r.text(3)?,
            span_type: r.opt_text(4)?,
            status: r.text(5)?,
            start_ns: r.int(6)?,
            end_ns: r.opt_int(7)?,
            content: r.text(8)?,
            inputs: None,
            outputs: None,
            tokens: match r.opt_int(11)? {
                Some(total) => Some((
                    r.opt_int(9)?.unwrap_or(0),
                    r.opt_int(10)?.unwrap_or(0),
                    total,
                )),
                None => None,
            },
        })
    })
    .collect()
}

// ---- assessments -------------------------------------------------------------------------------

const ASSESSMENT_COLUMNS: &str =
    "assessment_id, trace_id, name, created_ms, updated_ms, valid, overrides, body";

fn assessment_row(r: &Row) -> DbResult<AssessmentRecord> {
    let body = match serde_json::from_str(&r.text(7)?) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    Ok(AssessmentRecord {
        assessment_id: r.text(0)?,
        trace_id: r.text(1)?,
        name: r.text(2)?,
        created_ms: r.int(3)?,
        updated_ms: r.int(4)?,
        valid: r.int(5)? != 0,
        overrides: r.opt_text(6)?,
        body,
    })
}

fn assessment_not_found(trace_id: &str, assessment_id: &str) -> Error {
    Error::not_found(format!(
        "Assessment with ID '{assessment_id}' not found for trace '{trace_id}'"
    ))
}

pub async fn create_assessment<C: Conn>(
    c: &mut C,
    a: &AssessmentRecord,
) -> DbResult<AssessmentRecord> {
    c.query_opt(
        "SELECT 1 FROM plumb_traces WHERE trace_id = ?",
        vec![(&a.trace_id).into()],
    )
    .await?
    .ok_or_else(|| {
        Error::not_found(format!(
            "Trace with ID '{}' not found. It may have been deleted.",
            a.trace_id
        ))
    })?;
    if let Some(o) = &a.overrides {
        let n = c
            .execute(
                "UPDATE plumb_assessments SET valid = 0 WHERE trace_id = ? AND assessment_id = ?",
                vec![(&a.trace_id).into(), o.into()],
            )
            .await?;
        if n == 0 {
            return Err(assessment_not_found(&a.trace_id, o).into());
        }
    }
    let mut binds: Vec<Bind> = vec![
        (&a.assessment_id).into(),
        (&a.trace_id).into(),
        (&a.name).into(),
        a.created_ms.into(),
        a.updated_ms.into(),
        i64::from(a.valid).into(),
        a.overrides.clone().into(),
        serde_json::Value::Object(a.body.clone()).to_string().into(),
    ];
    binds.extend(assessment_columns(&a.body));
    c.execute(
        &format!(
            "INSERT INTO plumb_assessments ({ASSESSMENT_COLUMNS}, kind, value, num_value, is_num) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        binds,
    )
    .await?;
    get_assessment(c, &a.trace_id, &a.assessment_id).await
}

pub async fn get_assessment<C: Conn>(
    c: &mut C,
    trace_id: &str,
    assessment_id: &str,
) -> DbResult<AssessmentRecord> {
    let row = c
        .query_opt(
            &format!(
                "SELECT {ASSESSMENT_COLUMNS} FROM plumb_assessments
                 WHERE trace_id = ? AND assessment_id = ?"
            ),
            vec![trace_id.into(), assessment_id.into()],
        )
        .await?
        .ok_or_else(|| assessment_not_found(trace_id, assessment_id))?;
    assessment_row(&row)
}

pub async fn update_assessment<C: Conn>(
    c: &mut C,
    trace_id: &str,
    assessment_id: &str,
    patch: &AssessmentPatch,
    now_ms: i64,
) -> DbResult<AssessmentRecord> {
    let mut a = get_assessment(c, trace_id, assessment_id).await?;
    if let Some(n) = &patch.name {
        a.name = n.clone();
    }
    for (k, v) in &patch.body {
        // An assessment is feedback or an expectation, never both.
        if k == "feedback" {
            a.body.remove("expectation");
        } else if k == "expectation" {
            a.body.remove("feedback");
        }
        a.body.insert(k.clone(), v.clone());
    }
    if let Some(v) = patch.valid {
        a.valid = v;
    }
    let mut binds: Vec<Bind> = vec![
        (&a.name).into(),
        serde_json::Value::Object(a.body.clone()).to_string().into(),
        i64::from(a.valid).into(),
        now_ms.into(),
    ];
    binds.extend(assessment_columns(&a.body));
    binds.extend([trace_id.into(), assessment_id.into()]);
    c.execute(
        "UPDATE plumb_assessments SET name = ?, body = ?, valid = ?, updated_ms = ?,
             kind = ?, value = ?, num_value = ?, is_num = ?
         WHERE trace_id = ? AND assessment_id = ?",
        binds,
    )
    .await?;
    get_assessment(c, trace_id, assessment_id).await
}

pub async fn delete_assessment<C: Conn>(
    c: &mut C,
    trace_id: &str,
    assessment_id: &str,
) -> DbResult<()> {
    let a = get_assessment(c, trace_id, assessment_id).await?;
    c.execute(
        "DELETE FROM plumb_assessments WHERE trace_id = ? AND assessment_id = ?",
        vec![trace_id.into(), assessment_id.into()],
    )
    .await?;
    if let Some(o) = a.overrides {
        c.execute(
            "UPDATE plumb_assessments SET valid = 1 WHERE trace_id = ? AND assessment_id = ?",
            vec![trace_id.into(), o.into()],
        )
        .await?;
    }
    Ok(())
}
