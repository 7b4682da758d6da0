-- plumb SQLite schema v1. Never edit once landed: add a new numbered file instead.
CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage   TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);
CREATE INDEX experiments_creation ON experiments (creation_time);

-- Tag and param tables keep a rowid: they list in insertion order, as MLflow's do.
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

-- run_pk is the integer surrogate every per-run table is keyed on; run_uuid is the public id.
CREATE TABLE runs (
    run_pk          INTEGER PRIMARY KEY,
    run_uuid        TEXT NOT NULL UNIQUE,
    experiment_id   INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name            TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      INTEGER,
    end_time        INTEGER,
    lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
    artifact_uri    TEXT NOT NULL,
    deleted_time    INTEGER
);
CREATE INDEX runs_experiment ON runs (experiment_id, start_time);

CREATE TABLE params (
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_pk, key)
);
CREATE INDEX params_key_value ON params (key, value);

CREATE TABLE tags (
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_pk, key)
);
CREATE INDEX tags_key_value ON tags (key, value);

-- Every point, clustered for chart reads by (run, key, step). An identical point is stored once.
-- NaN is stored as value 0 with is_nan 1; +/-inf as +/-f64::MAX.
CREATE TABLE metrics (
    run_pk    INTEGER NOT NULL,
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key, step, timestamp, value, is_nan)
) WITHOUT ROWID;

-- The latest point per (run, key), kept on write: the greatest (step, timestamp, value).
-- Also the series' shape: `points` stored, `min_step`, and `dense` = the points are exactly one
-- per step from min_step to step (the common "step = 0, 1, 2, ..." curve), which lets sampled
-- reads seek by step instead of scanning.
CREATE TABLE latest_metrics (
    run_pk    INTEGER NOT NULL,
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL NOT NULL,
    is_nan    INTEGER NOT NULL,
    points    INTEGER NOT NULL,
    min_step  INTEGER NOT NULL,
    dense     INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key)
) WITHOUT ROWID;

CREATE TABLE datasets (
    dataset_pk    INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    source_type   TEXT NOT NULL,
    source        TEXT NOT NULL,
    schema        TEXT,
    profile       TEXT,
    UNIQUE (experiment_id, name, digest)
);

CREATE TABLE run_inputs (
    run_pk     INTEGER NOT NULL REFERENCES runs (run_pk),
    dataset_pk INTEGER NOT NULL REFERENCES datasets (dataset_pk),
    seq        INTEGER NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk)
) WITHOUT ROWID;

-- Input tags in the order they were given (idx).
CREATE TABLE input_tags (
    run_pk     INTEGER NOT NULL,
    dataset_pk INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk, idx)
) WITHOUT ROWID;

CREATE TABLE run_model_inputs (
    run_pk   INTEGER NOT NULL REFERENCES runs (run_pk),
    model_id TEXT NOT NULL,
    PRIMARY KEY (run_pk, model_id)
) WITHOUT ROWID;

CREATE TABLE run_model_outputs (
    run_pk   INTEGER NOT NULL REFERENCES runs (run_pk),
    model_id TEXT NOT NULL,
    step     INTEGER NOT NULL,
    PRIMARY KEY (run_pk, model_id)
) WITHOUT ROWID;

CREATE TABLE logged_models (
    model_id                  TEXT PRIMARY KEY,
    experiment_id             INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name                      TEXT NOT NULL,
    artifact_location         TEXT NOT NULL,
    creation_timestamp_ms     INTEGER NOT NULL,
    last_updated_timestamp_ms INTEGER NOT NULL,
    status                    INTEGER NOT NULL,
    status_message            TEXT,
    lifecycle_stage           TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
    model_type                TEXT,
    source_run_id             TEXT
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_timestamp_ms);

CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
) WITHOUT ROWID;

CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
) WITHOUT ROWID;

CREATE TABLE logged_model_metrics (
    model_id       TEXT NOT NULL,
    key            TEXT NOT NULL,
    timestamp      INTEGER NOT NULL,
    step           INTEGER NOT NULL,
    run_id         TEXT NOT NULL,
    value          REAL NOT NULL,
    is_nan         INTEGER NOT NULL,
    dataset_name   TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (model_id, key, timestamp, step, run_id)
) WITHOUT ROWID;
